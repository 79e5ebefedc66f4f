#pragma once
// Task heads on the encoders: what transformers calls <Arch>ForSequenceClassification,
// ForTokenClassification, ForQuestionAnswering and ForMaskedLM. A head is a function of hidden
// state rows; the architecture file only says which of the generic heads below its checkpoint
// holds and under which weight names (load_bert_head, load_distilbert_head), and
// load_head_model picks the architecture by model_type, as load_encoder does.
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/tensor.hpp"
#include "ember/models/config.hpp"
#include "ember/models/encoder.hpp"
#include "ember/nn/layers.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {

enum class HeadKind : uint8_t {
  SequenceClassification,  // one row of logits per sequence, from its first token
  TokenClassification,     // one row of logits per token
  QuestionAnswering,       // per token: start and end logits
  MaskedLM,                // per token: vocabulary logits
};

// transformers' class suffix: "ForSequenceClassification", ...
std::string_view head_class_suffix(HeadKind kind);

// Maps rows of hidden states [R, hidden] to rows of logits [R, outputs], F32.
class Head {
 public:
  virtual ~Head() = default;
  virtual Tensor operator()(const Tensor& rows) const = 0;
};

// Classification: an optional dense layer and activation (BERT's pooler, RoBERTa's
// classifier.dense, DistilBERT's pre_classifier), then the output projection. Also token
// classification and question answering, which have no dense layer.
struct ClassifierHead final : Head {
  nn::Linear dense;  // undefined weight: none
  nn::Activation activation = nn::Activation::Identity;
  nn::Linear out;
  Tensor operator()(const Tensor& rows) const override;
};

// Masked LM: dense, activation, layer norm, then the vocabulary projection (its weight is often
// the word embeddings, tied).
struct MaskedLmHead final : Head {
  nn::Linear dense;
  nn::Activation activation = nn::Activation::Gelu;
  nn::LayerNorm norm;
  nn::Linear decoder;
  Tensor operator()(const Tensor& rows) const override;
};

struct HeadModel {
  HeadKind kind = HeadKind::SequenceClassification;
  std::unique_ptr<Encoder> encoder;
  std::unique_ptr<Head> head;
  // config.json's id2label in id order (classification heads); empty for the others.
  std::vector<std::string> labels;
  std::string problem_type;  // config.json's problem_type, or empty

  // Logits for `batch`. SequenceClassification: [sequences, labels]. The token heads: one row
  // per packed token, or per index of `rows` (e.g. only the mask positions) when not empty.
  Tensor forward(const TokenBatch& batch, std::span<const int64_t> rows = {}) const;
};

// config.json's id2label as a list (keys must be 0..n-1), or transformers' default LABEL_0,
// LABEL_1 (num_labels, else 2) when absent.
std::vector<std::string> read_labels(const Config& config);

// The encoder and its `kind` head, by model_type. `pipeline` names the caller in the error a
// checkpoint without that head gets (e.g. "the ner pipeline").
HeadModel load_head_model(const std::filesystem::path& folder, HeadKind kind,
                          std::string_view pipeline = {});
HeadModel load_head_model(const Config& config, const nn::Weights& weights, HeadKind kind,
                          std::string_view pipeline = {});

// The architecture files' head loaders. Weights are the whole checkpoint (heads sit beside the
// encoder's prefix). Throw MissingHead when the checkpoint has no such head.
std::unique_ptr<Head> load_bert_head(const Config& config, const nn::Weights& weights,
                                     HeadKind kind, int64_t labels);
std::unique_ptr<Head> load_distilbert_head(const Config& config, const nn::Weights& weights,
                                           HeadKind kind, int64_t labels);
std::unique_ptr<Head> load_deberta_v2_head(const Config& config, const nn::Weights& weights,
                                           HeadKind kind, int64_t labels);
std::unique_ptr<Head> load_albert_head(const Config& config, const nn::Weights& weights,
                                       HeadKind kind, int64_t labels);
std::unique_ptr<Head> load_electra_head(const Config& config, const nn::Weights& weights,
                                        HeadKind kind, int64_t labels);

// Token classification (`classifier`, `labels` outputs) and question answering (`qa_outputs`,
// start and end): one linear layer on every token under the names all these architectures use.
std::unique_ptr<Head> load_per_token_head(const nn::Weights& weights, HeadKind kind, int64_t hidden,
                                          int64_t labels);

// A masked LM's vocabulary projection `decoder` (.weight [vocab, hidden]); checkpoints that tie it
// to the word embeddings usually leave it out, and then `word_embeddings` is the weight. The bias
// is the first of `bias_names` present.
nn::Linear load_vocab_projection(const nn::Weights& weights, std::string_view decoder,
                                 std::initializer_list<std::string_view> bias_names,
                                 const Tensor& word_embeddings);

// A checkpoint lacks the head asked for; load_head_model adds which pipeline needed it.
class MissingHead : public Error {
 public:
  using Error::Error;
};

// Throws MissingHead unless `weights` has `probe` (the weight that marks the head).
void require_head_weight(const nn::Weights& weights, std::string_view probe, HeadKind kind);

}  // namespace ember::models
