#include "ember/nn/disentangled_attention.hpp"

#include <algorithm>
#include <cmath>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/kernels.hpp"

namespace ember::nn {

int64_t log_bucket_position(int64_t relative, int64_t buckets, int64_t max_position) {
  const int64_t mid = buckets / 2;
  const int64_t distance = relative < 0 ? -relative : relative;
  if (distance <= mid) return relative;
  // Each operation in F32, in the reference's order.
  const float ratio = static_cast<float>(distance) / static_cast<float>(mid);
  const auto base = static_cast<float>(static_cast<double>(max_position - 1) / mid);
  const float scaled = std::log(ratio) / std::log(base) * static_cast<float>(mid - 1);
  const auto bucket = static_cast<int64_t>(std::ceil(scaled)) + mid;
  return relative < 0 ? -bucket : bucket;
}

int64_t RelativeSpan::row(int64_t relative) const {
  const int64_t r = buckets > 0 ? log_bucket_position(relative, buckets, max_position) : relative;
  return std::clamp<int64_t>(r + span, 0, 2 * span - 1);
}

std::vector<int64_t> RelativeSpan::rows(int64_t length) const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(2 * length - 1, 0)));
  for (int64_t d = 1 - length; d < length; ++d) out.push_back(row(d));
  return out;
}

void disentangled_bias_into(const Tensor& q, const Tensor& k, const Tensor& pos_key,
                            const Tensor& pos_query, std::span<const int64_t> rows, float scale,
                            Tensor& bias) {
  const int64_t length = q.dim(0), heads = q.dim(1), dim = q.dim(2);
  const auto check_table = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    if (t.dtype() != DType::F32 || !t.is_contiguous() || t.rank() != 2 || t.dim(1) != heads * dim) {
      throw Error(std::string("disentangled_bias_into: ") + what +
                  " must be contiguous F32 [rows, heads * head_dim]");
    }
    for (int64_t r : rows) {
      if (r < 0 || r >= t.dim(0)) {
        throw Error(std::string("disentangled_bias_into: row ") + std::to_string(r) +
                    " is outside " + what + "'s " + std::to_string(t.dim(0)) + " rows");
      }
    }
  };
  check_table(pos_key, "pos_key");
  check_table(pos_query, "pos_query");
  if (k.dim(0) != length || k.dim(1) != heads || k.dim(2) != dim ||
      static_cast<int64_t>(rows.size()) != std::max<int64_t>(2 * length - 1, 0) ||
      q.strides()[2] != 1 || k.strides()[2] != 1 || bias.dtype() != DType::F32 ||
      !bias.is_contiguous() || bias.numel() != heads * length * length) {
    throw Error(
        "disentangled_bias_into: expected q, k [L, H, D] with unit-stride D, 2L - 1 rows "
        "and a contiguous F32 bias of H * L * L");
  }
  const float* qd = q.data_as<float>();
  const float* kd = k.data_as<float>();
  const float* pk = pos_key.defined() ? pos_key.data_as<float>() : nullptr;
  const float* pq = pos_query.defined() ? pos_query.data_as<float>() : nullptr;
  float* out = bias.mutable_data_as<float>();
  const int64_t q_row = q.strides()[0], q_head = q.strides()[1];
  const int64_t k_row = k.strides()[0], k_head = k.strides()[1];
  const auto n = static_cast<size_t>(dim);
  // One (head, query) row of the bias per item: L dot products of D for each term.
  parallel_for(0, heads * length, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t h = item / length, i = item % length;
      const float* qi = qd + i * q_row + h * q_head;
      float* row = out + item * length;
      for (int64_t j = 0; j < length; ++j) {
        const int64_t r = rows[static_cast<size_t>(i - j + length - 1)];
        const int64_t table = r * heads * dim + h * dim;
        float s = 0.0f;
        if (pk != nullptr) s += kernels::dot_f32(pk + table, qi, n);
        if (pq != nullptr) s += kernels::dot_f32(pq + table, kd + j * k_row + h * k_head, n);
        row[j] = s * scale;
      }
    }
  });
}

}  // namespace ember::nn
