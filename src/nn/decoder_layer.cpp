#include "ember/nn/decoder_layer.hpp"

#include <cmath>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"
#include "ember/nn/encoder_layer.hpp"

namespace ember::nn {
namespace {

// act(gate) * up for rows of the fused [gate | up] projection: [rows, 2I] -> [rows, I].
Tensor gated_activation(const Tensor& gate_up, Activation act) {
  const int64_t inner = gate_up.dim(-1) / 2;
  const int64_t rows = gate_up.numel() / gate_up.dim(-1);
  Tensor gate = gate_up.reshape({rows, 2 * inner}).narrow(1, 0, inner).contiguous();
  activate_(gate, act);
  Shape out_shape = gate_up.shape();
  out_shape.back() = inner;
  float* g = gate.mutable_data_as<float>();
  const float* gu = gate_up.data_as<float>();
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) {
                   kernels::binary_f32(kernels::BinaryOp::Mul, g + r * inner,
                                       gu + r * 2 * inner + inner, g + r * inner,
                                       static_cast<size_t>(inner));
                 }
               });
  return gate.view(out_shape);
}

}  // namespace

Tensor Norm::operator()(const Tensor& x) const {
  return std::visit([&](const auto& n) { return n(x); }, norm);
}

Tensor DecoderLayer::operator()(const Tensor& x, const RotaryEmbedding* rope,
                                const Tensor& key_mask, LayerCache& cache, int64_t past) const {
  const int64_t batch = x.dim(0), tokens = x.dim(1);
  if (past + tokens > cache.keys.dim(1)) {
    throw Error("decoder: " + std::to_string(past + tokens) +
                " tokens exceed the KV cache's capacity of " + std::to_string(cache.keys.dim(1)));
  }
  const Tensor h = attention_norm(x);
  const Tensor projected = qkv(h).view({batch, tokens, heads + 2 * kv_heads, head_dim});
  Tensor q = projected.narrow(2, 0, heads);
  Tensor k = projected.narrow(2, heads, kv_heads);
  const Tensor v = projected.narrow(2, heads + kv_heads, kv_heads);
  if (rope != nullptr) {
    rope->apply(q);
    rope->apply(k);
  }
  ops::copy_into(cache.keys.narrow(1, past, tokens), k);
  ops::copy_into(cache.values.narrow(1, past, tokens), v);
  ops::AttentionMask mask;
  mask.causal = true;
  mask.sliding_window = sliding_window;
  mask.key_mask = key_mask;
  const Tensor context = ops::attention(q, cache.keys.narrow(1, 0, past + tokens),
                                        cache.values.narrow(1, 0, past + tokens), mask,
                                        1.0f / std::sqrt(static_cast<float>(head_dim)));
  Tensor attended = attention_out(context.view({batch, tokens, heads * head_dim}));
  add_(attended, x);
  const Tensor h2 = mlp_norm(attended);
  Tensor up = mlp_up(h2);
  if (gated) {
    up = gated_activation(up, activation);
  } else {
    activate_(up, activation);
  }
  Tensor down = mlp_down(up);
  add_(down, attended);
  return down;
}

KvCache DecoderStack::new_cache(int64_t batch, int64_t capacity) const {
  KvCache cache;
  for (const DecoderLayer& l : layers) {
    cache.layers.push_back({Tensor::zeros(DType::F32, {batch, capacity, l.kv_heads, l.head_dim}),
                            Tensor::zeros(DType::F32, {batch, capacity, l.kv_heads, l.head_dim})});
  }
  return cache;
}

Tensor DecoderStack::operator()(Tensor x, const RotaryEmbedding* rope, const Tensor& key_mask,
                                KvCache& cache, bool all_logits) const {
  const int64_t tokens = x.dim(1);
  if (cache.layers.size() != layers.size()) {
    throw Error("decoder: the KV cache has " + std::to_string(cache.layers.size()) +
                " layers, the model " + std::to_string(layers.size()));
  }
  for (size_t i = 0; i < layers.size(); ++i)
    x = layers[i](x, rope, key_mask, cache.layers[i], cache.length);
  cache.length += tokens;
  if (!all_logits) x = x.narrow(1, tokens - 1, 1).contiguous();
  return ops::linear(final_norm(x), head);
}

}  // namespace ember::nn
