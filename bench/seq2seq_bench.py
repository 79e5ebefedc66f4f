#!/usr/bin/env python3
"""Encoder-decoder speed: Ember vs transformers (PyTorch CPU) vs CTranslate2, interleaved, F32 or int8.

Models (--models, made on first use under $EMBER_BENCH_CACHE, default ~/.cache/ember-bench-s2s,
by tools/models/make_synthetic_seq2seq.py), each with CTranslate2's conversion of its folder by
its own converter (ct2-transformers-converter --quantization float32):
  t5     t5-small-sized random T5 v1.0; inputs carry T5's task prefixes
  bart   bart-base-sized random BART (forced BOS <s>, which counts as one of the new tokens);
         no prefixes, so "translate" is short inputs and "summarize" long ones

Inputs (committed text, tests/fixtures/models/minilm/sentences.jsonl, ASCII lines only):
  translate   16 sentences of 8-20 words, "translate English to German: " prefix, 32 new tokens
  summarize   16 passages of 60-250 words, "summarize: " prefix, 48 new tokens
Every engine runs 4 beams (length penalty 1) with EOS banned until the last token (min length =
max length), so all three generate exactly the same number of tokens whatever the random weights
say; the script checks that they did, and reports how often their outputs agree token for token.

Per cell (model, task, batch 1 or 16, threads 1 or 2) each engine translates the whole set once per
timed pass (batch 1: 16 calls; batch 16: one call), after one warm-up pass, --reps passes, in its
own process with the model loaded once and untimed:
  - Ember:         build/bin/bench_models seq2seq (EMBER_NUM_THREADS = OPENBLAS_NUM_THREADS = N)
  - transformers:  AutoModelForSeq2SeqLM's generate(num_beams=4, min_new_tokens = max_new_tokens),
                   torch N threads
  - CTranslate2:   Translator(intra_threads=N, compute_type="float32").translate_batch(beam_size=4,
                   min_decoding_length = max_decoding_length)
--precision int8 compares 8-bit weights instead: Ember with --quantize Q8_0 (the matrices quantized
at load, 32-element blocks; 8-bit activations below 16 rows, F32 ones from 16 rows on),
CTranslate2 with compute_type="int8" (per-row int8 weights and activations), transformers with
torch.ao.quantization.quantize_dynamic on its nn.Linear layers (per-tensor int8 weights, 8-bit
activations).
Each round runs the three engines in turn for every cell; --rounds rounds. Printed: each engine's
median seconds per pass with its min-max over all passes of all rounds, and the medians of the
per-round ratios Ember/transformers and Ember/CTranslate2 as speedups (> 1: Ember faster) with
their min-max over rounds, plus CPU seconds per pass (steadier than wall time on a shared
machine) and the 1-minute load average before each round. --engines leaves engines out (Ember
always runs: the ratios are to it).

Usage: tools/.venv/bin/python bench/seq2seq_bench.py [--rounds 3] [--reps 2] [--threads 1,2]
       [--batches 1,16] [--tasks translate,summarize] [--models t5,bart]
       [--engines transformers,ctranslate2] [--precision f32|int8]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SENTENCES = ROOT / "tests" / "fixtures" / "models" / "minilm" / "sentences.jsonl"
CACHE = pathlib.Path(os.environ.get("EMBER_BENCH_CACHE", pathlib.Path.home() / ".cache" / "ember-bench-s2s"))
MODELS = {"t5": "t5-small-random", "bart": "bart-base-random"}  # name: folder under CACHE
BEAMS = 4
TASKS = {  # name: (prefix, new tokens, word range)
    "translate": ("translate English to German: ", 32, (8, 20)),
    "summarize": ("summarize: ", 48, (60, 250)),
}
ENGINES = ("ember", "transformers", "ctranslate2")

# One process per engine, threads and round: loads once, then for each (task, batch) one warm-up
# and `reps` timed passes. Prints one JSON line per (task, batch).
PEER = r'''
import json, resource, sys, time
engine, threads, reps, model_dir, ct2_dir, pad, jobs, int8 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), json.loads(sys.argv[7]), sys.argv[8] == "int8"
import tokenizers
tok = tokenizers.Tokenizer.from_file(model_dir + "/tokenizer.json")
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
if engine == "transformers":
    import torch, transformers
    torch.set_num_threads(threads)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    def generate(texts, n):
        enc = [tok.encode(t).ids for t in texts]
        width = max(map(len, enc))
        ids = torch.tensor([e + [pad] * (width - len(e)) for e in enc])
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in enc])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, num_beams=4, do_sample=False,
                                 max_new_tokens=n, min_new_tokens=n, length_penalty=1.0,
                                 early_stopping=False)
        return [row[1:].tolist() for row in out]
else:
    import ctranslate2
    translator = ctranslate2.Translator(ct2_dir, device="cpu", compute_type="int8" if int8 else "float32",
                                        intra_threads=threads, inter_threads=1)
    def generate(texts, n):
        src = [tok.encode(t).tokens for t in texts]
        out = translator.translate_batch(src, beam_size=4, max_decoding_length=n,
                                         min_decoding_length=n, length_penalty=1.0,
                                         max_batch_size=len(src))
        return [[tok.token_to_id(t) for t in r.hypotheses[0]] for r in out]
for job in jobs:
    texts, batch, n = job["texts"], job["batch"], job["new_tokens"]
    seconds, cpus = [], []
    for r in range(reps + 1):  # the first pass warms up
        c0, t0 = cpu(), time.perf_counter()
        ids = []
        for i in range(0, len(texts), batch):
            ids += generate(texts[i:i + batch], n)
        if r:
            seconds.append(time.perf_counter() - t0)
            cpus.append(cpu() - c0)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpus, "ids": ids}), flush=True)
'''


def python() -> str:
    return str(ROOT / "tools" / ".venv" / "bin" / "python")


def ensure_model(name: str) -> pathlib.Path:
    model = CACHE / MODELS[name]
    ct2 = CACHE / (MODELS[name] + "-ct2")
    if not (model / "model.safetensors").exists():
        subprocess.run([python(), str(ROOT / "tools" / "models" / "make_synthetic_seq2seq.py"), str(model), name],
                       check=True)
    if not (ct2 / "model.bin").exists():
        converter = ROOT / "tools" / ".venv" / "bin" / "ct2-transformers-converter"
        subprocess.run([str(converter), "--model", str(model), "--output_dir", str(ct2),
                        "--quantization", "float32", "--force"], check=True)
    return model


def task_texts(words: tuple[int, int]) -> list[str]:
    lines = [json.loads(line) for line in SENTENCES.read_text().split("\n") if line]
    picked = [s for s in lines if s.isascii() and words[0] <= len(s.split()) <= words[1]]
    if len(picked) < 16:
        sys.exit(f"only {len(picked)} sentences of {words} words in {SENTENCES}")
    return [" ".join(s.split()) for s in picked[:16]]


def run_engine(engine: str, model: pathlib.Path, threads: int, reps: int, jobs: list[dict],
               precision: str) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               EMBER_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    results = []
    if engine == "ember":
        for job in jobs:
            texts = pathlib.Path(f"/tmp/ember_s2s_bench_{os.getpid()}.txt")
            texts.write_text("".join(t + "\n" for t in job["texts"]))
            cmd = [str(ROOT / "build" / "bin" / "bench_models"), "seq2seq", "--model", str(model), "--texts", str(texts),
                   "--prefix", job["prefix"], "--batch-size", str(job["batch"]), "--beams", str(BEAMS),
                   "--new-tokens", str(job["new_tokens"]), "--repeat", str(reps + 1)]
            if precision == "int8":
                cmd += ["--quantize", "Q8_0"]
            out = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            texts.unlink()
            # Drop the warm-up pass, as the peers do.
            results.append({"seconds": out["seconds"][1:], "cpu_seconds": out["cpu_seconds"][1:], "ids": out["ids"]})
        return results
    pad = json.loads((model / "config.json").read_text())["pad_token_id"]
    peer_jobs = [dict(job, texts=[job["prefix"] + t for t in job["texts"]]) for job in jobs]
    proc = subprocess.run([python(), "-c", PEER, engine, str(threads), str(reps), str(model),
                           str(model.parent / (model.name + "-ct2")), str(pad), json.dumps(peer_jobs), precision],
                          env=env, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in proc.stdout.strip().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--tasks", default="translate,summarize")
    ap.add_argument("--models", default="t5,bart")
    ap.add_argument("--engines", default="transformers,ctranslate2")
    ap.add_argument("--precision", choices=("f32", "int8"), default="f32")
    args = ap.parse_args()
    engines = ("ember",) + tuple(e for e in args.engines.split(",") if e and e != "ember")
    if any(e not in ENGINES for e in engines):
        sys.exit(f"--engines: choose among {ENGINES[1:]}")
    models = {name: ensure_model(name) for name in args.models.split(",")}
    threads_list = [int(t) for t in args.threads.split(",")]
    jobs = {name: [{"task": task, "prefix": TASKS[task][0] if name == "t5" else "",
                    "new_tokens": TASKS[task][1], "batch": int(b), "texts": task_texts(TASKS[task][2])}
                   for task in args.tasks.split(",") for b in args.batches.split(",")]
            for name in models}
    # results[(model, threads, job index)][engine] = list of per-round results
    results: dict = {}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, model in models.items():
            for threads in threads_list:
                for engine in engines:
                    for j, out in enumerate(run_engine(engine, model, threads, args.reps, jobs[name], args.precision)):
                        results.setdefault((name, threads, j), {}).setdefault(engine, []).append(out)
        print(f"round {r + 1}/{args.rounds} done, load average {os.getloadavg()}", flush=True)
    loads.append(os.getloadavg()[0])

    print("\n| model | task | batch | threads | " + " | ".join(f"{e} s" for e in engines) + " | "
          + " | ".join(f"vs {e}" for e in engines[1:]) + " |")
    print("|---" * (4 + 2 * len(engines) - 1) + "|")
    notes = []
    for (name, threads, j), per_engine in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        job = jobs[name][j]
        for engine, rounds in per_engine.items():
            for out in rounds:
                lengths = {len(ids) for ids in out["ids"]}
                if lengths != {job["new_tokens"]}:
                    sys.exit(f"{engine} {name} {job['task']} batch {job['batch']}: generated lengths {lengths}, "
                             f"expected all {job['new_tokens']}")

        def cell(engine):
            s = [x for out in per_engine[engine] for x in out["seconds"]]
            return statistics.median(s), min(s), max(s)

        def ratio(peer):
            per_round = [statistics.median(p["seconds"]) / statistics.median(e["seconds"])
                         for e, p in zip(per_engine["ember"], per_engine[peer])]
            return f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"

        cells = " | ".join(f"{m:.2f} ({lo:.2f}-{hi:.2f})" for m, lo, hi in map(cell, engines))
        ratios = " | ".join(ratio(e) for e in engines[1:])
        print(f"| {name} | {job['task']} | {job['batch']} | {threads} | {cells} | {ratios} |")
        cpu = {e: statistics.median(x for out in per_engine[e] for x in out["cpu_seconds"]) for e in engines}
        last = {e: per_engine[e][-1]["ids"] for e in engines}
        notes.append(f"{name} {job['task']} batch {job['batch']} threads {threads}: CPU s per pass "
                     + ", ".join(f"{e} {cpu[e]:.2f}" for e in engines)
                     + "; best beams identical to Ember: "
                     + ", ".join(f"{p} {sum(a == b for a, b in zip(last['ember'], last[p]))}/16"
                                 for p in engines[1:]))
    print()
    for n in notes:
        print(n)
    print(f"\n1-minute load average before each round and at the end: {loads} "
          f"(median {statistics.median(loads):.1f})")


if __name__ == "__main__":
    main()
