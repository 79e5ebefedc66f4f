#pragma once
// Decoder-only language models (GPT-2, the Llama family: Llama 2/3, Mistral, Qwen2, SmolLM):
// token ids in, next-token logits out, with a KV cache.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/models/config.hpp"
#include "ember/nn/decoder_layer.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {

using nn::KvCache;

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual int64_t vocab_size() const = 0;
  // The context the model was trained for (max_position_embeddings); prompts longer than this
  // are refused.
  virtual int64_t context_length() const = 0;
  // The most tokens a sequence can hold: the context for learned positions (GPT-2); unbounded
  // for rotary ones, which may run past their context as the reference lets them.
  virtual int64_t max_tokens() const = 0;
  virtual KvCache new_cache(int64_t batch, int64_t capacity) const = 0;
  // The dtype of the caches new_cache makes: F32 (the default), or F16, llama.cpp's default
  // cache and through ops::attention its arithmetic, at half the memory. F16 is not the default
  // for GGUF files yet: docs/llm_agreement.md has the agreement figures that keep it out.
  DType kv_cache_dtype() const { return kv_cache_dtype_; }
  void set_kv_cache_dtype(DType dtype);  // F32 or F16, else ember::Error
  // Runs ids [B, T] as the tokens after the cache's, at `positions` (B * T values) and appends
  // them to the cache. key_mask [B, cache.length + T] marks padding with 0 (or is undefined).
  // Returns logits [B, T, V] F32 when all_logits, else those of the last position [B, 1, V].
  virtual Tensor forward(const Tensor& ids, std::span<const int64_t> positions,
                         const Tensor& key_mask, KvCache& cache, bool all_logits) = 0;
  // Drops tokens [start, start + count) from a one-sequence cache whose token at index i sits at
  // position i (`tokens` are the cache's tokens), and moves the later ones to positions
  // start, start + 1, ... so the cache stays in that form (llama.cpp's context shift). Throws
  // ember::Error for a batch cache, a token list that is not the cache's, or a bad range.
  void discard_tokens(KvCache& cache, int64_t start, int64_t count,
                      std::span<const int64_t> tokens);

 protected:
  // discard_tokens() once checked. This default recomputes the moved tokens, which learned
  // positions need; rotary models re-rotate their keys instead.
  virtual void move_tokens(KvCache& cache, int64_t start, int64_t count,
                           std::span<const int64_t> tokens);

 private:
  DType kv_cache_dtype_ = DType::F32;
};

// By config.json's model_type: gpt2, llama, mistral, qwen2; or a .gguf file (llama, qwen2, gpt2),
// its config from the metadata (Config::from_gguf) and its weights by Hugging Face name. Throws
// ember::Error for an unknown architecture, a bad config or missing/misshapen weights.
std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& folder);
std::unique_ptr<CausalLM> load_causal_lm(const Config& config, const nn::Weights& weights);

// The architecture files' loaders (one per file).
std::unique_ptr<CausalLM> load_gpt2(const Config& config, const nn::Weights& weights);
std::unique_ptr<CausalLM> load_llama(const Config& config, const nn::Weights& weights);

}  // namespace ember::models
