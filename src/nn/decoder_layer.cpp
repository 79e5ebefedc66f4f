#include "ember/nn/decoder_layer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ember/base/error.hpp"
#include "ember/core/ops.hpp"
#include "ember/nn/encoder_layer.hpp"

namespace ember::nn {
namespace {

// (Re)allocates `t` as [batch, tokens, width] F32 unless it already is.
void ensure_rows(Tensor& t, int64_t batch, int64_t tokens, int64_t width) {
  const Shape shape{batch, tokens, width};
  if (!t.defined() || t.shape() != shape) t = Tensor::empty(DType::F32, shape);
}

// Sized for the widest layer; every architecture here has layers of one shape, and a layer that
// differed would be refused by linear_into's size check, not overrun.
void size_scratch(const DecoderStack& stack, int64_t batch, int64_t tokens, int64_t hidden,
                  DecoderScratch& s) {
  if (s.batch == batch && s.tokens == tokens && s.residual.defined() &&
      s.residual.dim(2) == hidden) {
    return;
  }
  int64_t qkv = 0, context = 0, up = 0;
  for (const DecoderLayer& l : stack.layers) {
    qkv = std::max(qkv, (l.heads + 2 * l.kv_heads) * l.head_dim);
    context = std::max(context, l.heads * l.head_dim);
    up = std::max(up, l.mlp_up.out_features());
  }
  s.batch = batch;
  s.tokens = tokens;
  ensure_rows(s.residual, batch, tokens, hidden);
  ensure_rows(s.normed, batch, tokens, hidden);
  ensure_rows(s.branch, batch, tokens, hidden);
  ensure_rows(s.qkv, batch, tokens, qkv);
  ensure_rows(s.context, batch, tokens, context);
  ensure_rows(s.up, batch, tokens, up);
}

}  // namespace

Tensor Norm::operator()(const Tensor& x) const {
  return std::visit([&](const auto& n) { return n(x); }, norm);
}

void Norm::into(const Tensor& x, Tensor& out) const {
  if (const auto* ln = std::get_if<LayerNorm>(&norm)) {
    ops::layer_norm_into(x, ln->weight, ln->bias, ln->eps, out);
  } else {
    const auto& rms = std::get<RmsNorm>(norm);
    ops::rms_norm_into(x, rms.weight, rms.eps, out);
  }
}

void DecoderLayer::operator()(DecoderScratch& s, const RotaryEmbedding* rope,
                              const Tensor& key_mask, LayerCache& cache, int64_t past) const {
  const int64_t batch = s.batch, tokens = s.tokens;
  if (past + tokens > cache.keys.dim(1)) {
    throw Error("decoder: " + std::to_string(past + tokens) +
                " tokens exceed the KV cache's capacity of " + std::to_string(cache.keys.dim(1)));
  }
  attention_norm.into(s.residual, s.normed);
  qkv.into(s.normed, s.qkv);
  const Tensor projected = s.qkv.view({batch, tokens, heads + 2 * kv_heads, head_dim});
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
  ops::attention_into(q, cache.keys.narrow(1, 0, past + tokens),
                      cache.values.narrow(1, 0, past + tokens), mask,
                      1.0f / std::sqrt(static_cast<float>(head_dim)), s.context);
  attention_out.into(s.context, s.branch);
  add_(s.residual, s.branch);
  mlp_norm.into(s.residual, s.normed);
  mlp_up.into(s.normed, s.up);
  if (gated) {
    mlp_down.into(gated_activation_(s.up, activation), s.branch);
  } else {
    activate_(s.up, activation);
    mlp_down.into(s.up, s.branch);
  }
  add_(s.residual, s.branch);
}

KvCache DecoderStack::new_cache(int64_t batch, int64_t capacity, DType dtype) const {
  KvCache cache;
  for (const DecoderLayer& l : layers) {
    const Shape shape{batch, capacity, l.kv_heads, l.head_dim};
    cache.layers.push_back({Tensor::zeros(dtype, shape), Tensor::zeros(dtype, shape)});
  }
  return cache;
}

void discard_cache_rows(KvCache& cache, int64_t start, int64_t count) {
  if (start < 0 || count < 0 || start + count > cache.length) {
    throw Error("KV cache: cannot discard tokens [" + std::to_string(start) + ", " +
                std::to_string(start + count) + ") of " + std::to_string(cache.length));
  }
  const int64_t moved = cache.length - start - count;
  for (LayerCache& layer : cache.layers) {
    for (Tensor* t : {&layer.keys, &layer.values}) {
      // [B, capacity, kv_heads, head_dim], contiguous as new_cache made it: a token is one run of
      // `row` bytes, and the kept tail of a sequence moves down as one overlapping block.
      const auto row = static_cast<int64_t>(dtype_size(t->dtype())) * t->dim(2) * t->dim(3);
      const int64_t per_sequence = t->dim(1) * row;
      std::byte* data = t->mutable_data();
      for (int64_t b = 0; b < t->dim(0); ++b) {
        std::byte* seq = data + b * per_sequence;
        std::memmove(seq + start * row, seq + (start + count) * row,
                     static_cast<size_t>(moved * row));
      }
    }
  }
  cache.length -= count;
}

Tensor& DecoderStack::input(KvCache& cache, int64_t batch, int64_t tokens, int64_t hidden) const {
  size_scratch(*this, batch, tokens, hidden, cache.scratch);
  return cache.scratch.residual;
}

// x by value on purpose: it may be the scratch's residual, which input() below may replace, and
// the handle keeps its rows until they are copied in.
// NOLINTNEXTLINE(performance-unnecessary-value-param): the handle copy is wanted (see above)
Tensor DecoderStack::operator()(Tensor x, const RotaryEmbedding* rope, const Tensor& key_mask,
                                KvCache& cache, bool all_logits) const {
  const int64_t tokens = x.dim(1);
  if (cache.layers.size() != layers.size()) {
    throw Error("decoder: the KV cache has " + std::to_string(cache.layers.size()) +
                " layers, the model " + std::to_string(layers.size()));
  }
  input(cache, x.dim(0), tokens, x.dim(2));
  DecoderScratch& s = cache.scratch;
  if (x.data() != s.residual.data()) ops::copy_into(s.residual, x);
  for (size_t i = 0; i < layers.size(); ++i)
    layers[i](s, rope, key_mask, cache.layers[i], cache.length);
  cache.length += tokens;
  // The positions whose logits are wanted, normed into the front of the scratch's buffers
  // (contiguous [B, rows, hidden]); only the logits are a new tensor.
  const int64_t batch = s.batch, hidden = s.residual.dim(2), rows = all_logits ? tokens : 1;
  const auto front = [&](const Tensor& t) {
    return t.view({t.numel()}).narrow(0, 0, batch * rows * hidden).view({batch, rows, hidden});
  };
  Tensor last = s.residual;
  if (rows != tokens) {
    last = front(s.branch);
    ops::copy_into(last, s.residual.narrow(1, tokens - 1, 1));
  }
  Tensor normed = front(s.normed);
  final_norm.into(last, normed);
  return ops::linear(normed, head);
}

}  // namespace ember::nn
