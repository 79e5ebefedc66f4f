#!/usr/bin/env python3
"""Training time and peak memory of Ember's trainers against the reference (HF tokenizers), at 1
and 2 threads, on a large corpus made by concatenating shuffled copies of the committed training
corpus (tests/fixtures/tokenizers/trainers/corpus_train.txt).

Each measurement is one process (`ember train-tokenizer --from <case>/template.json` or the
reference's Tokenizer.train in Python), timed wall-clock, with CPU time (user + system) and peak
RSS from GNU time (%U %S %M); on a loaded machine CPU time is the steadier figure. Runs are interleaved (Ember, reference, Ember, ...) so that load changes hit both;
the medians over --reps are reported with the load average.

Usage: bench/trainers_bench.py [--mb 100] [--reps 3] [--ember build/bin/ember] [--only MODEL]
"""
import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "tokenizers" / "trainers"

# (case whose template is used, model, Ember CLI flags, Python trainer expression)
TRAINERS = [
    ("bpe_gpt2", "bpe", ["--vocab-size", "5000", "--initial-alphabet", "bytelevel"],
     "trainers.BpeTrainer(vocab_size=5000, show_progress=False, "
     "initial_alphabet=pre_tokenizers.ByteLevel.alphabet())"),
    ("wordpiece_bert", "wordpiece", ["--vocab-size", "5000", "--special", "[UNK]"],
     "trainers.WordPieceTrainer(vocab_size=5000, show_progress=False, special_tokens=['[UNK]'])"),
    ("wordlevel_whitespace", "wordlevel", ["--vocab-size", "30000", "--special", "<unk>"],
     "trainers.WordLevelTrainer(vocab_size=30000, show_progress=False, special_tokens=['<unk>'])"),
    ("unigram_t5", "unigram", ["--vocab-size", "8000", "--special", "<unk>", "--unk-token", "<unk>"],
     "trainers.UnigramTrainer(vocab_size=8000, show_progress=False, special_tokens=['<unk>'], "
     "unk_token='<unk>')"),
]

REFERENCE = """
import sys
from tokenizers import Tokenizer, trainers, pre_tokenizers
t = Tokenizer.from_str(open(sys.argv[1]).read())
t.train([sys.argv[2]], {trainer})
"""


def make_corpus(path, mb):
    lines = (FIX / "corpus_train.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    rng = random.Random(1)
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        while size < mb * 1_000_000:
            rng.shuffle(lines)
            chunk = "".join(lines)
            out.write(chunk)
            size += len(chunk.encode("utf-8"))


def timed(cmd, env, tmp):
    """(wall seconds, peak RSS in MB, CPU seconds user + system) of one run, from GNU time."""
    report = pathlib.Path(tmp) / "time.txt"
    start = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *cmd], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak, user, system = report.read_text().split()[-3:]
    return seconds, int(peak) / 1024, float(user) + float(system)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ember", default=str(ROOT / "build" / "bin" / "ember"))
    ap.add_argument("--only", default="", help="only this trainer (bpe, wordpiece, ...)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = pathlib.Path(tmp) / "corpus.txt"
        make_corpus(corpus, args.mb)
        results = []
        for case, model, flags, trainer in TRAINERS:
            if args.only and model != args.only:
                continue
            template = FIX / case / "template.json"
            for threads in (1, 2):
                env = dict(os.environ, EMBER_NUM_THREADS=str(threads),
                           RAYON_NUM_THREADS=str(threads))
                ember_cmd = [args.ember, "train-tokenizer", "--from", str(template), "--model",
                             model, *flags, "--out", str(pathlib.Path(tmp) / "out.json"),
                             str(corpus)]
                ref_cmd = [sys.executable, "-c", REFERENCE.format(trainer=trainer),
                           str(template), str(corpus)]
                times = {"ember": [], "reference": []}
                peaks = {"ember": [], "reference": []}
                cpus = {"ember": [], "reference": []}
                for _ in range(args.reps):
                    for name, cmd in (("ember", ember_cmd), ("reference", ref_cmd)):
                        s, p, c = timed(cmd, env, tmp)
                        times[name].append(s)
                        peaks[name].append(p)
                        cpus[name].append(c)
                        print(f"{case} threads={threads} {name}: {s:.2f} s, {c:.2f} CPU s, "
                              f"{p:.0f} MB", flush=True)
                row = {"trainer": model, "threads": threads,
                       "ember_s": statistics.median(times["ember"]),
                       "reference_s": statistics.median(times["reference"]),
                       "ember_peak_mb": statistics.median(peaks["ember"]),
                       "reference_peak_mb": statistics.median(peaks["reference"]),
                       "ember_cpu_s": statistics.median(cpus["ember"]),
                       "reference_cpu_s": statistics.median(cpus["reference"]),
                       "load": os.getloadavg()}
                row["speedup"] = row["reference_s"] / row["ember_s"]
                results.append(row)
                print(json.dumps(row), flush=True)
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
