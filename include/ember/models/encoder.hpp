#pragma once
// Text encoders (BERT, RoBERTa, XLM-RoBERTa, DistilBERT, DeBERTa-v2, ALBERT, ELECTRA): token ids
// in, one hidden state per token out. Sequences are packed back to back with no padding, which
// costs nothing.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/models/config.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {

struct TokenBatch {
  std::vector<int64_t> ids;          // all sequences' tokens, back to back
  std::vector<int64_t> token_types;  // one per token, or empty (all 0)
  std::vector<int64_t> offsets;      // sequence s is [offsets[s], offsets[s + 1]); starts with 0

  template <typename Id>
  static TokenBatch from_sequences(const std::vector<std::vector<Id>>& sequences) {
    TokenBatch b;
    b.offsets.push_back(0);
    for (const auto& seq : sequences) {
      for (Id id : seq) b.ids.push_back(static_cast<int64_t>(id));
      b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
    }
    return b;
  }
  size_t sequences() const { return offsets.empty() ? 0 : offsets.size() - 1; }
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual int64_t hidden_size() const = 0;
  // The longest sequence the position embeddings allow.
  virtual int64_t max_tokens() const = 0;
  // Last hidden states, packed like the batch: [N, hidden] F32.
  virtual Tensor forward(const TokenBatch& batch) const = 0;
};

// By config.json's model_type: bert, roberta, xlm-roberta, camembert, distilbert, deberta-v2,
// albert, electra. Weights come from `weights` (the folder's checkpoint when not given). Throws
// ember::Error for an unknown architecture, a bad config or missing/misshapen weights.
std::unique_ptr<Encoder> load_encoder(const std::filesystem::path& folder);
std::unique_ptr<Encoder> load_encoder(const Config& config, const nn::Weights& weights);

// The architecture files' loaders (one per file).
std::unique_ptr<Encoder> load_bert(const Config& config, const nn::Weights& weights);
std::unique_ptr<Encoder> load_distilbert(const Config& config, const nn::Weights& weights);
std::unique_ptr<Encoder> load_deberta_v2(const Config& config, const nn::Weights& weights);
std::unique_ptr<Encoder> load_albert(const Config& config, const nn::Weights& weights);
std::unique_ptr<Encoder> load_electra(const Config& config, const nn::Weights& weights);

}  // namespace ember::models
