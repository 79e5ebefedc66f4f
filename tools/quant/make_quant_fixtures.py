#!/usr/bin/env python3
"""Fixtures for tests/core/quant_test.cpp: GGML block quantization by ggml itself.

The reference is the libggml-base shared library that llama-cpp-python (pinned in
tools/requirements.txt) builds and bundles: ggml_quantize_chunk (which, without an importance
matrix, runs ggml's quantize_row_*_ref), the exported quantize_row_q8_1_ref /
quantize_row_q8_K_ref for the activation formats, and the type traits' to_float
(dequantize_row_*). The gguf package's numpy quantizers (gguf.quants) are checked against
ggml here as a second reference for the types they support.

Writes tests/fixtures/quant/:
  input.f32      uint32 rows, uint32 cols, then rows*cols float32: the test inputs, one
                 distribution per row (normal, skewed uniform, outliers, zeros, tiny, mixed
                 blocks).
  <TYPE>.bin     for each block type: ggml's quantized bytes of the input rows, ggml's
                 dequantization of them (float32), then RANDOM_ROWS rows of random blocks (any
                 bit pattern, scales set to finite values) and ggml's dequantization of those.
"""
import ctypes
import os
import pathlib
import struct
import sys

import numpy as np

ROWS_COLS = (6, 512)
RANDOM_ROWS = 2
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "quant"

# name: (ggml_type, block elems, block bytes, byte offsets of the F16 scales in a block)
TYPES = {
    "Q4_0": (2, 32, 18, [0]),
    "Q4_1": (3, 32, 20, [0, 2]),
    "Q5_0": (6, 32, 22, [0]),
    "Q5_1": (7, 32, 24, [0, 2]),
    "Q8_0": (8, 32, 34, [0]),
    "Q8_1": (9, 32, 36, [0, 2]),
    "Q2_K": (10, 256, 84, [80, 82]),
    "Q3_K": (11, 256, 110, [108]),
    "Q4_K": (12, 256, 144, [0, 2]),
    "Q5_K": (13, 256, 176, [0, 2]),
    "Q6_K": (14, 256, 210, [208]),
    "Q8_K": (15, 256, 292, []),  # F32 scale at offset 0, int16 sums at the end
}


class TypeTraits(ctypes.Structure):
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


ROW_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def load_ggml():
    # GGML_BASE_LIB may name a libggml-base built elsewhere (same ggml revision as the pin).
    path = os.environ.get("GGML_BASE_LIB")
    if not path:
        import llama_cpp

        lib_dir = pathlib.Path(llama_cpp.__file__).parent / "lib"
        candidates = sorted(lib_dir.glob("libggml-base.so*"))
        if not candidates:
            sys.exit(f"libggml-base not found under {lib_dir}")
        path = str(candidates[0])
    ggml = ctypes.CDLL(path)
    ggml.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    ggml.ggml_get_type_traits.argtypes = [ctypes.c_int]
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                         ctypes.c_void_p]
    return ggml


def make_input(rng):
    rows, cols = ROWS_COLS
    x = np.zeros((rows, cols), dtype=np.float32)
    x[0] = rng.standard_normal(cols)
    x[1] = rng.uniform(-0.5, 3.0, cols)  # skewed: mins matter
    x[2] = 0.02 * rng.standard_normal(cols)
    x[2, rng.choice(cols, 8, replace=False)] = rng.choice([-1, 1], 8) * rng.uniform(5, 40, 8)
    # x[3] stays all zero
    x[4] = 1e-6 * rng.standard_normal(cols)  # F16 scales go subnormal
    # Mixed blocks: all-positive, all-negative, constant, half-zero, one nonzero element.
    m = rng.standard_normal(cols).astype(np.float32)
    m[0:64] = np.abs(m[0:64])
    m[64:128] = -np.abs(m[64:128])
    m[128:192] = 0.75
    m[192:256:2] = 0.0
    m[256:320] = 0.0
    m[300] = -2.5
    m[320:512] *= np.linspace(0.01, 10, 192, dtype=np.float32)
    x[5] = m
    return x


def quantize(ggml, name, x):
    gtype, elems, size, _ = TYPES[name]
    rows, cols = x.shape
    out = np.zeros(rows * cols // elems * size, dtype=np.uint8)
    if name in ("Q8_1", "Q8_K"):
        fn = getattr(ggml, "quantize_row_q8_1_ref" if name == "Q8_1" else "quantize_row_q8_K_ref")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn(x.ctypes.data, out.ctypes.data, x.size)
    else:
        written = ggml.ggml_quantize_chunk(gtype, x.ctypes.data, out.ctypes.data, 0, rows, cols,
                                           None)
        assert written == out.size, (name, written, out.size)
    return out


def dequantize(ggml, name, q, n):
    gtype, elems, size, _ = TYPES[name]
    y = np.zeros(n, dtype=np.float32)
    if name == "Q8_1":  # ggml has no Q8_1 dequantizer: d * q, one float product per value
        blocks = q.reshape(-1, size)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        qs = blocks[:, 4:].view(np.int8).astype(np.float32)
        return (qs * d).reshape(-1).astype(np.float32)
    if name == "Q8_K":
        fn = ggml.dequantize_row_q8_K
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn(q.ctypes.data, y.ctypes.data, n)
        return y
    traits = ggml.ggml_get_type_traits(gtype).contents
    assert traits.to_float, name
    ROW_FN(traits.to_float)(q.ctypes.data, y.ctypes.data, n)
    return y


def random_blocks(rng, name, n):
    _, elems, size, scales = TYPES[name]
    q = rng.integers(0, 256, n // elems * size, dtype=np.uint8).reshape(-1, size)
    for off in scales:
        d = rng.uniform(-2.0, 2.0, q.shape[0]).astype(np.float16)
        q[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)
    if name == "Q8_K":
        q[:, 0:4] = rng.uniform(-0.1, 0.1, q.shape[0]).astype(np.float32).view(np.uint8) \
            .reshape(-1, 4)
    return q.reshape(-1)


def check_with_gguf(name, x, q):
    """gguf.quants as a second reference where it implements the type."""
    from gguf import GGMLQuantizationType, quants

    qtype = GGMLQuantizationType[name]
    try:
        ours = quants.quantize(x, qtype)
    except NotImplementedError:
        return "dequantize only"
    if not np.array_equal(ours.reshape(-1), q):
        sys.exit(f"{name}: gguf.quants quantizes differently from ggml")
    return "quantize matches ggml"


def main():
    rng = np.random.default_rng(20261130)
    x = make_input(rng)
    ggml = load_ggml()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "input.f32", "wb") as f:
        f.write(struct.pack("<II", *x.shape))
        f.write(x.tobytes())
    for name in TYPES:
        q = quantize(ggml, name, x)
        deq = dequantize(ggml, name, q, x.size)
        rq = random_blocks(rng, name, RANDOM_ROWS * x.shape[1])
        rdeq = dequantize(ggml, name, rq, RANDOM_ROWS * x.shape[1])
        note = "" if name in ("Q8_1", "Q8_K") else check_with_gguf(name, x, q)
        with open(OUT / f"{name}.bin", "wb") as f:
            for part in (q, deq, rq, rdeq):
                f.write(part.tobytes())
        print(f"{name}: {q.size} bytes, max |x - deq| = {np.abs(x - deq.reshape(x.shape)).max():.4g}"
              f" {note}")


if __name__ == "__main__":
    main()
