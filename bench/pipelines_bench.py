#!/usr/bin/env python3
"""Text-pipeline throughput: Ember vs transformers.pipeline (PyTorch, CPU, F32) in one run.

Tasks: text classification (top 1) and token classification (NER, no aggregation) on BERT-base
sized models with random weights (tools/pipelines/make_bench_models.py; random weights take the
time trained ones do), and question answering when both sides have it (Ember's bench_models qa
verb and transformers' question-answering pipeline, which transformers removed after 5.2).
Inputs: the first --sentences lines of tests/fixtures/models/minilm/sentences.jsonl with 3 to 200
words (mixed lengths, scripts and emoji). Each measurement is one process that loads the model
(untimed), runs one untimed pass and then one timed pass over all the sentences at batch B and
N threads:
  - Ember:        build/bin/bench_models classify|ner (EMBER_NUM_THREADS = OPENBLAS_NUM_THREADS = N)
  - transformers: pipeline(task)(texts, batch_size=B), torch.set_num_threads(N)
Ember and transformers runs alternate, configuration by configuration, for --rounds rounds, so that
changes in the load of a shared machine hit both; the table gives the median over the rounds, the
spread (max - min) / median, and the ratio of the medians.

Usage: tools/.venv/bin/python bench/pipelines_bench.py [--rounds 5] [--sentences 64]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from models_bench import CACHE, ROOT, SENTENCES, ember, run_measured  # noqa: E402

MODELS = {"classify": CACHE / "derived" / "bert-base-random-seq",
          "ner": CACHE / "derived" / "bert-base-random-tok"}
TASKS = {"classify": "text-classification", "ner": "token-classification",
         "qa": "question-answering"}

PEER = r'''
import json, sys, time
task, threads, batch, path, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
import torch, transformers
torch.set_num_threads(threads)
transformers.utils.logging.set_verbosity_error()
texts = [l.rstrip("\n") for l in open(data)]
pipe = transformers.pipeline(task, model=path, device="cpu")
pipe(texts, batch_size=batch)
t = time.perf_counter(); c = time.process_time()
pipe(texts, batch_size=batch)
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "cpu_seconds": time.process_time() - c, "sentences_per_s": len(texts) / s}))
'''


def transformers_run(task, threads, batch, model, data):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    return run_measured([sys.executable, "-c", PEER, TASKS[task], str(threads), str(batch),
                         str(model), str(data)], env)


def ember_run(task, threads, batch, model, data):
    return ember([task, "--model", str(model), "--sentences", str(data), "--batch-size",
                  str(batch), "--repeat", "1"], threads)


def qa_missing():
    """Why QA cannot be compared in this checkout, or None."""
    bench = ROOT / "build" / "bin" / "bench_models"
    probe = subprocess.run([str(bench), "qa"], capture_output=True, text=True)
    if "unknown verb" in probe.stderr:
        return "bench_models has no qa verb"
    import transformers
    if "question-answering" not in transformers.pipelines.SUPPORTED_TASKS:
        return f"transformers {transformers.__version__} has no question-answering pipeline"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sentences", type=int, default=64)
    args = ap.parse_args()
    for task, model in MODELS.items():
        if not model.exists():
            sys.exit(f"{model} is missing: run tools/pipelines/make_bench_models.py")
    texts = []
    for line in filter(None, SENTENCES.read_text().split("\n")):  # not splitlines: U+2028 in texts
        text = json.loads(line).replace("\n", " ").replace("\r", " ")
        if 3 <= len(text.split()) <= 200:
            texts.append(text)
    data = pathlib.Path("/tmp/ember_pipelines_bench.txt")
    data.write_text("".join(t + "\n" for t in texts[:args.sentences]))
    tasks = list(MODELS)
    missing = qa_missing()
    if missing:
        print(f"QA: skipped ({missing})")
    print(f"load average: {os.getloadavg()}; {min(len(texts), args.sentences)} sentences, "
          f"{args.rounds} rounds")
    configs = [(task, threads, batch) for task in tasks for threads in (1, 2) for batch in (1, 32)]
    times = {c: {"ember": [], "transformers": []} for c in configs}
    for r in range(args.rounds):
        for c in configs:
            task, threads, batch = c
            times[c]["ember"].append(ember_run(task, threads, batch, MODELS[task], data))
            times[c]["transformers"].append(
                transformers_run(task, threads, batch, MODELS[task], data))
        # The table so far after every round: a long run on a busy machine still reports.
        print(f"after round {r + 1}; load average {os.getloadavg()}", flush=True)
        print_table(configs, times)


def print_table(configs, times):
    print("| task | threads | batch | Ember sent/s (spread) | transformers sent/s (spread) "
          "| Ember/transformers | CPU s Ember / transformers |")
    print("|---|---|---|---|---|---|---|")
    for c in configs:
        row = {}
        for peer, runs in times[c].items():
            rates = [x["sentences_per_s"] for x in runs]
            median = statistics.median(rates)
            cpu = statistics.median(x["cpu_seconds"] for x in runs)
            row[peer] = (median, (max(rates) - min(rates)) / median, cpu)
        e, t = row["ember"], row["transformers"]
        print(f"| {c[0]} | {c[1]} | {c[2]} | {e[0]:.2f} ({e[1]:.0%}) | {t[0]:.2f} ({t[1]:.0%}) | "
              f"{e[0] / t[0]:.2f}x | {e[2]:.1f} / {t[2]:.1f} |", flush=True)

if __name__ == "__main__":
    main()
