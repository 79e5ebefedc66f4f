#!/usr/bin/env python3
"""Writes tiny GGUF copies of decoder fixtures under tests/fixtures/models (llama, llama_f16,
qwen2, gpt2) as llama.cpp's convert_hf_to_gguf.py lays them out, so that Ember's logits from the
GGUF can be checked against the same transformers reference logits as the safetensors folder:

- names from gguf-py's own tensor name map (token_embd, blk.N.attn_q, output_norm, output, ...);
- llama's q/k rows permuted per head for GGML's interleaved rotary pairs (convert_hf_to_gguf's
  LlamaModel.permute); qwen2's left as they are (NEOX rotary);
- GPT-2's Conv1D weights transposed to [out, in], and output.weight written as a copy of
  token_embd (convert_hf_to_gguf's GPT2Model);
- 1-D tensors (norms, biases) as F32, 2-D ones in the checkpoint's dtype (F32 or F16);
- metadata keys {arch}.context_length, embedding_length, block_count, feed_forward_length,
  attention.head_count(_kv), attention.key_length/value_length, attention.layer_norm(_rms)_epsilon,
  rope.freq_base, rope.dimension_count, vocab_size, and the tokenizer's bos/eos ids.

Run from the repository root: tools/.venv/bin/python tools/models/make_gguf_models.py
"""
import json
import pathlib

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "models"
OUT = ROOT / "gguf"
ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "gpt2": gguf.MODEL_ARCH.GPT2}


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute: half-split rotary rows -> interleaved pairs."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def convert(case: str, out_name: str) -> None:
    folder = ROOT / case
    config = json.loads((folder / "config.json").read_text())
    arch = config["model_type"]
    tensors = load_file(folder / "model.safetensors")
    w = gguf.GGUFWriter(OUT / out_name, arch=arch)
    if arch == "gpt2":
        n_layer, hidden, heads = config["n_layer"], config["n_embd"], config["n_head"]
        w.add_context_length(config["n_positions"])
        w.add_embedding_length(hidden)
        w.add_feed_forward_length(config.get("n_inner") or 4 * hidden)
        w.add_block_count(n_layer)
        w.add_head_count(heads)
        w.add_layer_norm_eps(config["layer_norm_epsilon"])
    else:
        n_layer, hidden, heads = (config["num_hidden_layers"], config["hidden_size"],
                                  config["num_attention_heads"])
        kv_heads = config.get("num_key_value_heads", heads)
        head_dim = config.get("head_dim", hidden // heads)
        w.add_context_length(config["max_position_embeddings"])
        w.add_embedding_length(hidden)
        w.add_feed_forward_length(config["intermediate_size"])
        w.add_block_count(n_layer)
        w.add_head_count(heads)
        w.add_head_count_kv(kv_heads)
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_layer_norm_rms_eps(config["rms_norm_eps"])
        w.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
        w.add_rope_dimension_count(head_dim)
        assert config["rope_parameters"]["rope_type"] == "default"
    w.add_vocab_size(config["vocab_size"])
    w.add_bos_token_id(config["bos_token_id"])
    w.add_eos_token_id(config["eos_token_id"])

    names = gguf.get_tensor_name_map(ARCHS[arch], n_layer)
    out = []
    for name, data in tensors.items():
        if name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")):
            continue
        if arch == "gpt2" and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            data = data.T.copy()
        if arch == "llama" and name.endswith("q_proj.weight"):
            data = permute(data, heads)
        if arch == "llama" and name.endswith("k_proj.weight"):
            data = permute(data, kv_heads)
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new_name is not None, name
        if data.ndim == 1:
            data = data.astype(np.float32)
        out.append((new_name, data))
        if arch == "gpt2" and new_name == "token_embd.weight":
            out.append(("output.weight", data))
    for name, data in out:
        w.add_tensor(name, np.ascontiguousarray(data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for case, out_name in [("llama", "llama.f32.gguf"), ("llama_f16", "llama_f16.f16.gguf"),
                           ("qwen2", "qwen2.f32.gguf"), ("gpt2", "gpt2.f32.gguf")]:
        convert(case, out_name)
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
