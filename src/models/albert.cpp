// ALBERT: BERT's post-norm layers under other names, with two savings in parameters. The
// embeddings are embedding_size wide and projected up to hidden_size, and the layers share
// weights: num_hidden_layers steps run through num_hidden_groups groups of inner_group_num layers.
#include <string>
#include <vector>

#include "bert_family.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"

namespace ember::models {
namespace {

constexpr PostNormLayerNames kAlbertLayerNames{
    "attention.query",     "attention.key", "attention.value", "attention.dense",
    "attention.LayerNorm", "ffn",           "ffn_output",      "full_layer_layer_norm"};

// AlbertConfig's default, for configs that leave it out.
constexpr const char* kActivation = "gelu_new";

}  // namespace

std::unique_ptr<Encoder> load_albert(const Config& config, const nn::Weights& weights) {
  const int64_t hidden = config.positive("hidden_size");
  const int64_t steps = config.positive("num_hidden_layers");
  const int64_t groups = config.integer("num_hidden_groups", 1);
  const int64_t inner = config.integer("inner_group_num", 1);
  if (groups < 1 || groups > steps) {
    config.fail("num_hidden_groups " + std::to_string(groups) +
                " is not in 1..num_hidden_layers (" + std::to_string(steps) + ")");
  }
  if (inner < 1) config.fail("inner_group_num " + std::to_string(inner) + " is not positive");
  const nn::Weights w = bert_encoder_weights(config, weights);
  const int64_t width = embedding_size(config);
  BertEmbeddings embeddings = load_bert_embeddings(config, w, width);
  embeddings.project =
      nn::Linear::load(w, "encoder.embedding_hidden_mapping_in", width, hidden, true);

  std::vector<nn::PostNormEncoderLayer> layers;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t k = 0; k < inner; ++k) {
      layers.push_back(load_post_norm_layer(config, w,
                                            "encoder.albert_layer_groups." + std::to_string(g) +
                                                ".albert_layers." + std::to_string(k) + ".",
                                            kAlbertLayerNames, kActivation));
    }
  }
  // Step i runs group floor(i / (steps / groups)), computed in floating point as transformers
  // does (the two differ when groups does not divide steps).
  std::vector<size_t> order;
  const double per_group = static_cast<double>(steps) / static_cast<double>(groups);
  for (int64_t i = 0; i < steps; ++i) {
    const auto g = static_cast<int64_t>(static_cast<double>(i) / per_group);
    for (int64_t k = 0; k < inner; ++k) order.push_back(static_cast<size_t>(g * inner + k));
  }
  return std::make_unique<PostNormEncoder>(hidden, std::move(embeddings), std::move(layers),
                                           std::move(order));
}

// Classification through the pooler (dense + tanh on the first token); the masked LM projects
// down to embedding_size before the vocabulary, whose weights are the word embeddings.
std::unique_ptr<Head> load_albert_head(const Config& config, const nn::Weights& weights,
                                       HeadKind kind, int64_t labels) {
  const int64_t hidden = config.positive("hidden_size");
  const nn::Weights encoder = bert_encoder_weights(config, weights);
  if (kind == HeadKind::MaskedLM) {
    require_head_weight(weights, "predictions.dense.weight", kind);
    const int64_t width = embedding_size(config);
    auto head = std::make_unique<MaskedLmHead>();
    head->dense = nn::Linear::load(weights, "predictions.dense", hidden, width, true);
    head->activation = nn::parse_activation(config.string("hidden_act", kActivation), "hidden_act");
    head->norm = nn::LayerNorm::load(weights, "predictions.LayerNorm", width,
                                     config.number("layer_norm_eps", 1e-12));
    const Tensor words =
        encoder.get("embeddings.word_embeddings.weight", {config.positive("vocab_size"), width});
    head->decoder = load_vocab_projection(weights, "predictions.decoder",
                                          {"predictions.bias", "predictions.decoder.bias"}, words);
    return head;
  }
  if (kind != HeadKind::SequenceClassification) {
    return load_per_token_head(weights, kind, hidden, labels);
  }
  require_head_weight(weights, "classifier.weight", kind);
  auto head = std::make_unique<ClassifierHead>();
  head->dense = nn::Linear::load(encoder, "pooler", hidden, hidden, true);
  head->activation = nn::Activation::Tanh;
  head->out = nn::Linear::load(weights, "classifier", hidden, labels, true);
  return head;
}

}  // namespace ember::models
