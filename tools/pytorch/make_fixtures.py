#!/usr/bin/env python3
"""Writes the committed PyTorch checkpoint fixtures with the reference torch (pinned in
tools/requirements.txt) and their expected contents with the reference safetensors writer.

    tools/.venv/bin/python tools/pytorch/make_fixtures.py

Outputs under tests/fixtures/pytorch/good/:
  NAME.bin           torch.save of a state dict (variants below)
  NAME.safetensors   the same tensors (made contiguous, one copy per name) written by
                     safetensors.torch.save_file with metadata {"format": "pt"}: `ember convert`
                     must write these bytes exactly
  NAME.json          per tensor: dtype, shape, stride, storage_offset, storage group (tensors
                     with the same group share one storage in torch), and the file's format
  sharded/           pytorch_model.bin.index.json + two shards (torch.save, zip format) and
                     sharded.safetensors, the expected union
Then tools/pytorch/make_malicious.py (standard library only) writes the refused inputs.
The zip files are reproducible; legacy files are not byte for byte (their storage keys are
Python object ids), though what they hold is.
"""
import json
import shutil
from collections import OrderedDict
from pathlib import Path

import safetensors
import torch
from safetensors.torch import save_file

assert torch.__version__.split("+")[0] == "2.15.0", torch.__version__
assert safetensors.__version__ == "0.8.0", safetensors.__version__

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "pytorch" / "good"

ST_DTYPE = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL", torch.uint16: "U16", torch.uint32: "U32",
    torch.uint64: "U64", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}


class Tiny(torch.nn.Module):
    """A module, so that state_dict() carries the `_metadata` attribute torch pickles."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(6, 4)
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.head = torch.nn.Linear(4, 6, bias=False)
        self.head.weight = self.embed.weight  # tied: one storage, two names


def base_state_dict():
    torch.manual_seed(1234)
    sd = Tiny().state_dict()
    big = torch.randn(5, 7)
    sd["half.weight"] = torch.randn(3, 5).to(torch.float16)
    sd["bf16.weight"] = torch.randn(2, 9).to(torch.bfloat16)
    sd["position_ids"] = torch.arange(12, dtype=torch.int64).reshape(1, 12)
    sd["counts"] = torch.tensor([1, -2, 300000], dtype=torch.int32)
    sd["mask"] = torch.tensor([[True, False, True]])
    sd["f64"] = torch.randn(4, dtype=torch.float64)
    sd["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["i16"] = torch.tensor([-32768, 5, 32767], dtype=torch.int16)
    sd["scale"] = torch.tensor(0.125)  # scalar (0-d)
    sd["empty"] = torch.zeros(0, 4)
    sd["transposed"] = big.t()  # non-contiguous view of `big`
    sd["rows"] = big[1:4]  # offset view sharing `big`'s storage
    sd["every_other"] = big[:, ::2]  # strided columns of the same storage
    sd["expanded"] = torch.randn(3, 1).expand(3, 4)  # stride 0
    return sd


def describe(sd, fmt):
    groups, out = {}, {}
    for name, t in sd.items():
        ptr = t.untyped_storage().data_ptr()
        group = groups.setdefault(ptr, len(groups))
        out[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                     "stride": list(t.stride()), "storage_offset": t.storage_offset(),
                     "storage_group": group}
    return {"format": fmt, "tensors": out}


def expected_safetensors(sd, path):
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, str(path),
              metadata={"format": "pt"})


def check_round_trip(path, sd, weights_only=True):
    loaded = torch.load(path, weights_only=weights_only)
    while not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        loaded = next(v for k, v in loaded.items() if k in ("state_dict", "model"))
    assert list(loaded) == list(sd), path
    for k in sd:
        assert torch.equal(loaded[k], sd[k]), (path, k)


def write(name, obj, sd, fmt, **save_args):
    path = OUT / f"{name}.bin"
    torch.save(obj, path, **save_args)
    # torch's weights-only unpickler does not know protocol 4's FRAME opcode; these are our own
    # files, just written, so the full unpickler may read them back.
    check_round_trip(path, sd, weights_only=save_args.get("pickle_protocol", 2) == 2)
    expected_safetensors(sd, OUT / f"{name}.safetensors")
    (OUT / f"{name}.json").write_text(json.dumps(describe(sd, fmt), indent=1) + "\n")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    sd = base_state_dict()
    write("basic_zip", sd, sd, "zip")
    write("basic_zip_protocol4", sd, sd, "zip", pickle_protocol=4)
    write("basic_legacy", sd, sd, "legacy", _use_new_zipfile_serialization=False)
    # A training checkpoint: the state dict under a well-known wrapper key, next to other data.
    wrapped = {"epoch": 3, "state_dict": sd, "optimizer": None, "lr": 0.5, "tags": ["a", "b"]}
    write("nested_zip", wrapped, sd, "zip")
    write("nested_legacy", wrapped, sd, "legacy", _use_new_zipfile_serialization=False)
    small = OrderedDict((k, sd[k]) for k in ("proj.weight", "proj.bias", "scale"))
    write("wrapped_twice_zip", {"model": {"state_dict": small, "step": 10}}, small, "zip")
    # Newer dtypes pickle through torch._utils._rebuild_tensor_v3 over an untyped storage.
    torch.manual_seed(7)
    newer = OrderedDict(
        f8_e4m3=torch.randn(2, 4).to(torch.float8_e4m3fn),
        f8_e5m2=torch.randn(4, 2).to(torch.float8_e5m2).t(),
        u16=torch.tensor([0, 1, 65535], dtype=torch.uint16),
        u32=torch.tensor([0, 4000000000], dtype=torch.uint32),
        u64=torch.tensor([1, 2**63 + 5], dtype=torch.uint64),
        plain=torch.randn(16))
    write("newer_dtypes_zip", newer, newer, "zip")
    # (No legacy variant: torch 2.15 writes one but cannot load it back.)
    # nn.Parameter values pickle through torch._utils._rebuild_parameter.
    torch.manual_seed(99)
    params = OrderedDict(w=torch.nn.Parameter(torch.randn(2, 3)),
                         b=torch.nn.Parameter(torch.randn(3).to(torch.bfloat16),
                                              requires_grad=False))
    write("parameters_zip", params, params, "zip")

    shard_dir = OUT / "sharded"
    shard_dir.mkdir()
    names = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    weight_map = {}
    for file, keys in shards.items():
        part = OrderedDict((k, sd[k]) for k in keys)
        torch.save(part, shard_dir / file)
        check_round_trip(shard_dir / file, part)
        weight_map.update({k: file for k in keys})
    index = {"metadata": {"total_size": sum(t.nbytes for t in sd.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    (shard_dir / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")
    expected_safetensors(sd, shard_dir / "sharded.safetensors")
    print(f"wrote fixtures under {OUT}")


if __name__ == "__main__":
    main()
