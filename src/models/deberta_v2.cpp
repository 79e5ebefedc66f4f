// DeBERTa-v2 (also DeBERTa-v3 and mDeBERTa, saved as model_type deberta-v2): BERT's post-norm
// layers with disentangled attention over relative positions (nn/disentangled_attention.hpp),
// optionally without absolute position embeddings, a bucketed relative embedding table shared by
// the layers, and an optional convolution beside the first layer.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "ember/core/ops.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"
#include "ember/nn/disentangled_attention.hpp"
#include "ember/nn/encoder_layer.hpp"
#include "ember/nn/layers.hpp"

namespace ember::models {
namespace {

nn::Weights encoder_weights(const nn::Weights& checkpoint) {
  const auto prefix = checkpoint.find_prefix("embeddings.word_embeddings.weight", {"", "deberta."});
  if (!prefix) {
    throw Error(
        "missing weight 'embeddings.word_embeddings.weight' (with or without a 'deberta.' "
        "prefix) in " +
        checkpoint.source().description());
  }
  return checkpoint.with_prefix(*prefix);
}

// pos_att_type: "p2c|c2p" or ["p2c", "c2p"] (or absent).
std::vector<std::string> position_attention_types(const Config& config) {
  std::vector<std::string> types;
  if (!config.has("pos_att_type")) return types;
  const nlohmann::json& field = config.json().at("pos_att_type");
  const auto add = [&](std::string t) {
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (t != "c2p" && t != "p2c") {
      config.fail("pos_att_type '" + t + "' is not supported (c2p, p2c)");
    }
    types.push_back(t);
  };
  if (field.is_string()) {
    const std::string s = field.get<std::string>();
    size_t start = 0;
    for (size_t bar = s.find('|'); bar != std::string::npos; bar = s.find('|', start)) {
      add(s.substr(start, bar - start));
      start = bar + 1;
    }
    add(s.substr(start));
  } else if (field.is_array()) {
    for (const nlohmann::json& t : field) {
      if (!t.is_string()) config.fail("pos_att_type entries must be strings");
      add(t.get<std::string>());
    }
  } else {
    config.fail("pos_att_type must be a string or a list of strings");
  }
  return types;
}

bool has_type(const std::vector<std::string>& types, std::string_view t) {
  return std::find(types.begin(), types.end(), t) != types.end();
}

struct DebertaLayer {
  nn::PostNormEncoderLayer base;
  // The relative embeddings through this layer's position projections, [2 * span, hidden];
  // undefined when the term is off. They depend on no input, so they are made once at load.
  Tensor pos_key, pos_query;
};

// ConvLayer: a 1-D convolution of the embeddings over each sequence, an activation, the first
// layer's output added and a LayerNorm. The reference zeroes padding before and after; packed
// sequences have none, so its only trace is the zero padding at each sequence's ends. Computed
// as one Linear over the kernel-wide windows of rows.
struct ConvBranch {
  int64_t kernel = 0;
  nn::Linear conv;  // [hidden, kernel * hidden]: weight[o][t * hidden + c] = conv[o][c][t]
  nn::Activation activation = nn::Activation::Tanh;
  nn::LayerNorm norm;

  Tensor operator()(const Tensor& embedded, const Tensor& layer_out,
                    std::span<const int64_t> offsets) const {
    const int64_t n = embedded.dim(0), hidden = embedded.dim(1), pad = (kernel - 1) / 2;
    Tensor windows = Tensor::zeros(DType::F32, {n, kernel * hidden});
    const float* x = embedded.data_as<float>();
    float* w = windows.mutable_data_as<float>();
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
        for (int64_t t = 0; t < kernel; ++t) {
          const int64_t src = i + t - pad;
          if (src < offsets[s] || src >= offsets[s + 1]) continue;
          std::copy_n(x + src * hidden, hidden, w + (i * kernel + t) * hidden);
        }
      }
    }
    Tensor out = conv(windows);
    nn::activate_(out, activation);
    nn::add_(out, layer_out);
    return norm(out);
  }
};

class DebertaV2 final : public Encoder {
 public:
  DebertaV2(const Config& config, const nn::Weights& checkpoint) {
    hidden_ = config.positive("hidden_size");
    const int64_t heads = config.positive("num_attention_heads");
    if (hidden_ % heads != 0) {
      config.fail("hidden_size " + std::to_string(hidden_) +
                  " is not a multiple of num_attention_heads " + std::to_string(heads));
    }
    const int64_t head_dim = hidden_ / heads;
    if (config.integer("attention_head_size", head_dim) != head_dim) {
      config.fail(
          "attention_head_size other than hidden_size / num_attention_heads is not "
          "supported");
    }
    const int64_t layers = config.positive("num_hidden_layers");
    const int64_t intermediate = config.positive("intermediate_size");
    const int64_t vocab = config.positive("vocab_size");
    const int64_t embedding = config.integer("embedding_size", hidden_);
    max_positions_ = config.positive("max_position_embeddings");
    const int64_t type_vocab = config.integer("type_vocab_size", 0);
    const double eps = config.number("layer_norm_eps", 1e-7);
    const nn::Activation act =
        nn::parse_activation(config.string("hidden_act", "gelu"), "hidden_act");
    const std::vector<std::string> types = position_attention_types(config);
    // The reference divides by sqrt(head_dim * (1 + number of position terms)) whether or not
    // relative attention is on.
    scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim) *
                              static_cast<float>(1 + static_cast<int64_t>(types.size())));

    const nn::Weights w = encoder_weights(checkpoint);
    words_ = nn::Embedding::load(w, "embeddings.word_embeddings", vocab, embedding);
    if (config.boolean("position_biased_input", true)) {
      positions_ =
          nn::Embedding::load(w, "embeddings.position_embeddings", max_positions_, embedding);
    }
    if (type_vocab > 0) {
      token_types_ =
          nn::Embedding::load(w, "embeddings.token_type_embeddings", type_vocab, embedding);
    }
    if (embedding != hidden_) {
      embed_proj_ = nn::Linear::load(w, "embeddings.embed_proj", embedding, hidden_, false);
    }
    embedding_norm_ = nn::LayerNorm::load(w, "embeddings.LayerNorm", hidden_, eps);

    Tensor relative;  // the relative embedding table [2 * span, hidden], normalized if asked
    if (config.boolean("relative_attention", false)) {
      span_.max_position = config.integer("max_relative_positions", -1);
      if (span_.max_position < 1) span_.max_position = max_positions_;
      span_.buckets = std::max<int64_t>(config.integer("position_buckets", -1), 0);
      span_.span = span_.buckets > 0 ? span_.buckets : span_.max_position;
      if (span_.buckets > 0 && span_.max_position - 1 <= span_.buckets / 2) {
        config.fail("max_relative_positions " + std::to_string(span_.max_position) +
                    " must exceed position_buckets / 2 + 1 for logarithmic buckets");
      }
      relative = w.get_f32("encoder.rel_embeddings.weight", {2 * span_.span, hidden_});
      std::string norm = config.string("norm_rel_ebd", "none");
      for (char& c : norm) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (norm.find("layer_norm") != std::string::npos) {
        relative = nn::LayerNorm::load(w, "encoder.LayerNorm", hidden_, eps)(relative);
      }
    }
    const bool share = config.boolean("share_att_key", false);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      const std::string a = p + "attention.self.";
      DebertaLayer layer;
      const nn::Linear query = nn::Linear::load(w, a + "query_proj", hidden_, hidden_, true);
      const nn::Linear key = nn::Linear::load(w, a + "key_proj", hidden_, hidden_, true);
      layer.base.qkv = nn::Linear::fuse(
          {query, key, nn::Linear::load(w, a + "value_proj", hidden_, hidden_, true)});
      layer.base.attention_out =
          nn::Linear::load(w, p + "attention.output.dense", hidden_, hidden_, true);
      layer.base.attention_norm =
          nn::LayerNorm::load(w, p + "attention.output.LayerNorm", hidden_, eps);
      layer.base.mlp_up =
          nn::Linear::load(w, p + "intermediate.dense", hidden_, intermediate, true);
      layer.base.mlp_down = nn::Linear::load(w, p + "output.dense", intermediate, hidden_, true);
      layer.base.output_norm = nn::LayerNorm::load(w, p + "output.LayerNorm", hidden_, eps);
      layer.base.activation = act;
      layer.base.heads = heads;
      layer.base.head_dim = head_dim;
      if (relative.defined()) {
        if (has_type(types, "c2p")) {
          layer.pos_key =
              share ? key(relative)
                    : nn::Linear::load(w, a + "pos_key_proj", hidden_, hidden_, true)(relative);
        }
        if (has_type(types, "p2c")) {
          layer.pos_query =
              share ? query(relative)
                    : nn::Linear::load(w, a + "pos_query_proj", hidden_, hidden_, true)(relative);
        }
      }
      layers_.push_back(std::move(layer));
    }

    const int64_t kernel = config.integer("conv_kernel_size", 0);
    if (kernel > 0) {
      if (kernel % 2 == 0) {
        config.fail("conv_kernel_size " + std::to_string(kernel) +
                    " is even; the reference's padding then shortens the sequence (only odd "
                    "kernels are supported)");
      }
      if (config.integer("conv_groups", 1) != 1) {
        config.fail("conv_groups " + std::to_string(config.integer("conv_groups", 1)) +
                    " is not supported (only 1)");
      }
      conv_.kernel = kernel;
      conv_.activation = nn::parse_activation(config.string("conv_act", "tanh"), "conv_act");
      conv_.norm = nn::LayerNorm::load(w, "encoder.conv.LayerNorm", hidden_, eps);
      const Tensor weight = w.get_f32("encoder.conv.conv.weight", {hidden_, hidden_, kernel});
      Tensor flat = Tensor::empty(DType::F32, {hidden_, kernel * hidden_});
      const float* src = weight.data_as<float>();
      float* dst = flat.mutable_data_as<float>();
      for (int64_t o = 0; o < hidden_; ++o)
        for (int64_t c = 0; c < hidden_; ++c)
          for (int64_t t = 0; t < kernel; ++t)
            dst[(o * kernel + t) * hidden_ + c] = src[(o * hidden_ + c) * kernel + t];
      conv_.conv.weight = flat;
      conv_.conv.bias = w.get_f32("encoder.conv.conv.bias", {hidden_});
      conv_.conv.packed = ops::pack_linear_weight(flat);
    }
  }

  int64_t hidden_size() const override { return hidden_; }
  int64_t max_tokens() const override { return max_positions_; }

  Tensor forward(const TokenBatch& batch) const override {
    const int64_t n = static_cast<int64_t>(batch.ids.size());
    int64_t longest = 0;
    std::vector<int64_t> positions(static_cast<size_t>(n));
    for (size_t s = 0; s < batch.sequences(); ++s) {
      const int64_t length = batch.offsets[s + 1] - batch.offsets[s];
      if (length > max_positions_) {
        throw Error("sequence " + std::to_string(s) + " has more tokens than the model's " +
                    std::to_string(max_positions_) + " positions");
      }
      longest = std::max(longest, length);
      for (int64_t i = 0; i < length; ++i) positions[static_cast<size_t>(batch.offsets[s] + i)] = i;
    }
    const auto ids_tensor = [&](const std::vector<int64_t>& v) {
      return Tensor::from_values<int64_t>(DType::I64, {n}, v);
    };
    Tensor x = words_(ids_tensor(batch.ids));
    if (positions_.weight.defined()) nn::add_(x, positions_(ids_tensor(positions)));
    if (token_types_.weight.defined()) {
      const std::vector<int64_t> types = batch.token_types.empty()
                                             ? std::vector<int64_t>(static_cast<size_t>(n), 0)
                                             : batch.token_types;
      nn::add_(x, token_types_(ids_tensor(types)));
    }
    if (embed_proj_.weight.defined()) x = embed_proj_(x);
    x = embedding_norm_(x);

    // The table rows of every distance, for the longest sequence; a shorter one of length L
    // reads the middle 2L - 1 entries.
    const std::vector<int64_t> rows = span_.rows(longest);
    const Tensor embedded = x;
    for (size_t l = 0; l < layers_.size(); ++l) {
      x = layer_forward(layers_[l], x, batch.offsets, rows, longest);
      if (l == 0 && conv_.kernel > 0) x = conv_(embedded, x, batch.offsets);
    }
    return x;
  }

 private:
  Tensor layer_forward(const DebertaLayer& layer, const Tensor& x, std::span<const int64_t> offsets,
                       const std::vector<int64_t>& rows, int64_t longest) const {
    const int64_t n = x.dim(0), heads = layer.base.heads, dim = layer.base.head_dim;
    const Tensor qkv = layer.base.qkv(x).view({n, 3, heads, dim});
    const Tensor q = qkv.select(1, 0), k = qkv.select(1, 1), v = qkv.select(1, 2);
    Tensor context = Tensor::empty(DType::F32, {n, heads, dim});
    const bool relative = layer.pos_key.defined() || layer.pos_query.defined();
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      const int64_t start = offsets[s], length = offsets[s + 1] - start;
      if (length == 0) continue;
      ops::AttentionMask mask;
      const Tensor qs = q.narrow(0, start, length), ks = k.narrow(0, start, length);
      if (relative) {
        const auto own = std::span<const int64_t>(rows).subspan(
            static_cast<size_t>(longest - length), static_cast<size_t>(2 * length - 1));
        mask.bias = Tensor::empty(DType::F32, {heads, length, length});
        nn::disentangled_bias_into(qs, ks, layer.pos_key, layer.pos_query, own, scale_, mask.bias);
      }
      Tensor out = context.narrow(0, start, length).unsqueeze(0);
      ops::attention_into(qs.unsqueeze(0), ks.unsqueeze(0), v.narrow(0, start, length).unsqueeze(0),
                          mask, scale_, out);
    }
    return layer.base.after_attention(context.view({n, heads * dim}), x);
  }

  int64_t hidden_ = 0, max_positions_ = 0;
  float scale_ = 1.0f;
  nn::RelativeSpan span_;
  nn::Embedding words_, positions_, token_types_;
  nn::Linear embed_proj_;
  nn::LayerNorm embedding_norm_;
  std::vector<DebertaLayer> layers_;
  ConvBranch conv_;
};

}  // namespace

std::unique_ptr<Encoder> load_deberta_v2(const Config& config, const nn::Weights& weights) {
  return std::make_unique<DebertaV2>(config, weights);
}

// ContextPooler (dense + pooler_hidden_act on the first token) + classifier; the masked LM is
// cls.predictions.* (legacy, transformers' default) or lm_predictions.lm_head.* (legacy false),
// both projecting onto the word embeddings.
std::unique_ptr<Head> load_deberta_v2_head(const Config& config, const nn::Weights& weights,
                                           HeadKind kind, int64_t labels) {
  const int64_t hidden = config.positive("hidden_size");
  if (kind == HeadKind::MaskedLM) {
    const bool legacy = config.boolean("legacy", true);
    const int64_t embedding = legacy ? config.integer("embedding_size", hidden) : hidden;
    const std::string p = legacy ? "cls.predictions." : "lm_predictions.lm_head.";
    const std::string transform = legacy ? p + "transform." : p;
    if (legacy && !weights.contains(transform + "dense.weight") &&
        weights.contains("lm_predictions.lm_head.dense.weight")) {
      // DeBERTa-v3's released checkpoints: transformers, reading legacy as true, would start
      // a fresh random head instead.
      throw MissingHead("no ForMaskedLM head under cls.predictions.* in " +
                        weights.source().description() +
                        ": it has lm_predictions.lm_head.*, which config.json's legacy (absent or "
                        "true) does not select; set \"legacy\": false to use it");
    }
    require_head_weight(weights, transform + "dense.weight", kind);
    auto head = std::make_unique<MaskedLmHead>();
    head->dense = nn::Linear::load(weights, transform + "dense", hidden, embedding, true);
    head->activation = nn::parse_activation(config.string("hidden_act", "gelu"), "hidden_act");
    head->norm = nn::LayerNorm::load(weights, transform + "LayerNorm", embedding,
                                     config.number("layer_norm_eps", 1e-7));
    const Tensor words = encoder_weights(weights).get("embeddings.word_embeddings.weight",
                                                      {config.positive("vocab_size"), embedding});
    head->decoder =
        load_vocab_projection(weights, p + "decoder", {p + "bias", p + "decoder.bias"}, words);
    return head;
  }
  if (kind != HeadKind::SequenceClassification) {
    return load_per_token_head(weights, kind, hidden, labels);
  }
  require_head_weight(weights, "classifier.weight", kind);
  const int64_t pooled = config.integer("pooler_hidden_size", hidden);
  if (pooled != hidden) {
    config.fail("pooler_hidden_size " + std::to_string(pooled) +
                " differs from hidden_size (the pooler's input)");
  }
  auto head = std::make_unique<ClassifierHead>();
  head->dense = nn::Linear::load(weights, "pooler.dense", hidden, hidden, true);
  head->activation =
      nn::parse_activation(config.string("pooler_hidden_act", "gelu"), "pooler_hidden_act");
  head->out = nn::Linear::load(weights, "classifier", hidden, labels, true);
  return head;
}

}  // namespace ember::models
