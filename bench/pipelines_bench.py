#!/usr/bin/env python3
"""Text-pipeline throughput: Ember vs transformers.pipeline (PyTorch, CPU, F32) in one run.

Tasks: text classification (top 1), token classification (NER, no aggregation) and extractive
question answering (top 1, default windows of 384 tokens with stride 128) on BERT-base sized models
with random weights (tools/pipelines/make_bench_models.py; random weights take the time trained
ones do). Inputs: the first --sentences lines of tests/fixtures/models/minilm/sentences.jsonl with
3 to 200 words (mixed lengths, scripts and emoji); for QA, --qa-pairs pairs whose context joins 6
consecutive lines of that list, starting at evenly spaced places in it (~200 word pieces on
average, SQuAD-sized; a long one spans two windows), and whose question is the first 8 words of
the context's second line. Each measurement is one process that loads the model (untimed), runs one untimed pass and
then one timed pass over all the inputs at batch B (QA: B windows) and N threads:
  - Ember:        build/bin/bench_models classify|ner|qa
                  (EMBER_NUM_THREADS = OPENBLAS_NUM_THREADS = N)
  - transformers: pipeline(task)(inputs, batch_size=B), torch.set_num_threads(N); QA runs under
                  --qa-python, a transformers 5.2.0 venv (tools/pipelines/setup_qa_venv.sh), as
                  transformers removed the question-answering pipeline after 5.2.
Ember and transformers runs alternate, configuration by configuration, for --rounds rounds, so that
changes in the load of a shared machine hit both; the table gives the median over the rounds, the
spread (max - min) / median, the ratio of the medians, and the median CPU seconds of a pass with
their ratio (transformers / Ember: how many times the CPU work Ember's pass costs).

Usage: tools/.venv/bin/python bench/pipelines_bench.py [--rounds 5] [--sentences 64]
           [--qa-pairs 16] [--qa-python tools/.venv-qa/bin/python] [--tasks classify,ner,qa]
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
          "ner": CACHE / "derived" / "bert-base-random-tok",
          "qa": CACHE / "derived" / "bert-base-random-qa"}
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
if task == "question-answering":
    pairs = [json.loads(t) for t in texts]
    run = lambda: pipe(question=[p["question"] for p in pairs],
                       context=[p["context"] for p in pairs], batch_size=batch)
else:
    run = lambda: pipe(texts, batch_size=batch)
run()
t = time.perf_counter(); c = time.process_time()
run()
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "cpu_seconds": time.process_time() - c, "sentences_per_s": len(texts) / s}))
'''


def transformers_run(python, task, threads, batch, model, data):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    return run_measured([str(python), "-c", PEER, TASKS[task], str(threads), str(batch),
                         str(model), str(data)], env)


def ember_run(task, threads, batch, model, data):
    return ember([task, "--model", str(model), "--sentences", str(data), "--batch-size",
                  str(batch), "--repeat", "1"], threads)


def qa_missing(python):
    """Why QA cannot be compared, or None."""
    if not pathlib.Path(python).exists():
        return f"no {python}: run tools/pipelines/setup_qa_venv.sh"
    probe = subprocess.run([str(python), "-c", "import transformers; print(transformers.__version__,"
                            " 'question-answering' in transformers.pipelines.SUPPORTED_TASKS)"],
                           capture_output=True, text=True)
    if not probe.stdout.strip().endswith("True"):
        return f"{python} has no question-answering pipeline ({probe.stdout.strip()})"
    return None


def qa_pairs(texts, count):
    pairs = []
    step = max(1, (len(texts) - 6) // max(1, count - 1))
    for k in range(count):
        lines = texts[step * k:step * k + 6]
        if len(lines) < 6:
            break
        pairs.append({"question": " ".join(lines[1].split()[:8]) + "?",
                      "context": " ".join(lines)})
    return pairs


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sentences", type=int, default=64)
    ap.add_argument("--qa-pairs", type=int, default=16)
    ap.add_argument("--qa-python", default=str(ROOT / "tools" / ".venv-qa" / "bin" / "python"))
    ap.add_argument("--tasks", default="classify,ner,qa")
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    if "qa" in tasks:
        missing = qa_missing(args.qa_python)
        if missing:
            print(f"QA: skipped ({missing})")
            tasks.remove("qa")
    for task in tasks:
        if not MODELS[task].exists():
            sys.exit(f"{MODELS[task]} is missing: run tools/pipelines/make_bench_models.py")
    texts = []
    for line in filter(None, SENTENCES.read_text().split("\n")):  # not splitlines: U+2028 in texts
        text = json.loads(line).replace("\n", " ").replace("\r", " ")
        if 3 <= len(text.split()) <= 200:
            texts.append(text)
    data = {"classify": pathlib.Path("/tmp/ember_pipelines_bench.txt"),
            "qa": pathlib.Path("/tmp/ember_pipelines_bench_qa.jsonl")}
    data["ner"] = data["classify"]
    data["classify"].write_text("".join(t + "\n" for t in texts[:args.sentences]))
    pairs = qa_pairs(texts, args.qa_pairs)
    data["qa"].write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    python = {task: args.qa_python if task == "qa" else sys.executable for task in tasks}
    print(f"{uptime()}; {min(len(texts), args.sentences)} sentences, {len(pairs)} QA pairs, "
          f"{args.rounds} rounds")
    configs = [(task, threads, batch) for task in tasks for threads in (1, 2) for batch in (1, 32)]
    times = {c: {"ember": [], "transformers": []} for c in configs}
    for r in range(args.rounds):
        for c in configs:
            task, threads, batch = c
            times[c]["ember"].append(ember_run(task, threads, batch, MODELS[task], data[task]))
            times[c]["transformers"].append(
                transformers_run(python[task], task, threads, batch, MODELS[task], data[task]))
        # The table so far after every round: a long run on a busy machine still reports.
        print(f"after round {r + 1}; {uptime()}", flush=True)
        print_table(configs, times)


def print_table(configs, times):
    print("| task | threads | batch | Ember inputs/s (spread) | transformers inputs/s (spread) "
          "| wall ratio | CPU s Ember / transformers | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for c in configs:
        row = {}
        for peer, runs in times[c].items():
            rates = [x["sentences_per_s"] for x in runs]
            median = statistics.median(rates)
            cpu = statistics.median(x["cpu_seconds"] for x in runs)
            row[peer] = (median, (max(rates) - min(rates)) / median, cpu)
        e, t = row["ember"], row["transformers"]
        print(f"| {c[0]} | {c[1]} | {c[2]} | {e[0]:.2f} ({e[1]:.0%}) | {t[0]:.2f} ({t[1]:.0%}) | "
              f"{e[0] / t[0]:.2f}x | {e[2]:.2f} / {t[2]:.2f} | {t[2] / e[2]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
