#!/usr/bin/env python3
"""F32 GEMM libraries side by side on the shapes of transformer inference (the GEMM study).

    python3 bench/gemm_bench.py [--quick] [--rounds N] [--threads 1,2] [--only NAME,NAME]
                                [--json OUT]

Times C[M,N] = A[M,K] @ B[N,K]^T (ember's `linear`: weights [out, in]) with bench_gemm, one
process per library, on all-MiniLM-L6-v2 and SmolLM2-135M layer shapes for M (tokens in the
batch) in 1..2048, plus a square 1024^3, at 1 and 2 threads. Candidates are interleaved: each
round visits every M, then every thread count, then every library in a fresh random order, so
machine load hits them alike; the figure kept is the best call over all rounds. The 1-minute
load average is read before every run and printed beside each figure.

Candidates (skipped with a note when their library is missing):
  debian-openblas       Debian 12's libopenblas 0.3.21 with this machine's environment as is:
                        what ember links and runs today (OPENBLAS_CORETYPE may be set here)
  debian-openblas-auto  the same library with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset
  scipy-openblas        OpenBLAS from the PyPI wheel scipy-openblas32, both variables unset;
                        measurement only: pip download it into bench/out/ first, see --help-setup
  blis-skx              Debian's BLIS 0.9.0 (pthreads flavour), kernel forced with BLIS_ARCH_TYPE
                        (its auto-detection falls back to `generic` on CPUs it does not know)
  blis-auto             the same with auto-detection (not in the default set: slow when generic)
  onednn                Debian's oneDNN 2.6.3, dnnl_sgemm (OpenMP threads)

Env: EMBER_BUILD_DIR (default build) for bench_gemm; the thread variables are set per run.
"""
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, os.environ.get("EMBER_BUILD_DIR", "build"), "bin", "bench_gemm")
LIBDIR = "/usr/lib/x86_64-linux-gnu"
SCIPY_OPENBLAS = os.path.join(ROOT, "bench", "out", "scipy-openblas32", "scipy_openblas32", "lib",
                              "libscipy_openblas.so")
SETUP = """Measurement-only libraries (none of them is an ember dependency):
  apt-get install libblis4-pthread libdnnl2
  pip download --no-deps -d bench/out/wheels scipy-openblas32
  python3 -m zipfile -e bench/out/wheels/scipy_openblas32-*.whl bench/out/scipy-openblas32"""

UNSET_OPENBLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# name -> (bench_gemm kind, library path, environment changes: value None unsets)
CANDIDATES = {
    "debian-openblas": ("openblas", f"{LIBDIR}/libopenblas.so.0", {}),
    "debian-openblas-auto": ("openblas", f"{LIBDIR}/libopenblas.so.0",
                             dict.fromkeys(UNSET_OPENBLAS_TUNING)),
    "scipy-openblas": ("scipy-openblas", SCIPY_OPENBLAS, dict.fromkeys(UNSET_OPENBLAS_TUNING)),
    "blis-skx": ("blis", f"{LIBDIR}/blis-pthread/libblis.so.4", {"BLIS_ARCH_TYPE": "0"}),
    "blis-auto": ("blis", f"{LIBDIR}/blis-pthread/libblis.so.4", {}),
    "onednn": ("dnnl", f"{LIBDIR}/libdnnl.so.2", {}),
}
DEFAULT = ["debian-openblas", "debian-openblas-auto", "scipy-openblas", "blis-skx", "onednn"]

# (model, layer, N = out features, K = in features, largest M it runs at)
LAYERS = [
    ("MiniLM", "q/k/v/o", 384, 384, None),
    ("MiniLM", "ffn up", 1536, 384, None),
    ("MiniLM", "ffn down", 384, 1536, None),
    ("SmolLM2", "q/o", 576, 576, None),
    ("SmolLM2", "k/v", 192, 576, None),
    ("SmolLM2", "gate/up", 1536, 576, None),
    ("SmolLM2", "down", 576, 1536, None),
    # Logits are needed for the last position only: decode batches, never whole prompts.
    ("SmolLM2", "lm_head", 49152, 576, 128),
]
MS = [1, 8, 32, 128, 512, 2048]


def shapes_by_m(quick):
    ms = [1, 32, 512] if quick else MS
    groups = {m: [(m, n, k, f"{model} {layer}") for model, layer, n, k, top in LAYERS
                  if top is None or m <= top] for m in ms}
    groups["square"] = [(1024, 1024, 1024, "square 1024^3")]
    return groups


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_helper(name, threads, shapes, min_s):
    kind, lib, env_changes = CANDIDATES[name]
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    for var, value in env_changes.items():
        if value is None:
            env.pop(var, None)
        else:
            env[var] = value
    stdin = "".join(f"{m} {n} {k}\n" for m, n, k, _ in shapes)
    load = load1()
    proc = subprocess.run([HELPER, kind, lib, str(threads), str(min_s)], input=stdin, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: bench_gemm failed ({proc.returncode}): {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()
    info = lines[0].removeprefix("info ")
    results = {}
    for line in lines[1:]:
        m, n, k, seconds, calls, ok = line.split()
        results[(int(m), int(n), int(k))] = (float(seconds), ok == "ok")
    return info, load, results


def main():
    args = sys.argv[1:]
    if "--help-setup" in args:
        print(SETUP)
        return
    quick = "--quick" in args
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else (1 if quick else 3)
    names = args[args.index("--only") + 1].split(",") if "--only" in args else DEFAULT
    json_out = args[args.index("--json") + 1] if "--json" in args else None
    min_s = 0.03 if quick else 0.1
    thread_counts = ([int(t) for t in args[args.index("--threads") + 1].split(",")]
                     if "--threads" in args else [1, 2])

    if not os.path.exists(HELPER):
        sys.exit(f"{HELPER} is missing: cmake --build build --target bench_gemm")
    available = []
    for name in names:
        if os.path.exists(CANDIDATES[name][1]):
            available.append(name)
        else:
            print(f"skipping {name}: {CANDIDATES[name][1]} is missing\n{SETUP}", file=sys.stderr)
    if not available:
        sys.exit("no candidate library is installed")
    groups = shapes_by_m(quick)

    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read().splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "?")
    avx512 = any(l.startswith("flags") and " avx512f" in l for l in cpuinfo)
    print(f"CPU: {cpu}, {os.cpu_count()} cores, AVX-512: {'yes' if avx512 else 'no'}")
    started, loads = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), []

    best = {}  # (name, threads, shape) -> (seconds, load at that run)
    infos, wrong = {}, set()
    rng = random.Random(0)
    for r in range(rounds):
        for m, shapes in groups.items():
            for threads in thread_counts:
                order = available[:]
                rng.shuffle(order)
                for name in order:
                    info, load, results = run_helper(name, threads, shapes, min_s)
                    infos[name] = info
                    loads.append(load)
                    for shape, (seconds, ok) in results.items():
                        if not ok:
                            wrong.add((name, threads, shape))
                        key = (name, threads, shape)
                        if key not in best or seconds < best[key][0]:
                            best[key] = (seconds, load)
        print(f"round {r + 1}/{rounds} done, load {load1():.1f}", file=sys.stderr)

    print(f"run {started}, {rounds} rounds, 1-min load average {min(loads):.1f}-{max(loads):.1f} "
          f"(includes this benchmark's own 1-2 threads)")
    for name in available:
        print(f"  {name}: {infos[name]}")
    if wrong:
        print("WRONG RESULTS (spot check failed): " +
              ", ".join(f"{n} t{t} {s}" for n, t, s in sorted(wrong)))

    base = available[0]
    for threads in thread_counts:
        print(f"\n### {threads} thread{'s' if threads > 1 else ''}: GFLOP/s (load at the best "
              f"run); ratio = best other / {base}\n")
        print("| shape | M | N | K | " + " | ".join(available) + " | best | ratio |")
        print("| --- | ---: | ---: | ---: |" + " ---: |" * len(available) + " --- | ---: |")
        for shapes in groups.values():
            for m, n, k, what in shapes:
                flops = 2.0 * m * n * k
                cells, rates = [], {}
                for name in available:
                    seconds, load = best[(name, threads, (m, n, k))]
                    rates[name] = flops / seconds / 1e9
                    flag = " WRONG" if (name, threads, (m, n, k)) in wrong else ""
                    cells.append(f"{rates[name]:.1f} ({load:.0f}){flag}")
                winner = max(rates, key=rates.get)
                others = max((v for key, v in rates.items() if key != base), default=rates[base])
                print(f"| {what} | {m} | {n} | {k} | " + " | ".join(cells) +
                      f" | {winner} | {others / rates[base]:.2f}x |")

    if json_out:
        rows = [{"library": n, "threads": t, "m": s[0], "n": s[1], "k": s[2], "seconds": v[0],
                 "load1": v[1], "ok": (n, t, s) not in wrong} for (n, t, s), v in best.items()]
        with open(json_out, "w") as f:
            json.dump({"cpu": cpu, "avx512": avx512, "started": started, "rounds": rounds,
                       "libraries": infos, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
