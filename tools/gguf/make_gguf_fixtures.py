#!/usr/bin/env python3
"""Writes the GGUF reader fixtures under tests/fixtures/gguf with the reference `gguf` package
(pinned in tools/requirements.txt) and, beside each FILE.gguf, FILE.json: what the reference's
GGUFReader reads back from it (version, alignment, data offset, every metadata value with its
type, every tensor's type, shape in Ember's order, offset and values as float64).

Run from the repository root: tools/.venv/bin/python tools/gguf/make_gguf_fixtures.py
"""
import json
import math
import pathlib
import struct

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "gguf"


def bf16_bytes(values: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even F32 -> BF16, as raw uint16 (the values used are exact in BF16)."""
    bits = values.astype(np.float32).view(np.uint32)
    assert np.all((bits & 0xFFFF) == 0), "fixture BF16 values must be exact"
    return (bits >> 16).astype(np.uint16)


def add_metadata(w: gguf.GGUFWriter) -> None:
    w.add_uint8("test.u8", 250)
    w.add_int8("test.i8", -120)
    w.add_uint16("test.u16", 65000)
    w.add_int16("test.i16", -32000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo, wörld 👋")
    # add_string skips empty strings; an empty one goes through add_key_value.
    w.add_key_value("test.empty_string", "", V.STRING)
    w.add_uint64("test.u64", 18_000_000_000_000_000_000)
    w.add_int64("test.i64", -9_000_000_000_000_000_000)
    w.add_float64("test.f64", -1.0e300)
    w.add_key_value("test.array_u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.array_i16", [-3, 0, 3], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("test.array_i32", [-1, 2, -3, 4], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.array_u64", [2**64 - 1, 0], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.array_f32", [0.5, -1.25, 3.0e-8], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("test.array_f64", [math.pi, -0.0], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("test.array_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_array("test.array_string", ["a", "", "ünïcode", "<0x0A>", "Ġthe"])
    w.add_key_value("test.array_nested", NESTED["test.array_nested"], V.ARRAY)


def write(name: str, *, alignment: int | None = None, version: int = 3, metadata: bool = True,
          tensors: bool = True) -> None:
    path = OUT / f"{name}.gguf"
    w = gguf.GGUFWriter(path, arch="test")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    if metadata:
        add_metadata(w)
    if tensors:
        rng = np.random.default_rng(16)
        w.add_tensor("f32_matrix", rng.standard_normal((3, 5)).astype(np.float32))
        w.add_tensor("f32_3d", rng.standard_normal((2, 3, 4)).astype(np.float32))
        w.add_tensor("f16_vector", rng.standard_normal(7).astype(np.float16))
        exact = (rng.integers(-64, 64, (4, 2)) / 8).astype(np.float32)
        w.add_tensor("bf16_matrix", bf16_bytes(exact), raw_shape=exact.shape, raw_dtype=Q.BF16)
        w.add_tensor("i32_vector", np.arange(-2, 3, dtype=np.int32))
        w.add_tensor("f32_scalar_like", np.array([42.5], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        # Versions 2 and 3 share one layout (3 only added big-endian files): the reference
        # writer makes v3, so a v2 file is the same bytes with the version field changed.
        data = bytearray(path.read_bytes())
        struct.pack_into("<I", data, 4, version)
        path.write_bytes(bytes(data))
    describe(path)


NESTED = {"test.array_nested": [[1, 2], [3], [4, 5, 6]]}


def value_json(key: str, field: gguf.ReaderField):
    value = field.contents()
    if key in NESTED:
        # GGUFReader flattens arrays of arrays; record what was written, after checking that the
        # reader saw the same items.
        assert value == [x for row in NESTED[key] for x in row], value
        return NESTED[key]
    return value


def type_json(types: list) -> dict:
    out = {"type": V(types[0]).name}
    if types[0] == V.ARRAY:
        out["element"] = type_json(types[1:])
    return out


def float_values(t: gguf.ReaderTensor) -> list:
    if t.tensor_type == Q.BF16:
        raw = np.asarray(t.data).view(np.uint16).astype(np.uint32) << 16
        return raw.view(np.float32).astype(np.float64).ravel().tolist()
    return np.asarray(t.data).astype(np.float64).ravel().tolist()


def describe(path: pathlib.Path) -> None:
    r = gguf.GGUFReader(path)
    version = int(r.fields["GGUF.version"].parts[-1][0])
    meta = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        value = value_json(key, field)
        if isinstance(value, float) and math.isnan(value):
            value = "NaN"
        meta.append({"key": key, **type_json(field.types), "value": value})
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "ggml_type": int(t.tensor_type),
            "shape": [int(d) for d in reversed(t.shape.tolist())],
            "offset": int(t.data_offset) - int(r.data_offset),
            "nbytes": int(t.n_bytes),
            "values": float_values(t),
        })
    doc = {"version": version, "alignment": int(r.alignment), "data_offset": int(r.data_offset),
           "file_size": path.stat().st_size, "metadata": meta, "tensors": tensors}
    (path.with_suffix(".json")).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("all_types")
    write("v2", version=2)
    write("aligned_64", alignment=64, metadata=False)
    write("no_tensors", tensors=False)
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
