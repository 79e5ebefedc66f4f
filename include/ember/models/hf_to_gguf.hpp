#pragma once
// `ember quantize` from a Hugging Face model: a Llama-family folder (config.json, safetensors
// weights in F32/F16/BF16, tokenizer.json, tokenizer_config.json) written as the GGUF file
// llama.cpp's convert_hf_to_gguf.py writes for it, then quantized by llama.cpp's rules
// (ember/formats/gguf_quantize.hpp), in one pass and one tensor at a time.
//
// What the converter writes and Ember does too: general.architecture "llama", general.type,
// general.name (the folder's name, title-cased as the converter does when it has nothing
// better), general.size_label; the hyperparameter keys ({arch}.block_count, context_length,
// embedding_length, feed_forward_length, attention.head_count(_kv), rope.freq_base, linear and
// yarn rope scaling, attention.layer_norm_rms_epsilon, attention.key_length/value_length,
// vocab_size, rope.dimension_count); the tokenizer as tokenizer.ggml.* (model "gpt2" for a
// byte-level BPE: tokens padded to vocab_size with [PADn], token types, merges, the
// pre-tokenizer's name; special token ids from tokenizer_config.json then config.json; add_*_token
// from the post-processor then tokenizer_config.json; the chat template); and the attention
// query and key rows permuted from Hugging Face's half-split rotary pairs to GGML's interleaved
// ones. Tensors are in llama.cpp's quantizer order (what `llama-quantize` makes of the
// converter's output), so a Q4_K_M made here is the two-step pipeline's file.
//
// Not written: the converter's model-card heuristics (organization, base name, fine-tune,
// version read from README.md or the folder name), and SentencePiece vocabularies
// (tokenizer.model, or a tokenizer.json with byte fallback), which are an ember::Error.
#include <filesystem>

#include "ember/formats/gguf_quantize.hpp"

namespace ember::models {

// True for a folder with a config.json or a path named *.safetensors.
bool looks_like_hf_model(const std::filesystem::path& path);

// Converts `in` (a model folder, or a .safetensors file whose folder has the rest) to `out`
// (replaced atomically). Throws ember::Error naming what is wrong: another architecture than
// Llama, no tokenizer.json, a tokenizer it cannot express, a weight dtype other than
// F32/F16/BF16, a tensor with no GGUF name.
QuantizeSummary convert_hf_to_gguf(const std::filesystem::path& in,
                                   const std::filesystem::path& out, const QuantizeTarget& target);

}  // namespace ember::models
