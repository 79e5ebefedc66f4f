#pragma once
// Text generation with a CausalLM: samplers, stop conditions, streaming, batches of prompts.
//
// Each step applies, in this order (Hugging Face's processors first, then its warpers):
// repetition penalty (over prompt and output), presence and frequency penalties (OpenAI's, over
// the output), then temperature, top-k, top-p and min-p, and samples from the softmax. A
// temperature of 0 is greedy (argmax after the penalties). Sampling draws from a 64-bit
// Mersenne Twister seeded with `seed`, one draw per row and step, so a seed reproduces a run.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/models/causal_lm.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace ember::generation {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
};

struct GenerationConfig {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int64_t> eos_ids;           // stop after emitting any of these (not in the text)
  std::vector<std::string> stop_strings;  // stop when the text contains one (cut before it)
  bool skip_special_tokens = true;        // in the returned and streamed text
  int64_t top_logprobs = 0;               // > 0: record that many per step (Generation)
  // With a PromptCache (generate_cached): -1 stops generating when the cache is full; N >= 0
  // shifts the context instead, as llama.cpp's --keep N: the first N tokens stay, half of the
  // rest are dropped and the later ones move down (CausalLM::discard_tokens).
  int64_t context_keep = -1;

  // Defaults from a model folder: generation_config.json (do_sample, temperature, top_k, top_p,
  // min_p, repetition_penalty, max_new_tokens, eos_token_id), else config.json's eos_token_id.
  // Greedy unless do_sample is true, as in transformers. For a GGUF file: greedy, with
  // llama.cpp's end-of-generation ids (models::gguf_eos_ids).
  static GenerationConfig from_folder(const std::filesystem::path& folder);
};

// The tokenizer of a model: the folder's tokenizer.json, or a GGUF file's tokenizer metadata
// (models::gguf_tokenizer_json, or gguf_sentencepiece_vocab for a "llama" vocabulary).
tokenizers::Tokenizer load_tokenizer(const std::filesystem::path& model);

enum class FinishReason : uint8_t { Eos, Stop, Length };
std::string_view finish_reason_name(FinishReason reason);

struct TokenLogprob {
  int64_t id = 0;
  double logprob = 0;
};

struct Generation {
  std::vector<int64_t> ids;  // generated ids, without the prompt; with the eos id if one ended it
  std::string text;          // their text, cut before a stop string
  FinishReason finish = FinishReason::Length;
  // Per generated position, when config.top_logprobs > 0: the most likely ids under the model's
  // own distribution (log-softmax of its raw logits, before penalties, temperature and filters,
  // as llama.cpp's n_probs and OpenAI's logprobs report), highest first.
  std::vector<std::vector<TokenLogprob>> top_logprobs;
};

// Streamed text: row index and the new piece (complete UTF-8, never part of a stop string).
using TextCallback = std::function<void(size_t row, std::string_view piece)>;

// Generates for every prompt (token ids, special tokens included) together; rows finish
// independently. Without a tokenizer (null) there is no text: ids only, and stop strings never
// match. Throws ember::Error when a prompt is empty or does not fit the context.
std::vector<Generation> generate(models::CausalLM& model, const tokenizers::Tokenizer* tokenizer,
                                 const std::vector<std::vector<int64_t>>& prompts,
                                 const GenerationConfig& config,
                                 const TextCallback& on_text = nullptr);

// One sequence's KV cache and the tokens it holds, kept from call to call so that a prompt
// sharing a prefix with the previous prompt and output runs only the rest (llama.cpp's prompt
// cache; ChatSession's previous turns). Save and restore it with kv_session.hpp.
struct PromptCache {
  models::KvCache cache;
  std::vector<int64_t> tokens;  // whose keys and values the cache holds, position i at index i
  // Of the last generate_cached() call: prompt tokens taken from the cache, context shifts.
  int64_t reused = 0, shifts = 0;

  // capacity 0: the model's context (capped by max_tokens).
  explicit PromptCache(const models::CausalLM& model, int64_t capacity = 0);
  explicit PromptCache(models::KvCache empty_cache) : cache(std::move(empty_cache)) {}
  void clear();
};

// generate() for one prompt through a PromptCache: reuses the longest common prefix of the
// cached tokens and the prompt (leaving at least one prompt token to run), and leaves the prompt
// and all generated tokens but the last in the cache. Throws ember::Error when the prompt does
// not fit the cache; with config.context_keep < 0 generation also stops when the cache is full.
// On failure the cache is cleared.
Generation generate_cached(models::CausalLM& model, const tokenizers::Tokenizer* tokenizer,
                           const std::vector<int64_t>& prompt, PromptCache& cached,
                           const GenerationConfig& config, const TextCallback& on_text = nullptr);

// The k most likely ids of one row of logits and their log-probabilities, highest first.
std::vector<TokenLogprob> top_logprobs(const float* logits, int64_t vocab, int64_t k);

// The next token for one row of logits under `params` (penalties need the row's prompt and output
// so far); `draw` is a uniform number in [0, 1) (ignored when greedy). Exposed for tests.
int64_t sample_token(std::vector<float> logits, const SamplingParams& params,
                     const std::vector<int64_t>& prompt, const std::vector<int64_t>& output,
                     double draw);

}  // namespace ember::generation
