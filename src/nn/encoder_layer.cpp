#include "ember/nn/encoder_layer.hpp"

#include <cmath>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"

namespace ember::nn {

void add_(Tensor& a, const Tensor& b) {
  if (a.dtype() != DType::F32 || b.dtype() != DType::F32 || !a.is_contiguous() ||
      !b.is_contiguous() || a.numel() != b.numel()) {
    throw Error("add_: expected contiguous F32 tensors of equal size");
  }
  float* pa = a.mutable_data_as<float>();
  const float* pb = b.data_as<float>();
  parallel_for(0, a.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
    kernels::binary_f32(kernels::BinaryOp::Add, pa + lo, pb + lo, pa + lo,
                        static_cast<size_t>(hi - lo));
  });
}

Tensor PostNormEncoderLayer::operator()(const Tensor& x, std::span<const int64_t> offsets) const {
  const int64_t n = x.dim(0);
  const int64_t hidden = heads * head_dim;
  const Tensor qkv_rows = qkv(x).view({n, 3, heads, head_dim});
  const Tensor context =
      ops::attention_packed(qkv_rows.select(1, 0), qkv_rows.select(1, 1), qkv_rows.select(1, 2),
                            offsets, false, 1.0f / std::sqrt(static_cast<float>(head_dim)));
  return after_attention(context.view({n, hidden}), x);
}

Tensor PostNormEncoderLayer::after_attention(const Tensor& context, const Tensor& x) const {
  Tensor attended = attention_out(context);
  add_(attended, x);
  const Tensor h = attention_norm(attended);
  Tensor up = mlp_up(h);
  activate_(up, activation);
  Tensor down = mlp_down(up);
  add_(down, h);
  return output_norm(down);
}

}  // namespace ember::nn
