// GPT-2: learned positions, LayerNorm, fused Conv1D projections stored [in, out] (transposed
// once at load), tanh-GELU MLP, output head tied to the token embeddings.
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/ops.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/nn/encoder_layer.hpp"

namespace ember::models {
namespace {

class Gpt2 final : public CausalLM {
 public:
  Gpt2(const Config& config, const nn::Weights& checkpoint) {
    hidden_ = config.positive("n_embd");
    const int64_t heads = config.positive("n_head");
    if (hidden_ % heads != 0) {
      config.fail("n_embd " + std::to_string(hidden_) + " is not a multiple of n_head " +
                  std::to_string(heads));
    }
    const int64_t layers = config.positive("n_layer");
    const int64_t inner = config.integer("n_inner", 4 * hidden_);
    vocab_ = config.positive("vocab_size");
    max_positions_ = config.positive("n_positions");
    const double eps = config.number("layer_norm_epsilon", 1e-5);
    const nn::Activation act = nn::parse_activation(
        config.string("activation_function", "gelu_new"), "activation_function");
    if (config.boolean("scale_attn_by_inverse_layer_idx", false) ||
        !config.boolean("scale_attn_weights", true)) {
      config.fail(
          "scale_attn_by_inverse_layer_idx and scale_attn_weights = false are not supported");
    }
    const auto prefix = checkpoint.find_prefix("wte.weight", {"", "transformer."});
    if (!prefix) {
      throw Error("missing weight 'wte.weight' (with or without a 'transformer.' prefix) in " +
                  checkpoint.source().description());
    }
    const nn::Weights w = checkpoint.with_prefix(*prefix);
    tokens_ = nn::Embedding::load(w, "wte", vocab_, hidden_);
    positions_ = nn::Embedding::load(w, "wpe", max_positions_, hidden_);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = "h." + std::to_string(i) + ".";
      nn::DecoderLayer layer;
      layer.attention_norm.norm = nn::LayerNorm::load(w, p + "ln_1", hidden_, eps);
      layer.qkv = nn::Linear::load_transposed(w, p + "attn.c_attn", hidden_, 3 * hidden_);
      layer.attention_out = nn::Linear::load_transposed(w, p + "attn.c_proj", hidden_, hidden_);
      layer.mlp_norm.norm = nn::LayerNorm::load(w, p + "ln_2", hidden_, eps);
      layer.mlp_up = nn::Linear::load_transposed(w, p + "mlp.c_fc", hidden_, inner);
      layer.mlp_down = nn::Linear::load_transposed(w, p + "mlp.c_proj", inner, hidden_);
      layer.activation = act;
      layer.heads = layer.kv_heads = heads;
      layer.head_dim = hidden_ / heads;
      stack_.layers.push_back(std::move(layer));
    }
    stack_.final_norm.norm = nn::LayerNorm::load(w, "ln_f", hidden_, eps);
    // The head is tied to wte; a checkpoint's lm_head.weight, when present, is the same matrix.
    stack_.head = checkpoint.contains("lm_head.weight")
                      ? checkpoint.get("lm_head.weight", {vocab_, hidden_})
                      : tokens_.weight;
  }

  int64_t vocab_size() const override { return vocab_; }
  int64_t context_length() const override { return max_positions_; }
  int64_t max_tokens() const override { return max_positions_; }

  KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return stack_.new_cache(batch, capacity, kv_cache_dtype());
  }

  Tensor forward(const Tensor& ids, std::span<const int64_t> positions, const Tensor& key_mask,
                 KvCache& cache, bool all_logits) override {
    const int64_t batch = ids.dim(0), tokens = ids.dim(1);
    for (int64_t p : positions) {
      if (p < 0 || p >= max_positions_) {
        throw Error("position " + std::to_string(p) + " is outside the model's context of " +
                    std::to_string(max_positions_) + " tokens");
      }
    }
    Tensor& x = stack_.input(cache, batch, tokens, hidden_);
    tokens_.into(ids, x);
    const std::vector<int64_t> pos(positions.begin(), positions.end());
    nn::add_(x, positions_(Tensor::from_values<int64_t>(DType::I64, {batch, tokens}, pos)));
    return stack_(x, nullptr, key_mask, cache, all_logits);
  }

 private:
  int64_t hidden_ = 0, vocab_ = 0, max_positions_ = 0;
  nn::Embedding tokens_, positions_;
  nn::DecoderStack stack_;
};

}  // namespace

std::unique_ptr<CausalLM> load_gpt2(const Config& config, const nn::Weights& weights) {
  return std::make_unique<Gpt2>(config, weights);
}

}  // namespace ember::models
