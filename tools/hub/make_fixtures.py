#!/usr/bin/env python3
"""Writes the model repos that tests/hub's loopback server serves, and their manifest.

Standard library only. Each repo is a small sentence-transformers-style folder; *.safetensors
files are served as LFS files (ETag = sha256 of the contents), the rest as plain git files
(ETag = git blob sha1). manifest.json records, per file, the size and both digests as computed
here by hashlib, so the C++ tests check the client against an independent implementation.

    python3 tools/hub/make_fixtures.py tests/fixtures/hub
"""
import hashlib
import json
import struct
import sys
from pathlib import Path


def safetensors(tensors):
    """tensors: {name: (shape, [floats])} -> bytes of an F32 safetensors file."""
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def values(count, seed):
    # A fixed LCG, so the bytes never depend on the Python version.
    out, state = [], seed
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(((state >> 40) / float(1 << 24)) - 0.5)
    return out


def dumps(obj):
    return (json.dumps(obj, indent=2) + "\n").encode()


def tiny_st():
    hidden = 32
    return {
        "config.json": dumps({"architectures": ["BertModel"], "hidden_size": hidden,
                              "model_type": "bert", "vocab_size": 512}),
        "tokenizer.json": dumps({"version": "1.0", "model": {"type": "WordLevel", "vocab": {"[UNK]": 0},
                                                             "unk_token": "[UNK]"}}),
        "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n",
        "modules.json": dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        ]),
        "sentence_bert_config.json": dumps({"max_seq_length": 128, "do_lower_case": False}),
        "1_Pooling/config.json": dumps({"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}),
        "2_Dense/config.json": dumps({"in_features": hidden, "out_features": 8, "bias": True,
                                      "activation_function": "torch.nn.modules.activation.Tanh"}),
        "2_Dense/model.safetensors": safetensors({"linear.weight": ([8, hidden], values(8 * hidden, 3)),
                                                  "linear.bias": ([8], values(8, 4))}),
        # 96 KiB of weights: large enough that a resumed download is a real split.
        "model.safetensors": safetensors({"embeddings.weight": ([768, hidden], values(768 * hidden, 1))}),
        "README.md": b"# tiny-st\nNot part of a model: never downloaded.\n",
        "onnx/model.onnx": b"not needed by Ember\n",
    }


def tiny_sharded():
    shard1 = safetensors({"a": ([64], values(64, 5))})
    shard2 = safetensors({"b": ([64], values(64, 6))})
    index = {"metadata": {"total_size": 512},
             "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    return {
        "config.json": dumps({"model_type": "llama", "hidden_size": 64}),
        "generation_config.json": dumps({"eos_token_id": 2}),
        "model.safetensors.index.json": dumps(index),
        "model-00001-of-00002.safetensors": shard1,
        "model-00002-of-00002.safetensors": shard2,
        # The same weights in one file, as some repos also ship: the index decides, so not fetched.
        "consolidated.safetensors": safetensors({"a": ([64], values(64, 5)), "b": ([64], values(64, 6))}),
    }


def main():
    out = Path(sys.argv[1])
    manifest = {}
    for repo, files in {"tiny-st": tiny_st(), "tiny-sharded": tiny_sharded()}.items():
        for name, data in files.items():
            path = out / repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            git_sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            manifest.setdefault(repo, {})[name] = {
                "size": len(data),
                "lfs": name.endswith(".safetensors"),
                "sha256": hashlib.sha256(data).hexdigest(),
                "git_sha1": git_sha,
            }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
