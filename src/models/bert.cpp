// BERT and the checkpoints that share its layout: RoBERTa, XLM-RoBERTa and CamemBERT (which differ
// only in how position ids are counted).
#include <cmath>
#include <string>
#include <vector>

#include "ember/core/ops.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"
#include "ember/nn/encoder_layer.hpp"
#include "ember/nn/layers.hpp"

namespace ember::models {
namespace {

// Checkpoints of the bare model have no prefix; those saved from a task head nest it.
nn::Weights encoder_weights(const Config& config, const nn::Weights& checkpoint) {
  const std::string type = config.model_type();
  const auto prefix = checkpoint.find_prefix("embeddings.word_embeddings.weight",
                                             {"", type + ".", "bert.", "roberta.", "model."});
  if (!prefix) {
    throw Error("missing weight 'embeddings.word_embeddings.weight' (with or without a '" + type +
                ".' prefix) in " + checkpoint.source().description());
  }
  return checkpoint.with_prefix(*prefix);
}

class Bert final : public Encoder {
 public:
  Bert(const Config& config, const nn::Weights& checkpoint) {
    const std::string type = config.model_type();
    roberta_positions_ = type != "bert";
    hidden_ = config.positive("hidden_size");
    const int64_t heads = config.positive("num_attention_heads");
    if (hidden_ % heads != 0) {
      config.fail("hidden_size " + std::to_string(hidden_) +
                  " is not a multiple of num_attention_heads " + std::to_string(heads));
    }
    const int64_t layers = config.positive("num_hidden_layers");
    const int64_t intermediate = config.positive("intermediate_size");
    const int64_t vocab = config.positive("vocab_size");
    max_positions_ = config.positive("max_position_embeddings");
    const int64_t type_vocab = config.integer("type_vocab_size", 2);
    const double eps = config.number("layer_norm_eps", 1e-12);
    pad_id_ = config.integer("pad_token_id", roberta_positions_ ? 1 : 0);
    const nn::Activation act =
        nn::parse_activation(config.string("hidden_act", "gelu"), "hidden_act");
    if (config.string("position_embedding_type", "absolute") != "absolute") {
      config.fail("position_embedding_type '" + config.string("position_embedding_type") +
                  "' is not supported (only 'absolute')");
    }

    const nn::Weights w = encoder_weights(config, checkpoint);
    words_ = nn::Embedding::load(w, "embeddings.word_embeddings", vocab, hidden_);
    positions_ = nn::Embedding::load(w, "embeddings.position_embeddings", max_positions_, hidden_);
    if (type_vocab > 0) {
      token_types_ =
          nn::Embedding::load(w, "embeddings.token_type_embeddings", type_vocab, hidden_);
    }
    embedding_norm_ = nn::LayerNorm::load(w, "embeddings.LayerNorm", hidden_, eps);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      nn::PostNormEncoderLayer layer;
      layer.qkv = nn::Linear::fuse({
          nn::Linear::load(w, p + "attention.self.query", hidden_, hidden_, true),
          nn::Linear::load(w, p + "attention.self.key", hidden_, hidden_, true),
          nn::Linear::load(w, p + "attention.self.value", hidden_, hidden_, true),
      });
      layer.attention_out =
          nn::Linear::load(w, p + "attention.output.dense", hidden_, hidden_, true);
      layer.attention_norm = nn::LayerNorm::load(w, p + "attention.output.LayerNorm", hidden_, eps);
      layer.mlp_up = nn::Linear::load(w, p + "intermediate.dense", hidden_, intermediate, true);
      layer.mlp_down = nn::Linear::load(w, p + "output.dense", intermediate, hidden_, true);
      layer.output_norm = nn::LayerNorm::load(w, p + "output.LayerNorm", hidden_, eps);
      layer.activation = act;
      layer.heads = heads;
      layer.head_dim = hidden_ / heads;
      layers_.push_back(std::move(layer));
    }
  }

  int64_t hidden_size() const override { return hidden_; }
  int64_t max_tokens() const override {
    // RoBERTa's positions start after the padding index.
    return roberta_positions_ ? max_positions_ - pad_id_ - 1 : max_positions_;
  }

  Tensor forward(const TokenBatch& batch) const override {
    const int64_t n = static_cast<int64_t>(batch.ids.size());
    std::vector<int64_t> positions(static_cast<size_t>(n));
    for (size_t s = 0; s < batch.sequences(); ++s) {
      int64_t counted = 0;
      for (int64_t i = batch.offsets[s]; i < batch.offsets[s + 1]; ++i) {
        const size_t ii = static_cast<size_t>(i);
        if (!roberta_positions_) {
          positions[ii] = i - batch.offsets[s];
        } else if (batch.ids[ii] == pad_id_) {
          positions[ii] = pad_id_;  // RoBERTa gives padding tokens the padding position
        } else {
          positions[ii] = pad_id_ + 1 + counted++;
        }
        if (positions[ii] >= max_positions_) {
          throw Error("sequence " + std::to_string(s) + " has more tokens than the model's " +
                      std::to_string(max_tokens()) + " positions");
        }
      }
    }
    const auto ids_tensor = [&](const std::vector<int64_t>& v) {
      return Tensor::from_values<int64_t>(DType::I64, {n}, v);
    };
    Tensor x = words_(ids_tensor(batch.ids));
    nn::add_(x, positions_(ids_tensor(positions)));
    if (token_types_.weight.defined()) {
      const std::vector<int64_t> types = batch.token_types.empty()
                                             ? std::vector<int64_t>(static_cast<size_t>(n), 0)
                                             : batch.token_types;
      nn::add_(x, token_types_(ids_tensor(types)));
    }
    x = embedding_norm_(x);
    for (const nn::PostNormEncoderLayer& layer : layers_) x = layer(x, batch.offsets);
    return x;
  }

 private:
  bool roberta_positions_ = false;
  int64_t hidden_ = 0, max_positions_ = 0, pad_id_ = 0;
  nn::Embedding words_, positions_, token_types_;
  nn::LayerNorm embedding_norm_;
  std::vector<nn::PostNormEncoderLayer> layers_;
};

}  // namespace

std::unique_ptr<Encoder> load_bert(const Config& config, const nn::Weights& weights) {
  return std::make_unique<Bert>(config, weights);
}

// BERT: pooler + classifier, cls.predictions.*. RoBERTa and its kin: classifier.dense/out_proj on
// <s>, lm_head.*. Token classification and QA are one linear layer in both.
std::unique_ptr<Head> load_bert_head(const Config& config, const nn::Weights& weights,
                                     HeadKind kind, int64_t labels) {
  const bool roberta = config.model_type() != "bert";
  const int64_t hidden = config.positive("hidden_size");
  const nn::Weights encoder = encoder_weights(config, weights);
  if (kind == HeadKind::MaskedLM) {
    const std::string p = roberta ? "lm_head." : "cls.predictions.";
    const std::string transform = roberta ? p : p + "transform.";
    require_head_weight(weights, transform + "dense.weight", kind);
    auto head = std::make_unique<MaskedLmHead>();
    head->dense = nn::Linear::load(weights, transform + "dense", hidden, hidden, true);
    // RobertaLMHead applies gelu whatever hidden_act says.
    head->activation =
        roberta ? nn::Activation::Gelu
                : nn::parse_activation(config.string("hidden_act", "gelu"), "hidden_act");
    head->norm = nn::LayerNorm::load(weights, transform + (roberta ? "layer_norm" : "LayerNorm"),
                                     hidden, config.number("layer_norm_eps", 1e-12));
    const Tensor words =
        encoder.get("embeddings.word_embeddings.weight", {config.positive("vocab_size"), hidden});
    head->decoder =
        load_vocab_projection(weights, p + "decoder", {p + "bias", p + "decoder.bias"}, words);
    return head;
  }
  if (kind != HeadKind::SequenceClassification) {
    return load_per_token_head(weights, kind, hidden, labels);
  }
  auto head = std::make_unique<ClassifierHead>();
  if (roberta) {
    require_head_weight(weights, "classifier.out_proj.weight", kind);
    head->dense = nn::Linear::load(weights, "classifier.dense", hidden, hidden, true);
    head->activation = nn::Activation::Tanh;
    head->out = nn::Linear::load(weights, "classifier.out_proj", hidden, labels, true);
  } else {
    require_head_weight(weights, "classifier.weight", kind);
    head->dense = nn::Linear::load(encoder, "pooler.dense", hidden, hidden, true);
    head->activation = nn::Activation::Tanh;
    head->out = nn::Linear::load(weights, "classifier", hidden, labels, true);
  }
  return head;
}

}  // namespace ember::models
