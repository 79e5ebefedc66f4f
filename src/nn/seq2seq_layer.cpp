#include "ember/nn/seq2seq_layer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"

namespace ember::nn {
namespace {

// q k^T attention of q [B, T, H, D] over k, v [B, S, H, D] -> [B, T, H * D].
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionMask& mask,
              const AttentionShape& shape) {
  const Tensor context = ops::attention(q, k, v, mask, shape.scale);
  return context.view({q.dim(0), q.dim(1), shape.heads * shape.head_dim});
}

// One residual sublayer f, pre- or post-norm.
template <class F>
Tensor residual(const Tensor& x, const Norm& norm, bool post_norm, const F& f) {
  if (post_norm) return norm(ops::add(x, f(x)));
  return ops::add(x, f(norm(x)));
}

}  // namespace

int64_t relative_position_bucket(int64_t relative, bool bidirectional, int64_t buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0;
  int64_t distance = 0;
  if (bidirectional) {
    buckets /= 2;
    if (relative > 0) bucket += buckets;
    distance = std::abs(relative);
  } else {
    distance = -std::min<int64_t>(relative, 0);
  }
  const int64_t max_exact = buckets / 2;
  if (distance < max_exact) return bucket + distance;
  // In F32 as the reference computes it (a float log of the ratio, truncated), so that bucket
  // edges fall on the same distances.
  const float ratio = static_cast<float>(distance) / static_cast<float>(max_exact);
  const auto span = static_cast<float>(
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float scaled = std::log(ratio) / span * static_cast<float>(buckets - max_exact);
  return bucket + std::min(max_exact + static_cast<int64_t>(scaled), buckets - 1);
}

Tensor RelativePositionBias::operator()(int64_t queries, int64_t keys, int64_t first_query) const {
  const int64_t buckets = table.dim(0), heads = table.dim(1);
  Tensor out = Tensor::empty(DType::F32, {heads, queries, keys});
  const float* t = table.data_as<float>();
  float* o = out.mutable_data_as<float>();
  for (int64_t q = 0; q < queries; ++q) {
    for (int64_t k = 0; k < keys; ++k) {
      const int64_t b =
          relative_position_bucket(k - (first_query + q), bidirectional, buckets, max_distance);
      for (int64_t h = 0; h < heads; ++h) o[(h * queries + q) * keys + k] = t[b * heads + h];
    }
  }
  return out;
}

Tensor FeedForward::operator()(const Tensor& x) const {
  Tensor hidden = up(x);
  if (gated) return down(gated_activation_(hidden, activation));
  activate_(hidden, activation);
  return down(hidden);
}

PackedTokens pack_tokens(const Tensor& mask) {
  if (mask.rank() != 2 || is_float(mask.dtype()) || is_quantized(mask.dtype())) {
    throw Error(
        "encoder: the attention mask must be an integer or bool [batch, tokens] tensor, got " +
        shape_to_string(mask.shape()));
  }
  PackedTokens p;
  p.batch = mask.dim(0);
  p.length = mask.dim(1);
  const std::vector<double> values = mask.to_f64_vector();
  p.offsets.push_back(0);
  for (int64_t b = 0; b < p.batch; ++b) {
    const size_t first = p.rows.size();
    for (int64_t t = 0; t < p.length; ++t)
      if (values[static_cast<size_t>(b * p.length + t)] != 0.0) p.rows.push_back(b * p.length + t);
    if (p.rows.size() > first &&
        p.rows.back() - p.rows[first] + 1 != static_cast<int64_t>(p.rows.size() - first))
      p.contiguous = false;
    p.offsets.push_back(static_cast<int64_t>(p.rows.size()));
  }
  return p;
}

Tensor gather_tokens(const Tensor& x, const PackedTokens& tokens) {
  if (x.rank() < 2 || x.dim(0) != tokens.batch || x.dim(1) != tokens.length) {
    throw Error("gather_tokens: expected [" + std::to_string(tokens.batch) + ", " +
                std::to_string(tokens.length) + ", ...], got " + shape_to_string(x.shape()));
  }
  Shape shape = x.shape();
  shape.erase(shape.begin());
  shape[0] = static_cast<int64_t>(tokens.rows.size());
  const Tensor src = to_f32(x);
  const int64_t width = src.numel() / std::max<int64_t>(1, tokens.batch * tokens.length);
  Tensor out = Tensor::empty(DType::F32, shape);
  const float* from = src.data_as<float>();
  float* to = out.mutable_data_as<float>();
  for (size_t i = 0; i < tokens.rows.size(); ++i)
    std::copy_n(from + tokens.rows[i] * width, width, to + static_cast<int64_t>(i) * width);
  return out;
}

Tensor scatter_tokens(const Tensor& packed, const PackedTokens& tokens) {
  const auto n = static_cast<int64_t>(tokens.rows.size());
  if (packed.dtype() != DType::F32 || packed.rank() != 2 || packed.dim(0) != n ||
      (packed.dim(1) > 1 && packed.strides()[1] != 1)) {
    throw Error("scatter_tokens: expected F32 [" + std::to_string(n) + ", C], got " +
                shape_to_string(packed.shape()));
  }
  const int64_t width = packed.dim(1);
  Tensor out = Tensor::zeros(DType::F32, {tokens.batch, tokens.length, width});
  const float* from = packed.data_as<float>();
  float* to = out.mutable_data_as<float>();
  for (int64_t i = 0; i < n; ++i)
    std::copy_n(from + i * packed.strides()[0], width,
                to + tokens.rows[static_cast<size_t>(i)] * width);
  return out;
}

Tensor Seq2SeqEncoderLayer::operator()(const Tensor& x, std::span<const int64_t> offsets,
                                       const Tensor& bias) const {
  const int64_t n = x.dim(0), heads = shape.heads;
  const Tensor y = residual(x, attention_norm, post_norm, [&](const Tensor& in) {
    const Tensor projected = qkv(in).view({n, 3 * heads, shape.head_dim});
    const Tensor context = ops::attention_packed(
        projected.narrow(1, 0, heads), projected.narrow(1, heads, heads),
        projected.narrow(1, 2 * heads, heads), offsets, false, shape.scale, bias);
    return attention_out(context.view({n, heads * shape.head_dim}));
  });
  return residual(y, mlp_norm, post_norm, mlp);
}

LayerCache Seq2SeqDecoderLayer::cross_cache(const Tensor& packed,
                                            const PackedTokens& tokens) const {
  const int64_t width = shape.heads * shape.head_dim;
  const Tensor kv = cross_kv(packed);
  const Shape rows{tokens.batch, tokens.length, shape.heads, shape.head_dim};
  return {scatter_tokens(kv.narrow(1, 0, width), tokens).view(rows),
          scatter_tokens(kv.narrow(1, width, width), tokens).view(rows)};
}

Tensor Seq2SeqDecoderLayer::operator()(const Tensor& x, const Tensor& self_bias, LayerCache& self,
                                       int64_t past, const LayerCache& cross,
                                       const Tensor& cross_mask) const {
  const int64_t batch = x.dim(0), tokens = x.dim(1), heads = shape.heads;
  if (past + tokens > self.keys.dim(1)) {
    throw Error("decoder: " + std::to_string(past + tokens) +
                " tokens exceed the KV cache's capacity of " + std::to_string(self.keys.dim(1)));
  }
  ops::AttentionMask causal;
  causal.causal = true;
  causal.bias = self_bias;
  Tensor y = residual(x, self_norm, post_norm, [&](const Tensor& in) {
    const Tensor projected = qkv(in).view({batch, tokens, 3 * heads, shape.head_dim});
    ops::copy_into(self.keys.narrow(1, past, tokens), projected.narrow(2, heads, heads));
    ops::copy_into(self.values.narrow(1, past, tokens), projected.narrow(2, 2 * heads, heads));
    return self_out(attend(projected.narrow(2, 0, heads), self.keys.narrow(1, 0, past + tokens),
                           self.values.narrow(1, 0, past + tokens), causal, shape));
  });
  // The beams of an input are extra queries of its one cross row: [inputs, beams * T, ...].
  const int64_t inputs = cross.keys.dim(0);
  if (inputs < 1 || batch % inputs != 0) {
    throw Error("decoder: " + std::to_string(batch) + " rows do not group over " +
                std::to_string(inputs) + " cross-attention rows");
  }
  ops::AttentionMask source;
  source.key_mask = cross_mask;
  y = residual(y, cross_norm, post_norm, [&](const Tensor& in) {
    const Tensor q = cross_query(in).view({inputs, batch / inputs * tokens, heads, shape.head_dim});
    const Tensor context = attend(q, cross.keys, cross.values, source, shape);
    return cross_out(context.view({batch, tokens, heads * shape.head_dim}));
  });
  return residual(y, mlp_norm, post_norm, mlp);
}

void select_rows(Tensor& t, std::span<const int64_t> rows, int64_t used) {
  const int64_t n = t.dim(0);
  if (t.dtype() != DType::F32 || !t.is_contiguous() || t.rank() < 2 || used < 0 ||
      used > t.dim(1)) {
    throw Error(
        "select_rows: needs a contiguous F32 [rows, length, ...] tensor and a used length "
        "within it, got " +
        shape_to_string(t.shape()) + " and " + std::to_string(used));
  }
  for (int64_t r : rows)
    if (r < 0 || r >= n) throw Error("select_rows: row " + std::to_string(r) + " out of range");
  const int64_t row_size = t.numel() / std::max<int64_t>(1, n);
  const auto moved = static_cast<size_t>(used * (row_size / std::max<int64_t>(1, t.dim(1))));
  const auto count = static_cast<int64_t>(rows.size());
  if (count != n) {
    Shape shape = t.shape();
    shape[0] = count;
    Tensor out = Tensor::empty(DType::F32, shape);
    const float* src = t.data_as<float>();
    float* dst = out.mutable_data_as<float>();
    for (int64_t r = 0; r < count; ++r)
      std::copy_n(src + rows[static_cast<size_t>(r)] * row_size, moved, dst + r * row_size);
    t = out;
    return;
  }
  // In place: the rows that others read are saved first, as they may be overwritten.
  std::vector<int64_t> sources;
  for (int64_t r = 0; r < n; ++r)
    if (rows[static_cast<size_t>(r)] != r) sources.push_back(rows[static_cast<size_t>(r)]);
  if (sources.empty()) return;
  std::sort(sources.begin(), sources.end());
  sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
  float* data = t.mutable_data_as<float>();
  std::vector<float> saved(sources.size() * moved);
  for (size_t i = 0; i < sources.size(); ++i)
    std::copy_n(data + sources[i] * row_size, moved,
                saved.begin() + static_cast<ptrdiff_t>(i * moved));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t from = rows[static_cast<size_t>(r)];
    if (from == r) continue;
    const auto i = static_cast<size_t>(std::lower_bound(sources.begin(), sources.end(), from) -
                                       sources.begin());
    std::copy_n(saved.begin() + static_cast<ptrdiff_t>(i * moved), moved, data + r * row_size);
  }
}

}  // namespace ember::nn
