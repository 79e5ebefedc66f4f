// Rotary embeddings, fused attention and strided in-place writes: the ops a transformer layer
// needs beyond linear and the norms.
//
// attention runs one task per (batch, query head, block of query rows) on the pool. Each task's
// two products (scores = q k^T, out = p v) go to Ember's GEMM panel kernel, or, for a few rows,
// to the dot-product kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"
#include "ops_internal.hpp"

namespace ember::ops {
namespace {

using detail::dtype_str;

// A sequence of up to this many query rows (a decode step: one per beam, or an input's beams
// over its cross-attention keys) takes dot products over the keys where they lie; a GEMM would
// first pack every key and value row, which cost more than the products.
constexpr int64_t kDirectRows = 8;

void require_f32_rows(const char* op, const Tensor& t, const char* what, int64_t rank) {
  detail::require_defined(op, t, what);
  if (t.dtype() != DType::F32 || t.rank() != rank || (t.dim(-1) > 1 && t.strides().back() != 1)) {
    throw Error(std::string(op) + ": " + what + " must be an F32 tensor of rank " +
                std::to_string(rank) + " with unit stride in its last dim, got " +
                dtype_str(t.dtype()) + " " + shape_to_string(t.shape()));
  }
}

// Row b of an integer/bool key mask as 0/1 bytes.
std::vector<uint8_t> key_mask_rows(const Tensor& mask, int64_t batch, int64_t keys) {
  if (mask.rank() != 2 || mask.dim(0) != batch || mask.dim(1) != keys) {
    throw Error("attention: key_mask must be [B, Tk] = [" + std::to_string(batch) + ", " +
                std::to_string(keys) + "], got " + shape_to_string(mask.shape()));
  }
  if (is_float(mask.dtype()) || is_quantized(mask.dtype())) {
    throw Error("attention: key_mask must have an integer or bool dtype, got " +
                dtype_str(mask.dtype()));
  }
  const std::vector<double> values = mask.to_f64_vector();
  std::vector<uint8_t> rows(values.size());
  for (size_t i = 0; i < values.size(); ++i) rows[i] = values[i] != 0.0 ? 1 : 0;
  return rows;
}

}  // namespace

void copy_into(Tensor dst, const Tensor& src) {
  detail::require_defined("copy_into", dst, "destination");
  detail::require_defined("copy_into", src, "source");
  if (dst.shape() != src.shape()) {
    throw Error("copy_into: shapes differ: destination " + shape_to_string(dst.shape()) +
                ", source " + shape_to_string(src.shape()));
  }
  const bool narrowing =
      src.dtype() == DType::F32 && (dst.dtype() == DType::F16 || dst.dtype() == DType::BF16);
  if ((src.dtype() != dst.dtype() && !narrowing) || is_quantized(dst.dtype())) {
    throw Error("copy_into: cannot write " + dtype_str(src.dtype()) + " into " +
                dtype_str(dst.dtype()));
  }
  if (dst.numel() == 0) return;
  // A same-dtype source is read through its own strides (no contiguous copy: the decode step
  // writes strided k/v views into the cache this way).
  const Tensor s = narrowing ? convert_to(src, dst.dtype()) : src;
  std::byte* base = dst.mutable_data();  // throws on read-only storage
  const auto elem = static_cast<int64_t>(dtype_size(dst.dtype()));
  // Copy runs of the innermost dim; dst and s may have any strides.
  const int64_t rank = dst.rank();
  const int64_t inner = rank == 0 ? 1 : dst.dim(-1);
  const int64_t to_step = rank == 0 ? 1 : dst.strides().back();
  const int64_t from_step = rank == 0 ? 1 : s.strides().back();
  const int64_t rows = dst.numel() / inner;
  const std::byte* from = s.data();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t to_offset = 0, from_offset = 0;
    int64_t rest = r;
    for (int64_t d = rank - 2; d >= 0; --d) {
      const int64_t i = rest % dst.dim(d);
      to_offset += i * dst.strides()[static_cast<size_t>(d)];
      from_offset += i * s.strides()[static_cast<size_t>(d)];
      rest /= dst.dim(d);
    }
    std::byte* to = base + to_offset * elem;
    const std::byte* row = from + from_offset * elem;
    if (to_step == 1 && from_step == 1) {
      std::memcpy(to, row, static_cast<size_t>(inner * elem));
    } else {
      for (int64_t i = 0; i < inner; ++i)
        std::memcpy(to + i * to_step * elem, row + i * from_step * elem, static_cast<size_t>(elem));
    }
  }
}

RopeTable rope_table(std::span<const int64_t> positions, std::span<const float> inv_freq,
                     float scale) {
  RopeTable table;
  table.half = static_cast<int64_t>(inv_freq.size());
  table.cos.resize(positions.size() * inv_freq.size());
  table.sin.resize(table.cos.size());
  for (size_t p = 0; p < positions.size(); ++p) {
    const float pos = static_cast<float>(positions[p]);
    for (size_t i = 0; i < inv_freq.size(); ++i) {
      // The angle is an F32 product, as in the reference; cos/sin of it are then exact.
      const float angle = pos * inv_freq[i];
      table.cos[p * inv_freq.size() + i] = static_cast<float>(std::cos(double{angle})) * scale;
      table.sin[p * inv_freq.size() + i] = static_cast<float>(std::sin(double{angle})) * scale;
    }
  }
  return table;
}

void rope(Tensor& x, const RopeTable& table, RopeLayout layout) {
  require_f32_rows("rope", x, "input", 4);
  const int64_t batch = x.dim(0), tokens = x.dim(1), heads = x.dim(2), head_dim = x.dim(3);
  const int64_t half = table.half;
  if (2 * half > head_dim) {
    throw Error("rope: " + std::to_string(2 * half) + " rotary dims exceed the head size " +
                std::to_string(head_dim));
  }
  const int64_t rows = half > 0 ? static_cast<int64_t>(table.cos.size()) / half : 0;
  const bool per_batch = rows == batch * tokens;
  if (!per_batch && rows != tokens) {
    throw Error("rope: expected " + std::to_string(tokens) + " or " +
                std::to_string(batch * tokens) + " positions, got " + std::to_string(rows));
  }
  float* data = x.mutable_data_as<float>();
  const int64_t sb = x.strides()[0], st = x.strides()[1], sh = x.strides()[2];
  parallel_for(0, batch * tokens, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t bt = lo; bt < hi; ++bt) {
      const int64_t b = bt / tokens, t = bt % tokens;
      const int64_t row = (per_batch ? bt : t) * half;
      const float* cos_row = table.cos.data() + row;
      const float* sin_row = table.sin.data() + row;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = data + b * sb + t * st + h * sh;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = layout == RopeLayout::HalfSplit ? i : 2 * i;
          const int64_t i1 = layout == RopeLayout::HalfSplit ? i + half : 2 * i + 1;
          const float c = cos_row[i], s = sin_row[i];
          const float a = v[i0], bb = v[i1];
          v[i0] = a * c - bb * s;
          v[i1] = bb * c + a * s;
        }
      }
    }
  });
}

namespace {

// One sequence's view for the attention kernel: where its rows start and how rows advance.
struct SeqView {
  const float* q;  // row 0, head 0
  const float* k;
  const float* v;
  float* out;
  int64_t tq, tk;
  const uint8_t* key_valid;     // tk flags, or null
  const float* bias;            // additive scores of head h, query row r at bias[h * bias_head +
  int64_t bias_head, bias_row;  // r * bias_row + key], or null
};

struct HeadLayout {
  int64_t hq, hkv, d;
  int64_t q_row, k_row, v_row, out_row;  // element strides between consecutive tokens
  int64_t q_head, k_head, v_head;        // element strides between heads
};

// Rounds n floats to their nearest F16 values (ties to even), in place.
void round_through_f16(float* x, size_t n) {
  constexpr size_t kChunk = 256;
  uint16_t half[kChunk];
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = std::min(kChunk, n - i);
    convert_f32_to_f16(x + i, half, m);
    convert_f16_to_f32(half, x + i, m);
  }
}

// The buffers of one pool chunk's tasks: the scores and the packed keys and values.
struct AttendScratch {
  std::vector<float> scores, keys, values;
};

// Rows [0, n) of a [n, d] view (rows `stride` floats apart) as kernels::gemm_panels_f32's panels
// of the product with k^T: panel p holds, for each c < d, rows p * kGemmPanel.. side by side.
void pack_rows(const float* src, int64_t stride, int64_t n, int64_t d, std::vector<float>& panels) {
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t count = (n + width - 1) / width;
  panels.assign(static_cast<size_t>(count * d * width), 0.0f);
  for (int64_t p = 0; p < count; ++p) {
    detail::pack_panel_rows(src + p * width * stride, stride, std::min(width, n - p * width), d,
                            panels.data() + p * d * width);
  }
}

// A [n, d] view's columns as the panels of the product p v: panel q holds, for each row j < n,
// its columns q * kGemmPanel.. (zero past d), a plain copy of 16-float runs.
void pack_columns(const float* src, int64_t stride, int64_t n, int64_t d,
                  std::vector<float>& panels) {
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t count = (d + width - 1) / width;
  panels.assign(static_cast<size_t>(count * n * width), 0.0f);
  for (int64_t q = 0; q < count; ++q) {
    const int64_t cols = std::min(width, d - q * width);
    float* out = panels.data() + q * n * width;
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(out + j * width, src + j * stride + q * width,
                  static_cast<size_t>(cols) * sizeof(float));
  }
}

// softmax(q k^T * scale + mask) v for query rows [row0, row0 + rows) of head h of one sequence.
// f16_weights: the softmax weights are rounded to F16 before the product with v (an F16 cache).
// A few rows read the keys and values in place (dot-product kernels); more pack them into
// Ember's GEMM panels, where a causal block stops at its last row's position (the masked keys
// only add zeros). Not OpenBLAS: its CPU detection picks a generic SSE3 kernel on CPUs newer
// than the library (Debian 12's on Emerald Rapids), which made attention a third of a prompt.
void attend_rows(const SeqView& s, const HeadLayout& l, int64_t h, int64_t row0, int64_t rows,
                 bool causal, int64_t window, float scale, AttendScratch& scratch,
                 bool f16_weights = false) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t kvh = h / (l.hq / l.hkv);
  const int64_t past = s.tk - s.tq;
  const int64_t tk = causal ? std::min(s.tk, past + row0 + rows) : s.tk;
  std::vector<float>& scores = scratch.scores;
  scores.resize(static_cast<size_t>(rows * tk));
  const float* q = s.q + row0 * l.q_row + h * l.q_head;
  const float* k = s.k + kvh * l.k_head;
  const float* v = s.v + kvh * l.v_head;
  float* out = s.out + row0 * l.out_row + h * l.d;
  const bool direct = s.tq <= kDirectRows;
  if (direct) {
    for (int64_t r = 0; r < rows; ++r)
      kernels::dot_rows_f32(q + r * l.q_row, k, static_cast<size_t>(l.k_row),
                            static_cast<size_t>(tk), static_cast<size_t>(l.d), scale,
                            scores.data() + r * tk);
  } else {
    pack_rows(k, l.k_row, tk, l.d, scratch.keys);
    kernels::gemm_panels_f32(q, static_cast<size_t>(l.q_row), static_cast<size_t>(rows),
                             static_cast<size_t>(l.d), scratch.keys.data(), 0,
                             static_cast<size_t>((tk + width - 1) / width), static_cast<size_t>(tk),
                             scores.data(), static_cast<size_t>(tk));
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores.data() + r * tk;
    if (!direct) {
      for (int64_t j = 0; j < tk; ++j) row[j] *= scale;
    }
    if (s.bias != nullptr) {
      kernels::binary_f32(kernels::BinaryOp::Add, row,
                          s.bias + h * s.bias_head + (row0 + r) * s.bias_row, row,
                          static_cast<size_t>(tk));
    }
    const int64_t pos = past + row0 + r;
    int64_t visible = 0;
    for (int64_t j = 0; j < tk; ++j) {
      bool ok = s.key_valid == nullptr || s.key_valid[j] != 0;
      if (causal) ok = ok && j <= pos && (window <= 0 || pos - j < window);
      if (ok) {
        ++visible;
      } else {
        row[j] = kNegInf;
      }
    }
    if (visible == 0) {
      std::fill(row, row + tk, 0.0f);
    } else {
      kernels::softmax_row_f32(row, row, static_cast<size_t>(tk));
      if (f16_weights) round_through_f16(row, static_cast<size_t>(tk));
    }
  }
  if (direct) {
    for (int64_t r = 0; r < rows; ++r)
      kernels::weighted_rows_f32(scores.data() + r * tk, v, static_cast<size_t>(l.v_row),
                                 static_cast<size_t>(tk), static_cast<size_t>(l.d),
                                 out + r * l.out_row);
    return;
  }
  pack_columns(v, l.v_row, tk, l.d, scratch.values);
  kernels::gemm_panels_f32(scores.data(), static_cast<size_t>(tk), static_cast<size_t>(rows),
                           static_cast<size_t>(tk), scratch.values.data(), 0,
                           static_cast<size_t>((l.d + width - 1) / width), static_cast<size_t>(l.d),
                           out, static_cast<size_t>(l.out_row));
}

// Runs every (sequence, head, block of query rows) on the pool. A block is at most 64 rows (the
// packing of its keys and values is then a small part of its products), fewer where the keys
// are many, so that its scores stay near 256 KB.
void attend_all(const std::vector<SeqView>& seqs, const HeadLayout& l, bool causal, int64_t window,
                float scale, bool f16_weights = false) {
  int64_t max_tk = 1;
  for (const SeqView& s : seqs) max_tk = std::max(max_tk, s.tk);
  const int64_t rows_per_block = std::clamp<int64_t>(65536 / max_tk / 8 * 8, 8, 64);
  // Task list: (sequence, head, first row).
  struct Task {
    int64_t seq, head, row0;
  };
  std::vector<Task> tasks;
  for (size_t si = 0; si < seqs.size(); ++si)
    for (int64_t h = 0; h < l.hq; ++h)
      for (int64_t r = 0; r < seqs[si].tq; r += rows_per_block)
        tasks.push_back({static_cast<int64_t>(si), h, r});
  parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t lo, int64_t hi) {
    AttendScratch scratch;
    for (int64_t t = lo; t < hi; ++t) {
      const Task& task = tasks[static_cast<size_t>(t)];
      const SeqView& s = seqs[static_cast<size_t>(task.seq)];
      attend_rows(s, l, task.head, task.row0, std::min(rows_per_block, s.tq - task.row0), causal,
                  window, scale, scratch, f16_weights);
    }
  });
}

}  // namespace

namespace {

Shape attention_shape(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  require_f32_rows("attention", q, "q", 4);
  for (const auto& [t, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    detail::require_defined("attention", *t, name);
    const bool rows = t->rank() == 4 && (t->dim(-1) <= 1 || t->strides().back() == 1);
    if (!rows || (t->dtype() != DType::F32 && t->dtype() != DType::F16) ||
        t->dtype() != k.dtype()) {
      throw Error(std::string("attention: ") + name +
                  " must be an F32 or F16 tensor (k and v alike) of rank 4 with unit stride in "
                  "its last dim, got " +
                  dtype_str(t->dtype()) + " " + shape_to_string(t->shape()));
    }
  }
  const int64_t batch = q.dim(0), tq = q.dim(1), hq = q.dim(2), d = q.dim(3);
  const int64_t tk = k.dim(1), hkv = k.dim(2);
  if (k.dim(0) != batch || v.shape() != k.shape() || k.dim(3) != d || hkv == 0 || hq % hkv != 0 ||
      (causal && tk < tq)) {
    throw Error(
        "attention: expected q [B, Tq, Hq, D], k = v [B, Tk, Hkv, D] with Hq a multiple of Hkv "
        "(and Tk >= Tq when causal); got q " +
        shape_to_string(q.shape()) + ", k " + shape_to_string(k.shape()) + ", v " +
        shape_to_string(v.shape()));
  }
  return {batch, tq, hq, d};
}

// attention once the shapes are checked; out is contiguous [B, Tq, Hq, D] F32.
void attention_checked_into(const Tensor& q, const Tensor& k, const Tensor& v,
                            const AttentionMask& mask, float scale, Tensor& out,
                            bool f16_weights = false) {
  if (k.dtype() == DType::F16) {
    // An F16 KV cache, multiplied as ggml's CPU backend does: the F32 operand of each product is
    // converted to F16 (q for q k^T, the softmax weights for p v) and the products are summed in
    // F32. A product of two F16 values is exact in F32, so widening k and v to F32 (exact) and
    // rounding q gives those products; only the order of the F32 sums differs.
    attention_checked_into(to_f32(convert_to(q, DType::F16)), to_f32(k), to_f32(v), mask, scale,
                           out, true);
    return;
  }
  const int64_t batch = q.dim(0), tq = q.dim(1), hq = q.dim(2), d = q.dim(3);
  const int64_t tk = k.dim(1), hkv = k.dim(2);
  const std::vector<uint8_t> key_valid =
      mask.key_mask.defined() ? key_mask_rows(mask.key_mask, batch, tk) : std::vector<uint8_t>();
  const Shape bias_shape{hq, tq, tk};
  if (mask.bias.defined() && (mask.bias.dtype() != DType::F32 || !mask.bias.is_contiguous() ||
                              mask.bias.shape() != bias_shape)) {
    throw Error(
        "attention: bias must be a contiguous F32 [Hq, Tq, Tk] = " + shape_to_string(bias_shape) +
        ", got " + dtype_str(mask.bias.dtype()) + " " + shape_to_string(mask.bias.shape()));
  }
  const float* bias = mask.bias.defined() ? mask.bias.data_as<float>() : nullptr;
  if (out.numel() == 0) return;
  const HeadLayout layout{hq,
                          hkv,
                          d,
                          q.strides()[1],
                          k.strides()[1],
                          v.strides()[1],
                          hq * d,
                          q.strides()[2],
                          k.strides()[2],
                          v.strides()[2]};
  std::vector<SeqView> seqs;
  for (int64_t b = 0; b < batch; ++b) {
    const uint8_t* valid = key_valid.empty() ? nullptr : key_valid.data() + b * tk;
    // Without a causal mask, keys after a row's last valid one carry no weight: a right-padded
    // row (cross-attention over a batch of inputs) is attended over its true length only. A row
    // without any valid key keeps one, for the all-masked rule (zeros) below.
    int64_t keys = tk;
    if (valid != nullptr && !mask.causal)
      while (keys > 1 && valid[keys - 1] == 0) --keys;
    seqs.push_back(
        {q.data_as<float>() + b * q.strides()[0], k.data_as<float>() + b * k.strides()[0],
         v.data_as<float>() + b * v.strides()[0], out.mutable_data_as<float>() + b * tq * hq * d,
         tq, keys, valid, bias, tq * tk, tk});
  }
  attend_all(seqs, layout, mask.causal, mask.sliding_window, scale, f16_weights);
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                 float scale) {
  Tensor out = Tensor::empty(DType::F32, attention_shape(q, k, v, mask.causal));
  attention_checked_into(q, k, v, mask, scale, out);
  return out;
}

void attention_into(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                    float scale, Tensor& out) {
  const Shape shape = attention_shape(q, k, v, mask.causal);
  if (out.dtype() != DType::F32 || !out.is_contiguous() || out.numel() != shape_numel(shape)) {
    throw Error("attention_into: output must be a contiguous F32 tensor of " +
                shape_to_string(shape) + " elements, got " + dtype_str(out.dtype()) + " " +
                shape_to_string(out.shape()));
  }
  attention_checked_into(q, k, v, mask, scale, out);
}

Tensor attention_packed(const Tensor& q, const Tensor& k, const Tensor& v,
                        std::span<const int64_t> seq_offsets, bool causal, float scale,
                        const Tensor& bias) {
  require_f32_rows("attention_packed", q, "q", 3);
  require_f32_rows("attention_packed", k, "k", 3);
  require_f32_rows("attention_packed", v, "v", 3);
  const int64_t n = q.dim(0), hq = q.dim(1), d = q.dim(2), hkv = k.dim(1);
  if (k.dim(0) != n || v.shape() != k.shape() || k.dim(2) != d || hkv == 0 || hq % hkv != 0) {
    throw Error(
        "attention_packed: expected q [N, Hq, D], k = v [N, Hkv, D] with Hq a multiple of "
        "Hkv; got q " +
        shape_to_string(q.shape()) + ", k " + shape_to_string(k.shape()) + ", v " +
        shape_to_string(v.shape()));
  }
  if (seq_offsets.empty() || seq_offsets.front() != 0 || seq_offsets.back() != n ||
      !std::is_sorted(seq_offsets.begin(), seq_offsets.end())) {
    throw Error("attention_packed: seq_offsets must rise from 0 to N = " + std::to_string(n));
  }
  int64_t longest = 0;
  for (size_t s = 0; s + 1 < seq_offsets.size(); ++s)
    longest = std::max(longest, seq_offsets[s + 1] - seq_offsets[s]);
  const int64_t span = bias.defined() ? bias.dim(-1) : 0;
  if (bias.defined() && (bias.dtype() != DType::F32 || !bias.is_contiguous() || bias.rank() != 3 ||
                         bias.dim(0) != hq || bias.dim(1) != span || span < longest)) {
    throw Error("attention_packed: bias must be a contiguous F32 [Hq, S, S] with Hq = " +
                std::to_string(hq) + " and S >= the longest sequence (" + std::to_string(longest) +
                "), got " + dtype_str(bias.dtype()) + " " + shape_to_string(bias.shape()));
  }
  const float* bias_data = bias.defined() ? bias.data_as<float>() : nullptr;
  Tensor out = Tensor::empty(DType::F32, {n, hq, d});
  if (out.numel() == 0) return out;
  const HeadLayout layout{hq,
                          hkv,
                          d,
                          q.strides()[0],
                          k.strides()[0],
                          v.strides()[0],
                          hq * d,
                          q.strides()[1],
                          k.strides()[1],
                          v.strides()[1]};
  std::vector<SeqView> seqs;
  for (size_t s = 0; s + 1 < seq_offsets.size(); ++s) {
    const int64_t begin = seq_offsets[s], len = seq_offsets[s + 1] - begin;
    if (len == 0) continue;
    seqs.push_back(
        {q.data_as<float>() + begin * q.strides()[0], k.data_as<float>() + begin * k.strides()[0],
         v.data_as<float>() + begin * v.strides()[0], out.mutable_data_as<float>() + begin * hq * d,
         len, len, nullptr, bias_data, span * span, span});
  }
  attend_all(seqs, layout, causal, 0, scale);
  return out;
}

}  // namespace ember::ops
