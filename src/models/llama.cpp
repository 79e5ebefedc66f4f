// The Llama family: Llama 2 and 3, Mistral (sliding window), Qwen2 (q/k/v biases), SmolLM.
// RMSNorm, rotary embeddings with config-declared scaling, grouped-query attention, SwiGLU, tied
// or untied output head. Hugging Face checkpoints rotate half-split pairs; the same file serves
// GGML's interleaved layout through RotaryEmbedding's layout.
#include <limits>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"
#include "ember/models/causal_lm.hpp"

namespace ember::models {
namespace {

// Rotary parameters from either config dialect: transformers 5's `rope_parameters` object, or the
// Hub's `rope_theta` + `rope_scaling`.
nn::RopeParameters read_rope(const Config& config, int64_t head_dim) {
  nn::RopeParameters p;
  p.max_positions = config.positive("max_position_embeddings");
  nlohmann::json params = nlohmann::json::object();
  if (config.has("rope_parameters")) {
    params = config.json()["rope_parameters"];
    if (!params.is_object()) config.fail("'rope_parameters' is not an object");
  } else if (config.has("rope_scaling")) {
    params = config.json()["rope_scaling"];
    if (!params.is_object()) config.fail("'rope_scaling' is not an object");
  }
  const Config rope(params, config.source() + " (rope parameters)");
  p.theta = rope.number("rope_theta", config.number("rope_theta", 10000.0));
  p.type = rope.string("rope_type", rope.string("type", "default"));
  if (p.type != "default" && p.type != "linear" && p.type != "dynamic" && p.type != "llama3" &&
      p.type != "yarn") {
    rope.fail("unsupported rope type '" + p.type +
              "' (supported: default, linear, dynamic, llama3, yarn)");
  }
  const double partial =
      rope.number("partial_rotary_factor", config.number("partial_rotary_factor", 1.0));
  // The reference's Llama ignores partial_rotary_factor for the default type.
  p.rotary_dim = p.type == "default"
                     ? head_dim
                     : static_cast<int64_t>(static_cast<double>(head_dim) * partial);
  if (p.type == "default") return p;
  p.original_max_positions =
      rope.integer("original_max_position_embeddings",
                   config.integer("original_max_position_embeddings", p.max_positions));
  if (p.type == "yarn") {
    p.factor = rope.number("factor", static_cast<double>(p.max_positions) /
                                         static_cast<double>(p.original_max_positions));
    p.attention_factor = rope.number("attention_factor", 0.0);
    p.mscale = rope.number("mscale", 0.0);
    p.mscale_all_dim = rope.number("mscale_all_dim", 0.0);
    p.beta_fast = rope.number("beta_fast", 32.0);
    p.beta_slow = rope.number("beta_slow", 1.0);
    p.truncate = rope.boolean("truncate", true);
  } else {
    p.factor = rope.number("factor");
  }
  if (p.type == "llama3") {
    p.low_freq_factor = rope.number("low_freq_factor");
    p.high_freq_factor = rope.number("high_freq_factor");
  }
  if (p.factor <= 0) rope.fail("'factor' must be positive");
  return p;
}

class Llama final : public CausalLM {
 public:
  Llama(const Config& config, const nn::Weights& checkpoint, ops::RopeLayout layout) {
    const std::string type = config.model_type();
    const int64_t hidden = config.positive("hidden_size");
    const int64_t heads = config.positive("num_attention_heads");
    const int64_t kv_heads = config.integer("num_key_value_heads", heads);
    if (kv_heads < 1 || heads % kv_heads != 0) {
      config.fail("num_attention_heads " + std::to_string(heads) +
                  " is not a multiple of num_key_value_heads " + std::to_string(kv_heads));
    }
    const int64_t head_dim = config.integer("head_dim", hidden / heads);
    if (head_dim < 2 || (!config.has("head_dim") && hidden % heads != 0)) {
      config.fail("cannot derive head_dim from hidden_size " + std::to_string(hidden) +
                  " and num_attention_heads " + std::to_string(heads));
    }
    const int64_t layers = config.positive("num_hidden_layers");
    const int64_t inner = config.positive("intermediate_size");
    vocab_ = config.positive("vocab_size");
    max_positions_ = config.positive("max_position_embeddings");
    const double eps = config.number("rms_norm_eps", 1e-6);
    const nn::Activation act =
        nn::parse_activation(config.string("hidden_act", "silu"), "hidden_act");
    const bool qkv_bias = type == "qwen2" || config.boolean("attention_bias", false);
    const bool out_bias = type != "qwen2" && config.boolean("attention_bias", false);
    const bool mlp_bias = config.boolean("mlp_bias", false);
    rope_ = nn::RotaryEmbedding(read_rope(config, head_dim), layout);

    // Sliding windows: transformers 5 lists each layer's kind; older configs set sliding_window
    // for every layer (Mistral) or only from max_window_layers on when use_sliding_window (Qwen2).
    std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
    const int64_t window = config.integer("sliding_window", 0);
    if (config.has("layer_types")) {
      const nlohmann::json& kinds = config.json()["layer_types"];
      if (!kinds.is_array() || static_cast<int64_t>(kinds.size()) != layers)
        config.fail("'layer_types' must list num_hidden_layers entries");
      for (int64_t i = 0; i < layers; ++i) {
        const nlohmann::json& kind = kinds[static_cast<size_t>(i)];
        if (kind == "sliding_attention") {
          if (window < 1)
            config.fail("layer_types asks for sliding_attention without sliding_window");
          windows[static_cast<size_t>(i)] = window;
        } else if (kind != "full_attention") {
          config.fail("unsupported layer type " + kind.dump());
        }
      }
    } else if (type == "qwen2") {
      if (config.boolean("use_sliding_window", false) && window > 0) {
        for (int64_t i = config.integer("max_window_layers", 0); i < layers; ++i)
          windows[static_cast<size_t>(i)] = window;
      }
    } else if (window > 0) {
      std::fill(windows.begin(), windows.end(), window);
    }

    const auto prefix = checkpoint.find_prefix("embed_tokens.weight", {"model.", ""});
    if (!prefix) {
      throw Error("missing weight 'model.embed_tokens.weight' in " +
                  checkpoint.source().description());
    }
    const nn::Weights w = checkpoint.with_prefix(*prefix);
    tokens_ = nn::Embedding::load(w, "embed_tokens", vocab_, hidden);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      nn::DecoderLayer layer;
      layer.attention_norm.norm = nn::RmsNorm::load(w, p + "input_layernorm", hidden, eps);
      layer.qkv = nn::Linear::fuse({
          nn::Linear::load(w, p + "self_attn.q_proj", hidden, heads * head_dim, qkv_bias),
          nn::Linear::load(w, p + "self_attn.k_proj", hidden, kv_heads * head_dim, qkv_bias),
          nn::Linear::load(w, p + "self_attn.v_proj", hidden, kv_heads * head_dim, qkv_bias),
      });
      layer.attention_out =
          nn::Linear::load(w, p + "self_attn.o_proj", heads * head_dim, hidden, out_bias);
      layer.mlp_norm.norm = nn::RmsNorm::load(w, p + "post_attention_layernorm", hidden, eps);
      layer.gated = true;
      layer.mlp_up = nn::Linear::fuse({
          nn::Linear::load(w, p + "mlp.gate_proj", hidden, inner, mlp_bias),
          nn::Linear::load(w, p + "mlp.up_proj", hidden, inner, mlp_bias),
      });
      layer.mlp_down = nn::Linear::load(w, p + "mlp.down_proj", inner, hidden, mlp_bias);
      layer.activation = act;
      layer.heads = heads;
      layer.kv_heads = kv_heads;
      layer.head_dim = head_dim;
      layer.sliding_window = windows[static_cast<size_t>(i)];
      stack_.layers.push_back(std::move(layer));
    }
    stack_.final_norm.norm = nn::RmsNorm::load(w, "norm", hidden, eps);
    if (checkpoint.contains("lm_head.weight")) {
      stack_.head = checkpoint.get("lm_head.weight", {vocab_, hidden});
    } else if (config.boolean("tie_word_embeddings", false)) {
      stack_.head = tokens_.weight;
    } else {
      throw Error("missing weight 'lm_head.weight' in " + checkpoint.source().description() +
                  " (and tie_word_embeddings is not set)");
    }
  }

  int64_t vocab_size() const override { return vocab_; }
  int64_t context_length() const override { return max_positions_; }
  int64_t max_tokens() const override { return std::numeric_limits<int64_t>::max(); }

  KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return stack_.new_cache(batch, capacity, kv_cache_dtype());
  }

  Tensor forward(const Tensor& ids, std::span<const int64_t> positions, const Tensor& key_mask,
                 KvCache& cache, bool all_logits) override {
    for (int64_t p : positions)
      if (p < 0) throw Error("negative position " + std::to_string(p));
    rope_.prepare(positions);
    if (ids.rank() != 2)
      throw Error("llama: ids must be [batch, tokens], got " + shape_to_string(ids.shape()));
    Tensor& x = stack_.input(cache, ids.dim(0), ids.dim(1), tokens_.weight.dim(1));
    tokens_.into(ids, x);
    return stack_(x, &rope_, key_mask, cache, all_logits);
  }

 protected:
  void move_tokens(KvCache& cache, int64_t start, int64_t count,
                   std::span<const int64_t> tokens) override {
    // Dynamic frequencies depend on the sequence length: only a recomputation is exact.
    if (!rope_.shifts_exactly()) {
      CausalLM::move_tokens(cache, start, count, tokens);
      return;
    }
    // Positions enter only through the rotation of queries and keys, so values stay as they are
    // and the moved keys turn back by `count` positions (llama.cpp's K-shift).
    nn::discard_cache_rows(cache, start, count);
    const int64_t moved = cache.length - start;
    if (moved == 0) return;
    for (nn::LayerCache& layer : cache.layers) {
      Tensor keys = layer.keys.narrow(1, start, moved);
      if (keys.dtype() == DType::F32) {
        rope_.rotate_by(keys, -count);
        continue;
      }
      // An F16 cache: rotate in F32 and round back, as ggml's rope does on an F16 tensor.
      Tensor rotated = to_f32(keys);
      rope_.rotate_by(rotated, -count);
      ops::copy_into(keys, rotated);
    }
  }

 private:
  int64_t vocab_ = 0, max_positions_ = 0;
  nn::RotaryEmbedding rope_;
  nn::Embedding tokens_;
  nn::DecoderStack stack_;
};

}  // namespace

std::unique_ptr<CausalLM> load_llama(const Config& config, const nn::Weights& weights) {
  return std::make_unique<Llama>(config, weights, weights.source().rope_layout());
}

}  // namespace ember::models
