#!/usr/bin/env python3
"""Loads the files Ember wrote with the Python safetensors library and checks them against the
reference fixtures they were made from.

    tools/.venv/bin/python tools/safetensors/check_ember_written.py [BUILD_DIR]

BUILD_DIR (default build/) is where formats_tests ran: its SafeTensorsWriter test writes every
good fixture again into BUILD_DIR/safetensors_written/. The build's sample checkpoint
BUILD_DIR/share/sample.safetensors is loaded too. Exits non-zero on any mismatch.
"""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "safetensors" / "good"


def raw_tensors(path):
    """name -> (dtype code, shape, raw little-endian bytes), through the Python library's reader.
    Raw bytes via numpy uint8 views, so BF16/F8 (which numpy cannot represent) compare too."""
    out = {}
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata()
        for name in f.keys():
            sl = f.get_slice(name)
            dtype, shape = sl.get_dtype(), list(sl.get_shape())
            if dtype in ("BF16", "F8_E4M3", "F8_E5M2"):
                # numpy has no such dtype: read the header offsets and slice the file instead.
                raw = path.read_bytes()
                n = int.from_bytes(raw[:8], "little")
                b, e = json.loads(raw[8:8 + n])[name]["data_offsets"]
                data = raw[8 + n + b:8 + n + e]
            else:
                data = np.ascontiguousarray(f.get_tensor(name)).tobytes()
            out[name] = (dtype, shape, data)
    return out, metadata


def main():
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
    written = build / "safetensors_written"
    files = sorted(written.glob("*.safetensors"))
    if not files:
        sys.exit(f"no Ember-written files in {written}: run formats_tests first")
    failures = 0
    for path in files:
        got, got_meta = raw_tensors(path)
        want, want_meta = raw_tensors(GOOD / path.name)
        ok = got == want and got_meta == want_meta
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {path.name}: {len(got)} tensors, metadata {got_meta}")
    sample = build / "share" / "sample.safetensors"
    if sample.exists():
        tensors, meta = raw_tensors(sample)
        print(f"ok   {sample.name}: {len(tensors)} tensors, metadata {meta}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
