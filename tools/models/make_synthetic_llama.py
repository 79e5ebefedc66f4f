#!/usr/bin/env python3
"""Writes a Llama of about 1B parameters with random weights as an F16 GGUF, for bench/llm_bench.py
(at this size decoding is bound by memory bandwidth, and random weights time as real ones do).

Shape of Llama 3.2 1B (hidden 2048, 16 layers, FFN 8192, 32 heads, 8 KV heads, tied output) with
SmolLM2's 49152-token vocabulary, whose tokenizer metadata is copied from the packaged GGUF so
that llama.cpp and Ember both load the file. Weights are N(0, 0.02), norms 1.

    tools/.venv/bin/python tools/models/make_synthetic_llama.py TOKENIZER.gguf OUT.f16.gguf
"""
import sys

import gguf
import numpy as np

HIDDEN, LAYERS, FFN, HEADS, KV_HEADS, HEAD_DIM = 2048, 16, 8192, 32, 8, 64


def copy_tokenizer(reader: gguf.GGUFReader, w: gguf.GGUFWriter) -> int:
    """The tokenizer.ggml.* keys of `reader`, written to `w`; returns the vocabulary size."""
    f = reader.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    w.add_tokenizer_model(f["tokenizer.ggml.model"].contents())
    if "tokenizer.ggml.pre" in f:
        w.add_tokenizer_pre(f["tokenizer.ggml.pre"].contents())
    w.add_token_list(tokens)
    w.add_token_types(f["tokenizer.ggml.token_type"].contents())
    if "tokenizer.ggml.merges" in f:
        w.add_token_merges(f["tokenizer.ggml.merges"].contents())
    w.add_bos_token_id(f["tokenizer.ggml.bos_token_id"].contents())
    w.add_eos_token_id(f["tokenizer.ggml.eos_token_id"].contents())
    w.add_add_bos_token(False)
    return len(tokens)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reader = gguf.GGUFReader(sys.argv[1])
    w = gguf.GGUFWriter(sys.argv[2], arch="llama")
    vocab = copy_tokenizer(reader, w)
    w.add_context_length(4096)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_block_count(LAYERS)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    rng = np.random.default_rng(0)

    def weight(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    ones = np.ones(HIDDEN, dtype=np.float32)
    w.add_tensor("token_embd.weight", weight(vocab, HIDDEN))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", weight(HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_k.weight", weight(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_v.weight", weight(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_output.weight", weight(HIDDEN, HEADS * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", weight(FFN, HIDDEN))
        w.add_tensor(p + "ffn_up.weight", weight(FFN, HIDDEN))
        w.add_tensor(p + "ffn_down.weight", weight(HIDDEN, FFN))
    w.add_tensor("output_norm.weight", ones)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
