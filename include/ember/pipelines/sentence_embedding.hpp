#pragma once
// Sentence embeddings from a sentence-transformers folder, as sentence-transformers computes them:
// modules.json lists the steps (Transformer, Pooling, Dense, Normalize), each configured by its
// own folder. Both folder layouts are read: the older one most Hub models use
// (pooling_mode_*_tokens booleans, max_seq_length in sentence_bert_config.json) and the one
// sentence-transformers 6 writes ("pooling_mode": "mean", the length limit from
// tokenizer_config.json's model_max_length capped by the model's positions).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/models/encoder.hpp"
#include "ember/nn/layers.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace ember::pipelines {

enum class Pooling : uint8_t { Cls, Max, Mean, MeanSqrtLen, LastToken };

struct DenseStep {
  nn::Linear linear;
  nn::Activation activation = nn::Activation::Identity;
};

class SentenceEmbedder {
 public:
  // A sentence-transformers folder; a plain Hugging Face encoder folder (no modules.json) gets
  // mean pooling, as sentence-transformers does for it.
  static SentenceEmbedder load(const std::filesystem::path& folder);

  // One row per text: [texts.size(), dimension()] F32. Texts are tokenized with the folder's
  // tokenizer (special tokens added, truncated at max_seq_length(), never padded) and encoded in
  // batches of at most batch_size texts. `normalize` L2-normalizes rows even when the folder has
  // no Normalize step.
  Tensor embed(const std::vector<std::string>& texts, bool normalize = false,
               size_t batch_size = 32) const;

  int64_t dimension() const { return dimension_; }
  size_t max_seq_length() const { return max_seq_length_; }
  const std::vector<Pooling>& pooling() const { return pooling_; }
  bool normalizes() const { return normalize_; }
  const tokenizers::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
  std::shared_ptr<models::Encoder> encoder_;
  std::vector<Pooling> pooling_;
  std::vector<DenseStep> dense_;
  bool normalize_ = false;
  size_t max_seq_length_ = 0;
  int64_t dimension_ = 0;
};

// Cosine similarity of two equally long vectors.
double cosine_similarity(const float* a, const float* b, size_t n);

}  // namespace ember::pipelines
