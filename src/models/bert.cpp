// BERT and the checkpoints that share its layout: RoBERTa, XLM-RoBERTa and CamemBERT (which differ
// only in how position ids are counted).
#include <cmath>
#include <string>
#include <vector>

#include "bert_family.hpp"
#include "ember/core/ops.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"

namespace ember::models {

nn::Weights bert_encoder_weights(const Config& config, const nn::Weights& checkpoint) {
  const std::string type = config.model_type();
  const auto prefix = checkpoint.find_prefix("embeddings.word_embeddings.weight",
                                             {"", type + ".", "bert.", "roberta.", "model."});
  if (!prefix) {
    throw Error("missing weight 'embeddings.word_embeddings.weight' (with or without a '" + type +
                ".' prefix) in " + checkpoint.source().description());
  }
  return checkpoint.with_prefix(*prefix);
}

BertEmbeddings load_bert_embeddings(const Config& config, const nn::Weights& encoder,
                                    int64_t width) {
  const std::string type = config.model_type();
  BertEmbeddings e;
  e.roberta_positions = type == "roberta" || type == "xlm-roberta" || type == "camembert";
  e.max_positions = config.positive("max_position_embeddings");
  e.pad_id = config.integer("pad_token_id", e.roberta_positions ? 1 : 0);
  if (config.string("position_embedding_type", "absolute") != "absolute") {
    config.fail("position_embedding_type '" + config.string("position_embedding_type") +
                "' is not supported (only 'absolute')");
  }
  const int64_t type_vocab = config.integer("type_vocab_size", 2);
  e.words = nn::Embedding::load(encoder, "embeddings.word_embeddings",
                                config.positive("vocab_size"), width);
  e.positions =
      nn::Embedding::load(encoder, "embeddings.position_embeddings", e.max_positions, width);
  if (type_vocab > 0) {
    e.token_types =
        nn::Embedding::load(encoder, "embeddings.token_type_embeddings", type_vocab, width);
  }
  e.norm = nn::LayerNorm::load(encoder, "embeddings.LayerNorm", width,
                               config.number("layer_norm_eps", 1e-12));
  return e;
}

int64_t BertEmbeddings::max_tokens() const {
  // RoBERTa's positions start after the padding index.
  return roberta_positions ? max_positions - pad_id - 1 : max_positions;
}

Tensor BertEmbeddings::operator()(const TokenBatch& batch) const {
  const int64_t n = static_cast<int64_t>(batch.ids.size());
  std::vector<int64_t> position_ids(static_cast<size_t>(n));
  for (size_t s = 0; s < batch.sequences(); ++s) {
    int64_t counted = 0;
    for (int64_t i = batch.offsets[s]; i < batch.offsets[s + 1]; ++i) {
      const size_t ii = static_cast<size_t>(i);
      if (!roberta_positions) {
        position_ids[ii] = i - batch.offsets[s];
      } else if (batch.ids[ii] == pad_id) {
        position_ids[ii] = pad_id;  // RoBERTa gives padding tokens the padding position
      } else {
        position_ids[ii] = pad_id + 1 + counted++;
      }
      if (position_ids[ii] >= max_positions) {
        throw Error("sequence " + std::to_string(s) + " has more tokens than the model's " +
                    std::to_string(max_tokens()) + " positions");
      }
    }
  }
  const auto ids_tensor = [&](const std::vector<int64_t>& v) {
    return Tensor::from_values<int64_t>(DType::I64, {n}, v);
  };
  Tensor x = words(ids_tensor(batch.ids));
  nn::add_(x, positions(ids_tensor(position_ids)));
  if (token_types.weight.defined()) {
    const std::vector<int64_t> types = batch.token_types.empty()
                                           ? std::vector<int64_t>(static_cast<size_t>(n), 0)
                                           : batch.token_types;
    nn::add_(x, token_types(ids_tensor(types)));
  }
  x = norm(x);
  return project.weight.defined() ? project(x) : x;
}

nn::PostNormEncoderLayer load_post_norm_layer(const Config& config, const nn::Weights& encoder,
                                              const std::string& prefix,
                                              const PostNormLayerNames& names,
                                              std::string_view default_act) {
  const int64_t hidden = config.positive("hidden_size");
  const int64_t heads = config.positive("num_attention_heads");
  if (hidden % heads != 0) {
    config.fail("hidden_size " + std::to_string(hidden) +
                " is not a multiple of num_attention_heads " + std::to_string(heads));
  }
  const int64_t intermediate = config.positive("intermediate_size");
  const double eps = config.number("layer_norm_eps", 1e-12);
  const auto name = [&](std::string_view n) { return prefix + std::string(n); };
  nn::PostNormEncoderLayer layer;
  layer.qkv = nn::Linear::fuse({
      nn::Linear::load(encoder, name(names.query), hidden, hidden, true),
      nn::Linear::load(encoder, name(names.key), hidden, hidden, true),
      nn::Linear::load(encoder, name(names.value), hidden, hidden, true),
  });
  layer.attention_out = nn::Linear::load(encoder, name(names.attention_out), hidden, hidden, true);
  layer.attention_norm = nn::LayerNorm::load(encoder, name(names.attention_norm), hidden, eps);
  layer.mlp_up = nn::Linear::load(encoder, name(names.mlp_up), hidden, intermediate, true);
  layer.mlp_down = nn::Linear::load(encoder, name(names.mlp_down), intermediate, hidden, true);
  layer.output_norm = nn::LayerNorm::load(encoder, name(names.output_norm), hidden, eps);
  layer.activation =
      nn::parse_activation(config.string("hidden_act", std::string(default_act)), "hidden_act");
  layer.heads = heads;
  layer.head_dim = hidden / heads;
  return layer;
}

PostNormEncoder::PostNormEncoder(int64_t hidden, BertEmbeddings embeddings,
                                 std::vector<nn::PostNormEncoderLayer> layers,
                                 std::vector<size_t> order)
    : hidden_(hidden),
      embeddings_(std::move(embeddings)),
      layers_(std::move(layers)),
      order_(std::move(order)) {}

Tensor PostNormEncoder::forward(const TokenBatch& batch) const {
  Tensor x = embeddings_(batch);
  if (order_.empty()) {
    for (const nn::PostNormEncoderLayer& layer : layers_) x = layer(x, batch.offsets);
  }
  for (size_t i : order_) x = layers_[i](x, batch.offsets);
  return x;
}

std::vector<nn::PostNormEncoderLayer> load_bert_layers(const Config& config,
                                                       const nn::Weights& encoder) {
  const int64_t n = config.positive("num_hidden_layers");
  std::vector<nn::PostNormEncoderLayer> layers;
  for (int64_t i = 0; i < n; ++i) {
    layers.push_back(load_post_norm_layer(
        config, encoder, "encoder.layer." + std::to_string(i) + ".", kBertLayerNames, "gelu"));
  }
  return layers;
}

int64_t embedding_size(const Config& config) {
  const int64_t width = config.integer("embedding_size", 128);
  if (width < 1) config.fail("embedding_size " + std::to_string(width) + " is not positive");
  return width;
}

std::unique_ptr<Encoder> load_bert(const Config& config, const nn::Weights& weights) {
  const int64_t hidden = config.positive("hidden_size");
  const nn::Weights w = bert_encoder_weights(config, weights);
  return std::make_unique<PostNormEncoder>(hidden, load_bert_embeddings(config, w, hidden),
                                           load_bert_layers(config, w));
}

// BERT: pooler + classifier, cls.predictions.*. RoBERTa and its kin: classifier.dense/out_proj on
// <s>, lm_head.*. Token classification and QA are one linear layer in both.
std::unique_ptr<Head> load_bert_head(const Config& config, const nn::Weights& weights,
                                     HeadKind kind, int64_t labels) {
  const bool roberta = config.model_type() != "bert";
  const int64_t hidden = config.positive("hidden_size");
  const nn::Weights encoder = bert_encoder_weights(config, weights);
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
  head->activation = nn::Activation::Tanh;
  if (roberta) {
    require_head_weight(weights, "classifier.out_proj.weight", kind);
    head->dense = nn::Linear::load(weights, "classifier.dense", hidden, hidden, true);
    head->out = nn::Linear::load(weights, "classifier.out_proj", hidden, labels, true);
  } else {
    require_head_weight(weights, "classifier.weight", kind);
    head->dense = nn::Linear::load(encoder, "pooler.dense", hidden, hidden, true);
    head->out = nn::Linear::load(weights, "classifier", hidden, labels, true);
  }
  return head;
}

}  // namespace ember::models
