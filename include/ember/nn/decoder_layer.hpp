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
  void into(const Tensor& x, Tensor& out) const;  // contiguous F32 x and out
};

// One layer's slice of the KV cache: keys (after rotation) and values
// [B, capacity, kv_heads, head_dim], F32 or F16 (CausalLM::kv_cache_dtype).
struct LayerCache {
  Tensor keys, values;
};

// The activations of one forward pass through a DecoderStack, all contiguous F32 and sized for
// `batch` x `tokens` rows, kept with the KV cache so that decode steps (the same shape every
// time) reuse them instead of allocating, as gemma.cpp's Activations do. They are reallocated
// only when the shape changes (DecoderStack sizes it).
struct DecoderScratch {
  int64_t batch = 0, tokens = 0;
  Tensor residual;  // [B, T, hidden]: the residual stream, updated in place by every layer
  Tensor normed;    // [B, T, hidden]: norm output feeding a projection
  Tensor branch;    // [B, T, hidden]: attention or MLP output before the residual add
  Tensor qkv;       // [B, T, (heads + 2 kv_heads) head_dim]
  Tensor context;   // [B, T, heads head_dim]: attention output
  Tensor up;        // [B, T, mlp_up out]: the MLP's (fused gate and) up projection; a gated
                    // MLP overwrites its first half with act(gate) * up (gated_activation_)
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

  // s.residual [B, T, hidden] holds T new tokens placed after `past` cached ones and is replaced
  // by the layer's output; the other buffers of `s` are scratch. `rope`, when given, is
  // prepared for their positions. key_mask [B, past + T] (0 = padding) or undefined. Writes the
  // new keys and values into the cache.
  void operator()(DecoderScratch& s, const RotaryEmbedding* rope, const Tensor& key_mask,
                  LayerCache& cache, int64_t past) const;
};

// The KV cache of a stack of decoder layers.
struct KvCache {
  std::vector<LayerCache> layers;
  int64_t length = 0;  // tokens held (the same for every row; padding fills the gaps)
  DecoderScratch scratch;
  int64_t capacity() const { return layers.empty() ? 0 : layers[0].keys.dim(1); }
};

// Drops cached tokens [start, start + count) of every row: the later ones move down to `start`
// and the length shrinks by `count`. Their keys still encode their old positions; the model
// decides how to move them (CausalLM::discard_tokens). Throws ember::Error for a range outside
// the cache.
void discard_cache_rows(KvCache& cache, int64_t start, int64_t count);

// The body every decoder-only model shares once its tokens are embedded: the layers, the final
// norm and the output head.
struct DecoderStack {
  std::vector<DecoderLayer> layers;
  Norm final_norm;
  Tensor head;  // [vocab, hidden], any dtype linear dispatches on (often the tied embeddings)

  // `dtype`: F32, or F16 (llama.cpp's default cache, and through ops::attention its arithmetic).
  KvCache new_cache(int64_t batch, int64_t capacity, DType dtype) const;
  // The cache's residual rows [B, T, hidden] for a forward pass of that shape: a model embeds
  // its tokens there and passes them to operator(), which then copies nothing.
  Tensor& input(KvCache& cache, int64_t batch, int64_t tokens, int64_t hidden) const;
  // x [B, T, hidden] embedded tokens placed after the cache's (rope, when given, prepared for
  // their positions); appends them to the cache and returns the logits of every position
  // [B, T, V], or of the last one [B, 1, V].
  Tensor operator()(Tensor x, const RotaryEmbedding* rope, const Tensor& key_mask, KvCache& cache,
                    bool all_logits) const;
};

}  // namespace ember::nn
