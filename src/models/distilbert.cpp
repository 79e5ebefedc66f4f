// DistilBERT: BERT's post-norm layers under other weight names, without token types.
#include <string>
#include <vector>

#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"
#include "ember/nn/encoder_layer.hpp"
#include "ember/nn/layers.hpp"

namespace ember::models {
namespace {

constexpr double kEps = 1e-12;  // fixed in the reference implementation

nn::Weights encoder_weights(const nn::Weights& checkpoint) {
  const auto prefix =
      checkpoint.find_prefix("embeddings.word_embeddings.weight", {"", "distilbert."});
  if (!prefix) {
    throw Error(
        "missing weight 'embeddings.word_embeddings.weight' (with or without a "
        "'distilbert.' prefix) in " +
        checkpoint.source().description());
  }
  return checkpoint.with_prefix(*prefix);
}

class DistilBert final : public Encoder {
 public:
  DistilBert(const Config& config, const nn::Weights& checkpoint) {
    hidden_ = config.positive("dim");
    const int64_t heads = config.positive("n_heads");
    if (hidden_ % heads != 0) {
      config.fail("dim " + std::to_string(hidden_) + " is not a multiple of n_heads " +
                  std::to_string(heads));
    }
    const int64_t layers = config.positive("n_layers");
    const int64_t intermediate = config.positive("hidden_dim");
    const int64_t vocab = config.positive("vocab_size");
    max_positions_ = config.positive("max_position_embeddings");
    const nn::Activation act =
        nn::parse_activation(config.string("activation", "gelu"), "activation");

    const nn::Weights w = encoder_weights(checkpoint);
    words_ = nn::Embedding::load(w, "embeddings.word_embeddings", vocab, hidden_);
    positions_ = nn::Embedding::load(w, "embeddings.position_embeddings", max_positions_, hidden_);
    embedding_norm_ = nn::LayerNorm::load(w, "embeddings.LayerNorm", hidden_, kEps);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = "transformer.layer." + std::to_string(i) + ".";
      nn::PostNormEncoderLayer layer;
      layer.qkv = nn::Linear::fuse({
          nn::Linear::load(w, p + "attention.q_lin", hidden_, hidden_, true),
          nn::Linear::load(w, p + "attention.k_lin", hidden_, hidden_, true),
          nn::Linear::load(w, p + "attention.v_lin", hidden_, hidden_, true),
      });
      layer.attention_out = nn::Linear::load(w, p + "attention.out_lin", hidden_, hidden_, true);
      layer.attention_norm = nn::LayerNorm::load(w, p + "sa_layer_norm", hidden_, kEps);
      layer.mlp_up = nn::Linear::load(w, p + "ffn.lin1", hidden_, intermediate, true);
      layer.mlp_down = nn::Linear::load(w, p + "ffn.lin2", intermediate, hidden_, true);
      layer.output_norm = nn::LayerNorm::load(w, p + "output_layer_norm", hidden_, kEps);
      layer.activation = act;
      layer.heads = heads;
      layer.head_dim = hidden_ / heads;
      layers_.push_back(std::move(layer));
    }
  }

  int64_t hidden_size() const override { return hidden_; }
  int64_t max_tokens() const override { return max_positions_; }

  Tensor forward(const TokenBatch& batch) const override {
    const int64_t n = static_cast<int64_t>(batch.ids.size());
    std::vector<int64_t> positions(static_cast<size_t>(n));
    for (size_t s = 0; s < batch.sequences(); ++s) {
      if (batch.offsets[s + 1] - batch.offsets[s] > max_positions_) {
        throw Error("sequence " + std::to_string(s) + " has more tokens than the model's " +
                    std::to_string(max_positions_) + " positions");
      }
      for (int64_t i = batch.offsets[s]; i < batch.offsets[s + 1]; ++i)
        positions[static_cast<size_t>(i)] = i - batch.offsets[s];
    }
    Tensor x = words_(Tensor::from_values<int64_t>(DType::I64, {n}, batch.ids));
    nn::add_(x, positions_(Tensor::from_values<int64_t>(DType::I64, {n}, positions)));
    x = embedding_norm_(x);
    for (const nn::PostNormEncoderLayer& layer : layers_) x = layer(x, batch.offsets);
    return x;
  }

 private:
  int64_t hidden_ = 0, max_positions_ = 0;
  nn::Embedding words_, positions_;
  nn::LayerNorm embedding_norm_;
  std::vector<nn::PostNormEncoderLayer> layers_;
};

}  // namespace

std::unique_ptr<Encoder> load_distilbert(const Config& config, const nn::Weights& weights) {
  return std::make_unique<DistilBert>(config, weights);
}

// pre_classifier (ReLU) + classifier on the first token; vocab_transform, vocab_layer_norm and
// vocab_projector for the masked LM.
std::unique_ptr<Head> load_distilbert_head(const Config& config, const nn::Weights& weights,
                                           HeadKind kind, int64_t labels) {
  const int64_t dim = config.positive("dim");
  const nn::Activation act =
      nn::parse_activation(config.string("activation", "gelu"), "activation");
  if (kind == HeadKind::MaskedLM) {
    require_head_weight(weights, "vocab_transform.weight", kind);
    auto head = std::make_unique<MaskedLmHead>();
    head->dense = nn::Linear::load(weights, "vocab_transform", dim, dim, true);
    head->activation = act;
    head->norm = nn::LayerNorm::load(weights, "vocab_layer_norm", dim, kEps);
    const Tensor words = encoder_weights(weights).get("embeddings.word_embeddings.weight",
                                                      {config.positive("vocab_size"), dim});
    head->decoder =
        load_vocab_projection(weights, "vocab_projector", {"vocab_projector.bias"}, words);
    return head;
  }
  if (kind != HeadKind::SequenceClassification) return load_token_head(weights, kind, dim, labels);
  require_head_weight(weights, "pre_classifier.weight", kind);
  auto head = std::make_unique<ClassifierHead>();
  head->dense = nn::Linear::load(weights, "pre_classifier", dim, dim, true);
  head->activation = nn::Activation::Relu;
  head->out = nn::Linear::load(weights, "classifier", dim, labels, true);
  return head;
}

}  // namespace ember::models
