#pragma once
// The pre-norm decoder layer of GPT-2 and the Llama family (Mistral, Qwen2, SmolLM): norm,
// self-attention over a KV cache (rotary or not, grouped-query, causal, optionally a sliding
// window), residual; norm, MLP (plain or gated as SwiGLU), residual.
#include <variant>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/nn/layers.hpp"
#include "ember/nn/rope.hpp"

namespace ember::nn {

struct Norm {
  std::variant<LayerNorm, RmsNorm> norm;
  Tensor operator()(const Tensor& x) const;
};

// One layer's slice of the KV cache: keys and values [B, capacity, kv_heads, head_dim] F32.
struct LayerCache {
  Tensor keys, values;
};

struct DecoderLayer {
  Norm attention_norm;
  Linear qkv;  // fused query, key, value projections: [(heads + 2 * kv_heads) * head_dim, hidden]
  Linear attention_out;
  Norm mlp_norm;
  // Gated: mlp_up is the fused [gate; up] projection and the MLP computes
  // down(act(gate) * up); otherwise down(act(up)).
  bool gated = false;
  Linear mlp_up;
  Linear mlp_down;
  Activation activation = Activation::Silu;
  int64_t heads = 1, kv_heads = 1, head_dim = 1;
  int64_t sliding_window = 0;  // 0: attend to the whole past

  // x [B, T, hidden] for T new tokens placed after `past` cached ones; `rope`, when given, is
  // prepared for their positions. key_mask [B, past + T] (0 = padding) or undefined. Writes the
  // new keys and values into the cache and returns the layer's output [B, T, hidden].
  Tensor operator()(const Tensor& x, const RotaryEmbedding* rope, const Tensor& key_mask,
                    LayerCache& cache, int64_t past) const;
};

// The KV cache of a stack of decoder layers.
struct KvCache {
  std::vector<LayerCache> layers;
  int64_t length = 0;  // tokens held (the same for every row; padding fills the gaps)
  int64_t capacity() const { return layers.empty() ? 0 : layers[0].keys.dim(1); }
};

// The body every decoder-only model shares once its tokens are embedded: the layers, the final
// norm and the output head.
struct DecoderStack {
  std::vector<DecoderLayer> layers;
  Norm final_norm;
  Tensor head;  // [vocab, hidden], any dtype linear dispatches on (often the tied embeddings)

  KvCache new_cache(int64_t batch, int64_t capacity) const;
  // x [B, T, hidden] embedded tokens placed after the cache's (rope, when given, prepared for
  // their positions); appends them to the cache and returns the logits of every position
  // [B, T, V], or of the last one [B, 1, V].
  Tensor operator()(Tensor x, const RotaryEmbedding* rope, const Tensor& key_mask, KvCache& cache,
                    bool all_logits) const;
};

}  // namespace ember::nn
