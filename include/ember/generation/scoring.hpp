#pragma once
// Scoring a causal LM on fixed tokens (teacher forcing): perplexity as llama.cpp's perplexity
// tool computes it, and how closely the model's next-token distributions follow a reference's,
// as llama.cpp's --kl-divergence mode measures a quantized model against its base.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "ember/models/causal_lm.hpp"

namespace ember::generation {

struct PerplexityOptions {
  int64_t context = 512;       // tokens per chunk
  int64_t max_chunks = 0;      // 0: every whole chunk of the tokens
  std::optional<int64_t> bos;  // put in place of each chunk's first token (a vocabulary that adds
                               // BOS), as llama.cpp does
};

struct PerplexityResult {
  int64_t chunks = 0;
  int64_t scored = 0;  // tokens scored
  double ppl = 0;
  double ppl_error = 0;  // one standard error of the mean NLL, carried to PPL (PPL * sd / sqrt(n))
};

// llama.cpp's method: the tokens are cut into chunks of `context` tokens (a partial last chunk is
// dropped), each run alone from an empty cache, and only the second half of each chunk is scored
// (the next-token log-probabilities at positions context/2 .. context-2), so every scored token
// has at least half a context before it. on_chunk(chunks done, PPL so far) follows each chunk.
// Throws ember::Error when there are fewer than 2 * context tokens (llama.cpp's rule) or the
// context does not fit the model.
PerplexityResult perplexity(models::CausalLM& model, std::span<const int64_t> tokens,
                            const PerplexityOptions& options,
                            const std::function<void(int64_t, double)>& on_chunk = nullptr);

// A reference's next-token distributions over fixed sequences, kept as its K most likely ids per
// position and the mass of all the others: the safetensors file tools/llm/kl_reference.py
// writes. Per sequence i: "tokens.i" I64 [T], "top_ids.i" I32 [T, K] and "top_logprobs.i" F32
// [T, K] (highest first), "rest_logprob.i" F32 [T] (log of the mass outside the top K; -inf when
// there is none), and "prompt_lengths" I64 [sequences].
struct ReferenceSequence {
  std::vector<int64_t> tokens;
  int64_t prompt_length = 0;
  std::vector<int32_t> top_ids;     // [T, K]
  std::vector<float> top_logprobs;  // [T, K]
  std::vector<float> rest_logprob;  // [T]
};

struct KlReference {
  int64_t top_k = 0;
  std::vector<ReferenceSequence> sequences;

  // Throws ember::Error naming the tensor when the file does not hold that layout, an id is not
  // below `vocab`, or a log-probability is not finite (rest: finite or -inf).
  static KlReference read(const std::filesystem::path& file, int64_t vocab);
};

struct Agreement {
  int64_t positions = 0;
  int64_t top1_same = 0;
  int64_t clear_positions = 0;  // positions where the reference's top-1/top-2 margin > margin
  int64_t clear_top1_same = 0;
  double mean_kl = 0;  // KL(reference || model) on the reference's support, mean over positions
  double max_kl = 0;
};

// Runs each sequence through the model (teacher forcing) and compares its distribution after
// every position with the reference's. KL is taken over K + 1 bins: the reference's top K ids and
// one for everything else (the model's mass there summed over the other ids), which is the full
// KL when K is the vocabulary and a lower bound on it otherwise.
Agreement compare_with_reference(models::CausalLM& model, const KlReference& reference,
                                 double margin);

// The log of the softmax normalizer of one row of logits, in double.
double log_sum_exp(const float* logits, int64_t n);

}  // namespace ember::generation
