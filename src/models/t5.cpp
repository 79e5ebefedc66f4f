// T5 v1.0 and v1.1 (mT5 is v1.1 under model_type mt5): pre-norm RMS layers without biases, relative
// position buckets (the first layer's table serves every layer: bidirectional in the encoder,
// causal in the decoder), unscaled attention scores, a ReLU MLP (v1.0) or a gated-GELU one (v1.1).
// The output head is lm_head.weight when the checkpoint has one (v1.1), else the shared embeddings;
// the decoder output is scaled by d_model^-0.5 before the head unless the config says otherwise:
// Hub configs say so with tie_word_embeddings: false, transformers 5.24's with
// scale_decoder_outputs: false.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/ops.hpp"
#include "ember/models/seq2seq_lm.hpp"

namespace ember::models {
namespace {

struct T5Shape {
  int64_t hidden = 0, inner = 0, heads = 0, head_dim = 0, buckets = 0, max_distance = 0;
  double eps = 1e-6;
  bool gated = false;
  nn::Activation activation = nn::Activation::Relu;
};

T5Shape read_shape(const Config& config) {
  T5Shape s;
  s.hidden = config.positive("d_model");
  s.inner = config.positive("d_ff");
  s.heads = config.positive("num_heads");
  s.head_dim = config.positive("d_kv");
  s.buckets = config.integer("relative_attention_num_buckets", 32);
  s.max_distance = config.integer("relative_attention_max_distance", 128);
  if (s.buckets < 2 || s.max_distance < s.buckets / 2 + 1)
    config.fail("relative_attention_num_buckets must be >= 2 and max_distance above half of it");
  s.eps = config.number("layer_norm_epsilon", 1e-6);
  // "relu", "gated-gelu" (GELU's tanh form, as transformers maps it) or "gated-ACT".
  const std::string ff = config.string("feed_forward_proj", "relu");
  s.gated = ff.rfind("gated-", 0) == 0;
  const std::string act = s.gated ? ff.substr(6) : ff;
  s.activation = act == "gelu" && s.gated ? nn::Activation::GeluTanh
                                          : nn::parse_activation(act, "feed_forward_proj");
  return s;
}

nn::FeedForward load_mlp(const nn::Weights& w, const std::string& p, const T5Shape& s) {
  nn::FeedForward f;
  f.gated = s.gated;
  f.activation = s.activation;
  if (s.gated) {
    f.up = nn::Linear::fuse({nn::Linear::load(w, p + "wi_0", s.hidden, s.inner, false),
                             nn::Linear::load(w, p + "wi_1", s.hidden, s.inner, false)});
  } else {
    f.up = nn::Linear::load(w, p + "wi", s.hidden, s.inner, false);
  }
  f.down = nn::Linear::load(w, p + "wo", s.inner, s.hidden, false);
  return f;
}

nn::Linear load_qkv(const nn::Weights& w, const std::string& p, const T5Shape& s) {
  const int64_t width = s.heads * s.head_dim;
  return nn::Linear::fuse({nn::Linear::load(w, p + "q", s.hidden, width, false),
                           nn::Linear::load(w, p + "k", s.hidden, width, false),
                           nn::Linear::load(w, p + "v", s.hidden, width, false)});
}

nn::Norm load_norm(const nn::Weights& w, const std::string& name, const T5Shape& s) {
  return nn::Norm{nn::RmsNorm::load(w, name, s.hidden, s.eps)};
}

class T5 final : public Seq2SeqLM {
 public:
  T5(const Config& config, const nn::Weights& w) {
    const T5Shape s = read_shape(config);
    vocab_ = config.positive("vocab_size");
    start_id_ = config.integer("decoder_start_token_id", config.integer("pad_token_id", 0));
    max_source_ = std::numeric_limits<int64_t>::max();
    const int64_t encoder_layers = config.positive("num_layers");
    const int64_t decoder_layers = config.integer("num_decoder_layers", encoder_layers);
    if (decoder_layers < 1) config.fail("num_decoder_layers must be >= 1");
    const int64_t width = s.heads * s.head_dim;
    const nn::AttentionShape shape{s.heads, s.head_dim, 1.0f};

    const std::string embed = w.contains("shared.weight") ? "shared" : "encoder.embed_tokens";
    tokens_ = nn::Embedding::load(w, embed, vocab_, s.hidden);
    encoder_bias_ = {
        w.get_f32("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                  {s.buckets, s.heads}),
        true, s.max_distance};
    decoder_bias_ = {
        w.get_f32("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                  {s.buckets, s.heads}),
        false, s.max_distance};
    for (int64_t i = 0; i < encoder_layers; ++i) {
      const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
      nn::Seq2SeqEncoderLayer l;
      l.attention_norm = load_norm(w, p + "0.layer_norm", s);
      l.qkv = load_qkv(w, p + "0.SelfAttention.", s);
      l.attention_out = nn::Linear::load(w, p + "0.SelfAttention.o", width, s.hidden, false);
      l.mlp_norm = load_norm(w, p + "1.layer_norm", s);
      l.mlp = load_mlp(w, p + "1.DenseReluDense.", s);
      l.shape = shape;
      encoder_.push_back(std::move(l));
    }
    encoder_norm_ = load_norm(w, "encoder.final_layer_norm", s);
    for (int64_t i = 0; i < decoder_layers; ++i) {
      const std::string p = "decoder.block." + std::to_string(i) + ".layer.";
      nn::Seq2SeqDecoderLayer l;
      l.self_norm = load_norm(w, p + "0.layer_norm", s);
      l.qkv = load_qkv(w, p + "0.SelfAttention.", s);
      l.self_out = nn::Linear::load(w, p + "0.SelfAttention.o", width, s.hidden, false);
      l.cross_norm = load_norm(w, p + "1.layer_norm", s);
      l.cross_query = nn::Linear::load(w, p + "1.EncDecAttention.q", s.hidden, width, false);
      l.cross_kv = nn::Linear::fuse(
          {nn::Linear::load(w, p + "1.EncDecAttention.k", s.hidden, width, false),
           nn::Linear::load(w, p + "1.EncDecAttention.v", s.hidden, width, false)});
      l.cross_out = nn::Linear::load(w, p + "1.EncDecAttention.o", width, s.hidden, false);
      l.mlp_norm = load_norm(w, p + "2.layer_norm", s);
      l.mlp = load_mlp(w, p + "2.DenseReluDense.", s);
      l.shape = shape;
      decoder_.push_back(std::move(l));
    }
    decoder_norm_ = load_norm(w, "decoder.final_layer_norm", s);
    // A Linear, so that an F32 head is packed for the few rows (beams) of a decode step.
    head_.weight =
        w.contains("lm_head.weight") ? w.get("lm_head.weight", {vocab_, s.hidden}) : tokens_.weight;
    head_.packed = ops::pack_linear_weight(head_.weight);
    const bool tied_form = config.boolean("tie_word_embeddings", true);
    if (config.boolean("scale_decoder_outputs", tied_form))
      output_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.hidden)));
  }

  int64_t vocab_size() const override { return vocab_; }
  int64_t max_source_tokens() const override { return max_source_; }
  int64_t decoder_start_token_id() const override { return start_id_; }

  // On the tokens alone, packed: a relative position bias over the longest input serves every
  // input (its top-left block), as their positions all start at 0.
  Tensor encode(const Tensor& ids, const Tensor& mask) const override {
    const nn::PackedTokens tokens = pack_encoder_input("t5", ids, mask);
    if (!tokens.contiguous) {
      throw Error(
          "t5 encode: the attention mask has padding between an input's tokens; relative "
          "positions need each input's tokens side by side");
    }
    int64_t longest = 0;
    for (size_t b = 0; b + 1 < tokens.offsets.size(); ++b)
      longest = std::max(longest, tokens.offsets[b + 1] - tokens.offsets[b]);
    Tensor x = nn::gather_tokens(tokens_(ids), tokens);
    const Tensor bias = encoder_bias_(longest, longest, 0);
    for (const nn::Seq2SeqEncoderLayer& l : encoder_) x = l(x, tokens.offsets, bias);
    return nn::scatter_tokens(encoder_norm_(x), tokens);
  }

  Seq2SeqCache new_cache(const Tensor& encoded, const Tensor& mask,
                         int64_t capacity) const override {
    return new_decoder_cache(decoder_, encoded, mask, capacity);
  }

  Tensor decode(const Tensor& ids, Seq2SeqCache& cache) const override {
    check_decode_input("t5", ids, cache, decoder_.size());
    const int64_t past = cache.self.length, tokens = ids.dim(1);
    const Tensor bias = decoder_bias_(tokens, past + tokens, past);
    Tensor x = tokens_(ids);
    for (size_t i = 0; i < decoder_.size(); ++i) {
      x = decoder_[i](x, bias, cache.self.layers[i], past, cache.cross.layers[i], cache.cross.mask);
    }
    cache.self.length += tokens;
    x = decoder_norm_(x);
    if (output_scale_ != 1.0f) x = ops::mul(x, ops::scalar(output_scale_));
    return head_(x);
  }

 private:
  int64_t vocab_ = 0, start_id_ = 0, max_source_ = 0;
  float output_scale_ = 1.0f;
  nn::Embedding tokens_;
  nn::RelativePositionBias encoder_bias_, decoder_bias_;
  std::vector<nn::Seq2SeqEncoderLayer> encoder_;
  std::vector<nn::Seq2SeqDecoderLayer> decoder_;
  nn::Norm encoder_norm_, decoder_norm_;
  nn::Linear head_;
};

}  // namespace

std::unique_ptr<Seq2SeqLM> load_t5(const Config& config, const nn::Weights& weights) {
  return std::make_unique<T5>(config, weights);
}

}  // namespace ember::models
