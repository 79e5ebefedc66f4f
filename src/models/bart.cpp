// The BART family: BART, mBART, Marian, M2M100 (NLLB too, which is M2M100 with another
// tokenizer) and Pegasus. They share one layout (q/k/v/out projections and an fc1/fc2 MLP, all with
// biases, LayerNorms, token embeddings scaled by sqrt(d_model) when scale_embedding, q k^T scaled
// by head_dim^-0.5, a head tied to the embeddings unless lm_head.weight exists, plus
// final_logits_bias when present; Marian's separate_vocabs gives the decoder's table and head
// their own decoder_vocab_size) and differ in four choices:
//   model_type  layers     positions                        layernorm_embedding  final norms
//   bart        post-norm  learned, offset 2                yes                  no
//   mbart       pre-norm   learned, offset 2                yes                  yes
//   marian      post-norm  sinusoidal, sin half | cos half  no                   no
//   m2m_100     pre-norm   fairseq sinusoidal from padding  no                   yes
//   pegasus     pre-norm   sinusoidal, sin half | cos half  no                   yes
// fairseq's positions count the non-pad tokens: padding_idx + 1 for the first one, padding_idx
// (a zero row) for pad itself.
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/ops.hpp"
#include "ember/models/seq2seq_lm.hpp"

namespace ember::models {
namespace {

enum class Positions : uint8_t { Learned, Marian, Fairseq };

struct Variant {
  Positions positions = Positions::Learned;
  bool post_norm = false, embedding_norm = false, final_norms = false;
};

Variant variant_of(const Config& config) {
  const std::string type = config.model_type();
  if (type == "bart") return {Positions::Learned, true, true, false};
  if (type == "mbart") return {Positions::Learned, false, true, true};
  if (type == "marian") return {Positions::Marian, true, false, false};
  if (type == "m2m_100") return {Positions::Fairseq, false, false, true};
  if (type == "pegasus") return {Positions::Marian, false, false, true};
  config.fail("model_type '" + type +
              "' is not of the BART family (bart, mbart, marian, m2m_100, pegasus)");
}

// The learned tables have two rows before position 0 (BART's offset).
constexpr int64_t kLearnedOffset = 2;
// PyTorch's LayerNorm default, which these models keep.
constexpr double kNormEps = 1e-5;

// transformers' MarianSinusoidalPositionalEmbedding (and Pegasus's, the same table): sin(pos * f_k)
// in the first ceil(dim / 2) columns, cos(pos * f_k) in the rest, f_k = 10000^(-2k / dim), computed
// in double.
Tensor marian_table(int64_t rows, int64_t dim) {
  Tensor t = Tensor::empty(DType::F32, {rows, dim});
  float* o = t.mutable_data_as<float>();
  const int64_t sines = (dim + 1) / 2;
  for (int64_t p = 0; p < rows; ++p) {
    for (int64_t c = 0; c < dim; ++c) {
      const int64_t k = c < sines ? c : c - sines;
      const double angle = static_cast<double>(p) /
                           std::pow(10000.0, static_cast<double>(2 * k) / static_cast<double>(dim));
      o[p * dim + c] = static_cast<float>(c < sines ? std::sin(angle) : std::cos(angle));
    }
  }
  return t;
}

// fairseq's (M2M100's) table: sin(pos * f_k) then cos(pos * f_k) for k < dim / 2, f_k =
// exp(-k ln(10000) / (dim / 2 - 1)), a zero column for an odd dim, and a zero row at padding_idx.
// The frequencies and angles are F32 products as the reference computes them, so that the angles
// (up to ~1000 rad) round as there.
Tensor fairseq_table(int64_t rows, int64_t dim, int64_t padding_idx) {
  const int64_t half = dim / 2;
  Tensor t = Tensor::zeros(DType::F32, {rows, dim});
  float* o = t.mutable_data_as<float>();
  const auto step = static_cast<float>(-std::log(10000.0) / static_cast<double>(half - 1));
  for (int64_t k = 0; k < half; ++k) {
    const float freq = std::exp(static_cast<float>(k) * step);
    for (int64_t p = 0; p < rows; ++p) {
      if (p == padding_idx) continue;
      const float angle = static_cast<float>(p) * freq;
      o[p * dim + k] = std::sin(angle);
      o[p * dim + half + k] = std::cos(angle);
    }
  }
  return t;
}

struct StackShape {
  int64_t hidden = 0, heads = 0, inner = 0;
};

nn::Linear load_qkv(const nn::Weights& w, const std::string& p, int64_t hidden) {
  return nn::Linear::fuse({nn::Linear::load(w, p + "q_proj", hidden, hidden, true),
                           nn::Linear::load(w, p + "k_proj", hidden, hidden, true),
                           nn::Linear::load(w, p + "v_proj", hidden, hidden, true)});
}

nn::Norm load_norm(const nn::Weights& w, const std::string& name, int64_t hidden) {
  return nn::Norm{nn::LayerNorm::load(w, name, hidden, kNormEps)};
}

nn::FeedForward load_mlp(const nn::Weights& w, const std::string& p, const StackShape& s,
                         nn::Activation activation) {
  nn::FeedForward f;
  f.activation = activation;
  f.up = nn::Linear::load(w, p + "fc1", s.hidden, s.inner, true);
  f.down = nn::Linear::load(w, p + "fc2", s.inner, s.hidden, true);
  return f;
}

// One stack's embeddings: tokens (scaled), positions and the optional norms around the layers.
struct Embeddings {
  nn::Embedding tokens;
  Tensor positions;  // [rows, hidden] F32
  float scale = 1.0f;
  std::optional<nn::Norm> embedding_norm, final_norm;
};

class Bart final : public Seq2SeqLM {
 public:
  Bart(const Config& config, const nn::Weights& w) : variant_(variant_of(config)) {
    type_ = config.model_type();
    source_vocab_ = config.positive("vocab_size");
    // Marian with separate vocabularies: the decoder's table and head span the target's.
    const bool shared = config.boolean("share_encoder_decoder_embeddings", true);
    vocab_ = shared || !config.has("decoder_vocab_size") ? source_vocab_
                                                         : config.positive("decoder_vocab_size");
    pad_ = config.integer("pad_token_id", 1);
    start_id_ = config.integer("decoder_start_token_id", pad_);
    max_positions_ = config.positive("max_position_embeddings");
    const int64_t hidden = config.positive("d_model");
    const nn::Activation activation =
        nn::parse_activation(config.string("activation_function", "gelu"), "activation_function");
    const float scale =
        config.boolean("scale_embedding", false) ? std::sqrt(static_cast<float>(hidden)) : 1.0f;
    if (pad_ < 0 || pad_ >= std::min(vocab_, source_vocab_))
      config.fail("pad_token_id is outside the vocabulary");

    // Hub checkpoints name the shared table model.shared; some carry per-stack copies instead,
    // and with separate vocabularies those are all there is.
    const auto table = [&](const std::string& stack, int64_t rows) {
      const std::string own = "model." + stack + ".embed_tokens";
      return nn::Embedding::load(w, !shared || w.contains(own + ".weight") ? own : "model.shared",
                                 rows, hidden);
    };
    const auto embeddings = [&](const std::string& stack, int64_t rows) {
      Embeddings e;
      e.tokens = table(stack, rows);
      e.scale = scale;
      const std::string p = "model." + stack + ".";
      switch (variant_.positions) {
        case Positions::Learned:
          e.positions =
              w.get_f32(p + "embed_positions.weight", {max_positions_ + kLearnedOffset, hidden});
          break;
        case Positions::Marian:
          e.positions = marian_table(max_positions_, hidden);
          break;
        case Positions::Fairseq:
          if (pad_ + 1 + max_positions_ > std::numeric_limits<int32_t>::max())
            config.fail("max_position_embeddings is too large");
          e.positions = fairseq_table(max_positions_ + pad_ + 1, hidden, pad_);
          break;
      }
      if (variant_.embedding_norm)
        e.embedding_norm = load_norm(w, p + "layernorm_embedding", hidden);
      if (variant_.final_norms) e.final_norm = load_norm(w, p + "layer_norm", hidden);
      return e;
    };
    encoder_embed_ = embeddings("encoder", source_vocab_);
    decoder_embed_ = embeddings("decoder", vocab_);

    const auto stack_shape = [&](const char* prefix) {
      StackShape s{hidden, config.positive(std::string(prefix) + "_attention_heads"),
                   config.positive(std::string(prefix) + "_ffn_dim")};
      if (hidden % s.heads != 0)
        config.fail(std::string(prefix) + "_attention_heads must divide d_model");
      return s;
    };
    const auto attention = [](const StackShape& s) {
      const int64_t head_dim = s.hidden / s.heads;
      return nn::AttentionShape{s.heads, head_dim,
                                static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)))};
    };
    const StackShape es = stack_shape("encoder");
    for (int64_t i = 0, n = config.positive("encoder_layers"); i < n; ++i) {
      const std::string p = "model.encoder.layers." + std::to_string(i) + ".";
      nn::Seq2SeqEncoderLayer l;
      l.attention_norm = load_norm(w, p + "self_attn_layer_norm", hidden);
      l.qkv = load_qkv(w, p + "self_attn.", hidden);
      l.attention_out = nn::Linear::load(w, p + "self_attn.out_proj", hidden, hidden, true);
      l.mlp_norm = load_norm(w, p + "final_layer_norm", hidden);
      l.mlp = load_mlp(w, p, es, activation);
      l.shape = attention(es);
      l.post_norm = variant_.post_norm;
      encoder_.push_back(std::move(l));
    }
    const StackShape ds = stack_shape("decoder");
    for (int64_t i = 0, n = config.positive("decoder_layers"); i < n; ++i) {
      const std::string p = "model.decoder.layers." + std::to_string(i) + ".";
      nn::Seq2SeqDecoderLayer l;
      l.self_norm = load_norm(w, p + "self_attn_layer_norm", hidden);
      l.qkv = load_qkv(w, p + "self_attn.", hidden);
      l.self_out = nn::Linear::load(w, p + "self_attn.out_proj", hidden, hidden, true);
      l.cross_norm = load_norm(w, p + "encoder_attn_layer_norm", hidden);
      l.cross_query = nn::Linear::load(w, p + "encoder_attn.q_proj", hidden, hidden, true);
      l.cross_kv =
          nn::Linear::fuse({nn::Linear::load(w, p + "encoder_attn.k_proj", hidden, hidden, true),
                            nn::Linear::load(w, p + "encoder_attn.v_proj", hidden, hidden, true)});
      l.cross_out = nn::Linear::load(w, p + "encoder_attn.out_proj", hidden, hidden, true);
      l.mlp_norm = load_norm(w, p + "final_layer_norm", hidden);
      l.mlp = load_mlp(w, p, ds, activation);
      l.shape = attention(ds);
      l.post_norm = variant_.post_norm;
      decoder_.push_back(std::move(l));
    }
    head_.weight = w.contains("lm_head.weight") ? w.get("lm_head.weight", {vocab_, hidden})
                                                : decoder_embed_.tokens.weight;
    // Packed, as T5's: a step's few rows (the beams) then take the small-M kernel on the pool,
    // where OpenBLAS re-packed the whole head on every call (60% of a batch-1 beam search).
    head_.packed = ops::pack_linear_weight(head_.weight);
    if (w.contains("final_logits_bias"))
      head_.bias = w.get_f32("final_logits_bias", {1, vocab_}).view({vocab_});
  }

  int64_t vocab_size() const override { return vocab_; }
  int64_t source_vocab_size() const override { return source_vocab_; }
  int64_t max_source_tokens() const override { return max_positions_; }
  int64_t decoder_start_token_id() const override { return start_id_; }

  // On the tokens alone, packed (positions are those of the padded rows).
  Tensor encode(const Tensor& ids, const Tensor& mask) const override {
    const nn::PackedTokens tokens = pack_encoder_input(type_, ids, mask);
    Tensor x = nn::gather_tokens(embed(encoder_embed_, ids, 0), tokens);
    for (const nn::Seq2SeqEncoderLayer& l : encoder_) x = l(x, tokens.offsets, Tensor());
    if (encoder_embed_.final_norm) x = (*encoder_embed_.final_norm)(x);
    return nn::scatter_tokens(x, tokens);
  }

  Seq2SeqCache new_cache(const Tensor& encoded, const Tensor& mask,
                         int64_t capacity) const override {
    return new_decoder_cache(decoder_, encoded, mask, capacity);
  }

  Tensor decode(const Tensor& ids, Seq2SeqCache& cache) const override {
    check_decode_input(type_, ids, cache, decoder_.size());
    const int64_t past = cache.self.length;
    Tensor x = embed(decoder_embed_, ids, past);
    for (size_t i = 0; i < decoder_.size(); ++i) {
      x = decoder_[i](x, Tensor(), cache.self.layers[i], past, cache.cross.layers[i],
                      cache.cross.mask);
    }
    cache.self.length += ids.dim(1);
    if (decoder_embed_.final_norm) x = (*decoder_embed_.final_norm)(x);
    return head_(x);
  }

 private:
  // Position-table rows of ids [B, T] that follow `past` tokens.
  Tensor position_rows(const Tensor& ids, int64_t past) const {
    const int64_t batch = ids.dim(0), tokens = ids.dim(1);
    if (past + tokens > max_positions_) {
      throw Error(type_ + ": " + std::to_string(past + tokens) +
                  " tokens exceed max_position_embeddings (" + std::to_string(max_positions_) +
                  ")");
    }
    std::vector<int64_t> rows(static_cast<size_t>(batch * tokens));
    const Tensor c = ids.contiguous();
    const auto* id = c.data_as<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      int64_t counted = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        int64_t& r = rows[static_cast<size_t>(b * tokens + t)];
        switch (variant_.positions) {
          case Positions::Learned:
            r = past + t + kLearnedOffset;
            break;
          case Positions::Marian:
            r = past + t;
            break;
          case Positions::Fairseq:
            r = id[b * tokens + t] == pad_ ? pad_ : pad_ + past + ++counted;
            break;
        }
      }
    }
    return Tensor::from_values<int64_t>(DType::I64, {batch, tokens},
                                        std::span<const int64_t>(rows));
  }

  Tensor embed(const Embeddings& e, const Tensor& ids, int64_t past) const {
    Tensor x = e.tokens(ids);
    if (e.scale != 1.0f) x = ops::mul(x, ops::scalar(e.scale));
    x = ops::add(x, ops::embedding(e.positions, position_rows(ids, past)));
    return e.embedding_norm ? (*e.embedding_norm)(x) : x;
  }

  Variant variant_;
  std::string type_;
  int64_t vocab_ = 0, source_vocab_ = 0, pad_ = 0, start_id_ = 0, max_positions_ = 0;
  Embeddings encoder_embed_, decoder_embed_;
  std::vector<nn::Seq2SeqEncoderLayer> encoder_;
  std::vector<nn::Seq2SeqDecoderLayer> decoder_;
  nn::Linear head_;
};

}  // namespace

std::unique_ptr<Seq2SeqLM> load_bart(const Config& config, const nn::Weights& weights) {
  return std::make_unique<Bart>(config, weights);
}

}  // namespace ember::models
