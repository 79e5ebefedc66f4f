#!/usr/bin/env python3
"""Reference for `ember quantize HF_FOLDER OUT.gguf`: what llama.cpp's convert_hf_to_gguf.py
writes for a tiny Hugging Face Llama with a byte-level BPE tokenizer.

1. Writes tests/fixtures/models/llama_convert/: a seeded random LlamaForCausalLM (hidden 32,
   2 layers, 4 heads, 2 kv heads, vocab 320) saved by transformers, and a byte-level BPE
   tokenizer trained on README.md with SmolLM2's layout (3 special tokens first, the
   individual-digits + ByteLevel pre-tokenizer) and a tokenizer_config.json with a chat template.
2. Runs llama.cpp's converter (from the llama-cpp-python 0.3.36 source distribution, the
   version pinned in tools/requirements.txt: vendor/llama.cpp/convert_hf_to_gguf.py) on it with
   --outtype f32 and f16.
3. Writes tests/fixtures/models/llama_convert/reference_gguf.json: every metadata key with its
   GGUF value type and value, and every tensor's name, ggml type, shape (ne[] order) and a
   position-weighted checksum of its values (sum of v[i] * (i % 7 + 1), in float64), which
   tells a transposed or permuted tensor from the right one.

The converter names a BPE pre-tokenizer by hashing the ids it gives on a fixed text; a tokenizer
trained here has no known hash, so this script tells the converter "smollm" (the pre-tokenizer
the tokenizer was built with), which is what llama.cpp's update script would register for it.

Usage: hf_to_gguf_reference.py [--llama-cpp DIR]   (DIR: an unpacked llama.cpp source tree;
default: pip downloads the llama-cpp-python sdist into a temporary directory)
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models" / "llama_convert"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 320
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_model() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([(ROOT / "README.md").read_text(encoding="utf-8")], trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    tok.save(str(OUT / "tokenizer.json"))
    (OUT / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False,
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": 128,
        "tokenizer_class": "GPT2Tokenizer",
    }, indent=2) + "\n")

    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        tie_word_embeddings=False)
    torch.manual_seed(16)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "embed_tokens" in name or name == "lm_head.weight":
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
    model.save_pretrained(OUT, safe_serialization=True)


def converter_dir(arg: pathlib.Path | None, tmp: pathlib.Path) -> pathlib.Path:
    if arg is not None:
        return arg
    subprocess.run([sys.executable, "-m", "pip", "download", "llama-cpp-python==0.3.36",
                    "--no-deps", "--no-binary", ":all:", "-d", str(tmp)], check=True)
    with tarfile.open(next(tmp.glob("llama_cpp_python-*.tar.gz"))) as tar:
        members = [m for m in tar.getmembers()
                   if "/vendor/llama.cpp/" in m.name and
                   ("/conversion/" in m.name or "/gguf-py/" in m.name or
                    m.name.endswith("convert_hf_to_gguf.py"))]
        tar.extractall(tmp, members=members, filter="data")
    return next(tmp.glob("llama_cpp_python-*/vendor/llama.cpp"))


def convert(llama_cpp: pathlib.Path, outtype: str, out: pathlib.Path) -> None:
    # The converter with its BPE pre-tokenizer detection answered "smollm" (see the docstring).
    code = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {str(llama_cpp)!r})\n"
        "import conversion.base as base\n"
        "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'smollm'\n"
        f"sys.argv = ['convert_hf_to_gguf.py', {str(OUT)!r}, '--outtype', {outtype!r},"
        f" '--outfile', {str(out)!r}]\n"
        f"runpy.run_path({str(llama_cpp / 'convert_hf_to_gguf.py')!r}, run_name='__main__')\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=llama_cpp)


def describe(path: pathlib.Path, llama_cpp: pathlib.Path) -> dict:
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    import gguf  # the converter's own gguf-py
    reader = gguf.GGUFReader(str(path))
    metadata = {}
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            value = field.contents()
            entry = {"type": "ARRAY", "element_type": field.types[1].name, "value": value}
        else:
            entry = {"type": vtype.name, "value": field.contents()}
        metadata[field.name] = entry
    tensors = []
    for t in reader.tensors:
        values = np.asarray(t.data, dtype=np.float64).reshape(-1)
        weights = (np.arange(values.size) % 7 + 1).astype(np.float64)
        tensors.append({"name": t.name, "type": t.tensor_type.name,
                        "ne": [int(n) for n in t.shape],
                        "checksum": float(np.dot(values, weights))})
    return {"metadata": metadata, "tensors": tensors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp", type=pathlib.Path)
    args = parser.parse_args()
    make_model()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        llama_cpp = converter_dir(args.llama_cpp, tmp)
        reference = {}
        for outtype in ["f32", "f16"]:
            out = tmp / f"tiny.{outtype}.gguf"
            convert(llama_cpp, outtype, out)
            reference[outtype] = describe(out, llama_cpp)
    (OUT / "reference_gguf.json").write_text(json.dumps(reference, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
