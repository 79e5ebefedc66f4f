#!/usr/bin/env python3
"""Tensor core ops: Ember (bench_core) next to numpy doing the same work, in one run.

    tools/.venv/bin/python bench/core_bench.py [--quick]
Env: EMBER_BUILD_DIR (default build), EMBER_NUM_THREADS / OPENBLAS_NUM_THREADS as usual.
Prints Ember's ms/call, numpy's ms/call for the rows numpy can express, and numpy/Ember
(> 1 means Ember is faster). numpy uses its own bundled OpenBLAS; timings are per call,
best of several rounds, warm caches. numpy has no erf/GELU, so those rows show Ember only.
"""
import os
import subprocess
import sys
import time

import numpy as np

QUICK = "--quick" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, os.environ.get("EMBER_BUILD_DIR", "build"), "bin", "bench_core")


def per_call(fn, min_s=0.05 if QUICK else 0.4):
    fn()
    best = float("inf")
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            el = time.perf_counter() - start
            if el >= min_s / 3:
                break
        best = min(best, el / calls)
    return best


def numpy_cases():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)
    cases = {}
    for name, m, n, k, dt in [
        ("linear 1x4096x4096 f32 (decode)", 1, 4096, 4096, np.float32),
        ("linear 1x4096x4096 f16 weight", 1, 4096, 4096, np.float16),
        ("linear 128x768x768 f32", 128, 768, 768, np.float32),
        ("linear 128x3072x768 f32 (MLP)", 128, 3072, 768, np.float32),
        ("linear 512x512x512 f32", 512, 512, 512, np.float32),
        ("linear 1024x1024x1024 f32", 1024, 1024, 1024, np.float32),
    ]:
        x, w = f32(m, k), f32(n, k).astype(dt)
        # Half weights: convert then GEMM, as Ember does (numpy has no F16 GEMM either).
        cases[name] = (lambda x=x, w=w: x @ w.astype(np.float32).T) if dt != np.float32 else (
            lambda x=x, w=w: x @ w.T)
    q, kt = f32(12, 128, 64), f32(12, 128, 64).transpose(0, 2, 1)
    cases["matmul 12x(128x64 @ 64x128)"] = lambda: q @ kt
    x, w = f32(256, 4096), f32(4096)

    def softmax():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def layer_norm():
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * w + w

    h = x.astype(np.float16)
    cases["ops::softmax [256,4096] (pool)"] = softmax
    cases["ops::layer_norm (pool)"] = layer_norm
    cases["ops::add [256,4096]+[4096] (pool)"] = lambda: x + w
    cases["silu (1 thread)"] = lambda: x / (1 + np.exp(-x))
    cases["f16->f32 (1 thread)"] = lambda: h.astype(np.float32)
    cases["f32->f16 (1 thread)"] = lambda: x.astype(np.float16)
    return cases


def main():
    if not os.access(EMBER, os.X_OK):
        sys.exit(f"error: {EMBER} not found; build target bench_core")
    out = subprocess.run([EMBER] + (["--quick"] if QUICK else []), check=True,
                         capture_output=True, text=True).stdout
    cases = numpy_cases()
    print(out.splitlines()[0], f"numpy={np.__version__}")
    print(f"{'case':34} {'ember ms':>10} {'numpy ms':>10} {'numpy/ember':>12}")
    for line in out.splitlines()[1:]:
        name = line[:34].rstrip()
        fields = line[34:].split()
        if not fields or name in ("gemm", "kernel (F32 unless noted)"):
            continue
        ember_ms = float(fields[0])
        if name in cases:
            np_ms = per_call(cases[name]) * 1e3
            print(f"{name:34} {ember_ms:10.3f} {np_ms:10.3f} {np_ms / ember_ms:12.2f}")
        else:
            print(f"{name:34} {ember_ms:10.3f} {'-':>10} {'-':>12}")


if __name__ == "__main__":
    main()
