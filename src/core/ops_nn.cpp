// softmax, layer_norm, rms_norm, embedding, concat, topk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/dtype_traits.hpp"
#include "ember/core/ops.hpp"
#include "ops_internal.hpp"

namespace ember::ops {
namespace {

using detail::dtype_str;

// Rows per task so that a task touches about 16K elements.
int64_t row_grain(int64_t row_len) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_len));
}

// F64 rows: plain double loops (F64 is for reference work, not speed).
void softmax_row_f64(const double* x, double* y, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (y[i] = std::exp(x[i] - m));
  for (int64_t i = 0; i < n; ++i) y[i] /= sum;
}

void norm_row_f64(bool rms, const double* x, const double* w, const double* b, double eps,
                  double* y, int64_t n) {
  double mean = 0.0;
  if (!rms) {
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= static_cast<double>(n);
  }
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    double v = (x[i] - mean) * rstd;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

// Runs fn(in_row, out_row) over all rows of the last axis. T is float or double; `in` is a
// contiguous tensor of T.
// `out`: a contiguous tensor of T with in's element count.
template <typename T, typename Fn>
void map_rows_into(const Tensor& in, Tensor& out, const Fn& fn) {
  const int64_t n = in.rank() == 0 ? 1 : in.dim(-1);
  if (out.numel() == 0 || n == 0) return;
  const int64_t rows = in.numel() / n;
  const T* src = in.data_as<T>();
  T* dst = out.mutable_data_as<T>();
  parallel_for(0, rows, row_grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) fn(src + r * n, dst + r * n, n);
  });
}

template <typename T, typename Fn>
Tensor map_rows(const Tensor& in, const Fn& fn) {
  Tensor out = Tensor::empty(in.dtype(), in.shape());
  map_rows_into<T>(in, out, fn);
  return out;
}

// Optional [D] parameter converted to contiguous `dtype`, or undefined.
Tensor norm_param(const char* op, const Tensor& p, const char* what, int64_t d, DType dtype,
                  const Tensor& x) {
  if (!p.defined()) return p;
  detail::require_float(op, p, what);
  if (p.rank() != 1 || p.dim(0) != d) {
    throw Error(std::string(op) + ": " + what + " shape " + shape_to_string(p.shape()) +
                " does not match the last dim of input " + shape_to_string(x.shape()));
  }
  return dtype == DType::F64 ? p.to(DType::F64) : to_f32(p);
}

void check_norm(const char* op, const Tensor& x, double eps) {
  detail::require_float(op, x);
  if (x.rank() < 1) throw Error(std::string(op) + ": input must have rank >= 1");
  if (!(eps >= 0.0)) throw Error(std::string(op) + ": eps must be >= 0");
}

// The F32 rows of a norm, from a contiguous F32 x into `out`.
void norm_f32_into(bool rms, const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                   Tensor& out) {
  const float* pw = w.defined() ? w.data_as<float>() : nullptr;
  const float* pb = b.defined() ? b.data_as<float>() : nullptr;
  const auto feps = static_cast<float>(eps);
  map_rows_into<float>(x, out, [&](const float* in, float* o, int64_t n) {
    if (rms) {
      kernels::rms_norm_row_f32(in, pw, feps, o, static_cast<size_t>(n));
    } else {
      kernels::layer_norm_row_f32(in, pw, pb, feps, o, static_cast<size_t>(n));
    }
  });
}

Tensor norm(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  check_norm(op, x, eps);
  const int64_t d = x.dim(-1);
  const bool f64 = x.dtype() == DType::F64;
  const DType compute = f64 ? DType::F64 : DType::F32;
  const Tensor w = norm_param(op, weight, "weight", d, compute, x);
  const Tensor b = norm_param(op, bias, "bias", d, compute, x);
  if (f64) {
    const double* pw = w.defined() ? w.data_as<double>() : nullptr;
    const double* pb = b.defined() ? b.data_as<double>() : nullptr;
    return map_rows<double>(x.contiguous(), [&](const double* in, double* out, int64_t n) {
      norm_row_f64(rms, in, pw, pb, eps, out, n);
    });
  }
  Tensor out = Tensor::empty(DType::F32, x.shape());
  norm_f32_into(rms, to_f32(x), w, b, eps, out);
  return x.dtype() == DType::F32 ? out : convert_to(out, x.dtype());
}

void norm_into(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
               Tensor& out) {
  const char* op = rms ? "rms_norm_into" : "layer_norm_into";
  check_norm(op, x, eps);
  if (x.dtype() != DType::F32 || !x.is_contiguous() || out.dtype() != DType::F32 ||
      !out.is_contiguous() || out.numel() != x.numel()) {
    throw Error(std::string(op) +
                ": expected a contiguous F32 input and output of equal size, got " +
                dtype_str(x.dtype()) + " " + shape_to_string(x.shape()) + " into " +
                dtype_str(out.dtype()) + " " + shape_to_string(out.shape()));
  }
  const int64_t d = x.dim(-1);
  norm_f32_into(rms, x, norm_param(op, weight, "weight", d, DType::F32, x),
                norm_param(op, bias, "bias", d, DType::F32, x), eps, out);
}

// NaN ranks highest; equal values keep the lower index first.
template <typename T>
bool ranks_before(const T* v, int64_t i, int64_t j) {
  const bool ni = std::isnan(v[i]);
  const bool nj = std::isnan(v[j]);
  if (ni || nj) return ni && nj ? i < j : ni;
  if (v[i] != v[j]) return v[i] > v[j];
  return i < j;
}

template <typename T>
void topk_rows(const T* x, int64_t rows, int64_t n, int64_t k, int64_t* indices) {
  parallel_for(
      0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, n)), [&](int64_t lo, int64_t hi) {
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (int64_t r = lo; r < hi; ++r) {
          const T* row = x + r * n;
          std::iota(order.begin(), order.end(), int64_t{0});
          std::partial_sort(order.begin(), order.begin() + k, order.end(),
                            [row](int64_t i, int64_t j) { return ranks_before(row, i, j); });
          std::copy(order.begin(), order.begin() + k, indices + r * k);
        }
      });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) {
  detail::require_float("softmax", x);
  if (x.rank() == 0) throw Error("softmax: input is a scalar (rank 0)");
  const int64_t a = detail::normalize_axis("softmax", axis, x.rank());
  if (a != x.rank() - 1) {
    return softmax(x.transpose(a, -1), -1).transpose(a, -1).contiguous();
  }
  if (x.dtype() == DType::F64) {
    return map_rows<double>(x.contiguous(), [](const double* in, double* out, int64_t n) {
      softmax_row_f64(in, out, n);
    });
  }
  Tensor out = map_rows<float>(to_f32(x), [](const float* in, float* o, int64_t n) {
    kernels::softmax_row_f32(in, o, static_cast<size_t>(n));
  });
  return x.dtype() == DType::F32 ? out : convert_to(out, x.dtype());
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return norm(false, x, weight, bias, eps);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  return norm(true, x, weight, Tensor(), eps);
}

void layer_norm_into(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     Tensor& out) {
  norm_into(false, x, weight, bias, eps, out);
}

void rms_norm_into(const Tensor& x, const Tensor& weight, double eps, Tensor& out) {
  norm_into(true, x, weight, Tensor(), eps, out);
}

namespace {

// Checks embedding's operands (a table to be widened to F32 needs a conversion) and returns the
// table row of every id.
std::vector<int64_t> embedding_rows(const char* op, const Tensor& weight, const Tensor& ids,
                                    bool widen) {
  detail::require_defined(op, weight, "weight");
  detail::require_defined(op, ids, "ids");
  const auto shapes = [&] {
    return "weight " + shape_to_string(weight.shape()) + ", ids " + shape_to_string(ids.shape());
  };
  if (weight.rank() != 2) throw Error(std::string(op) + ": weight must be [V, D]: " + shapes());
  if (widen && dtype_traits(weight.dtype()).to_f32 == nullptr) {
    throw Error(std::string(op) + ": weight dtype " + dtype_str(weight.dtype()) +
                " has no F32 conversion");
  }
  if (ids.dtype() != DType::I64 && ids.dtype() != DType::I32) {
    throw Error(std::string(op) + ": ids must be I64 or I32, got " + dtype_str(ids.dtype()) + ": " +
                shapes());
  }
  const int64_t vocab = weight.dim(0);
  const Tensor id_tensor = ids.contiguous();
  const int64_t count = id_tensor.numel();
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = ids.dtype() == DType::I64 ? id_tensor.data_as<int64_t>()[i]
                                                 : id_tensor.data_as<int32_t>()[i];
    if (id < 0 || id >= vocab) {
      throw Error(std::string(op) + ": id " + std::to_string(id) + " at flat position " +
                  std::to_string(i) + " is out of range [0, " + std::to_string(vocab) +
                  "): " + shapes());
    }
    rows[static_cast<size_t>(i)] = id;
  }
  return rows;
}

// Copies the table rows into out (contiguous), widened to F32 through the dtype's traits when
// `widen`.
void gather_rows(const Tensor& weight, const std::vector<int64_t>& rows, bool widen, Tensor& out) {
  const auto count = static_cast<int64_t>(rows.size());
  const int64_t dim = weight.dim(1);
  if (out.numel() == 0) return;
  const Tensor w = weight.contiguous();
  const size_t row_bytes = *dtype_bytes(weight.dtype(), static_cast<uint64_t>(dim));
  const size_t out_row_bytes = static_cast<size_t>(dim) * dtype_size(out.dtype());
  const std::byte* src = w.data();
  std::byte* dst = out.mutable_data();
  const auto to_f32 = dtype_traits(weight.dtype()).to_f32;
  parallel_for(0, count, std::max<int64_t>(1, 262144 / static_cast<int64_t>(out_row_bytes)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i) {
                   const std::byte* row =
                       src + static_cast<size_t>(rows[static_cast<size_t>(i)]) * row_bytes;
                   std::byte* to = dst + static_cast<size_t>(i) * out_row_bytes;
                   if (widen) {
                     to_f32(row, reinterpret_cast<float*>(to), static_cast<size_t>(dim));
                   } else {
                     std::memcpy(to, row, row_bytes);
                   }
                 }
               });
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  // Block-quantized tables are widened to F32 row by row through their dtype traits.
  const bool widen = is_quantized(weight.dtype());
  const std::vector<int64_t> rows = embedding_rows("embedding", weight, ids, widen);
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.dim(1));
  Tensor out = Tensor::empty(widen ? DType::F32 : weight.dtype(), out_shape);
  gather_rows(weight, rows, widen, out);
  return out;
}

void embedding_into(const Tensor& weight, const Tensor& ids, Tensor& out) {
  const bool widen = weight.dtype() != DType::F32;
  const std::vector<int64_t> rows = embedding_rows("embedding_into", weight, ids, widen);
  const int64_t numel = static_cast<int64_t>(rows.size()) * weight.dim(1);
  if (out.dtype() != DType::F32 || !out.is_contiguous() || out.numel() != numel) {
    throw Error("embedding_into: output must be a contiguous F32 tensor of " +
                std::to_string(numel) + " elements, got " + dtype_str(out.dtype()) + " " +
                shape_to_string(out.shape()));
  }
  gather_rows(weight, rows, widen, out);
}

Tensor concat(std::span<const Tensor> tensors, int64_t axis) {
  if (tensors.empty()) throw Error("concat: no tensors given");
  const auto shapes = [&] {
    std::string s;
    for (const Tensor& t : tensors) s += (s.empty() ? "" : ", ") + shape_to_string(t.shape());
    return s;
  };
  for (const Tensor& t : tensors) detail::require_defined("concat", t, "a tensor");
  const Tensor& first = tensors.front();
  if (first.rank() == 0) throw Error("concat: tensors must have rank >= 1: " + shapes());
  if (is_quantized(first.dtype()))
    throw Error("concat: quantized dtype " + dtype_str(first.dtype()));
  const int64_t a = detail::normalize_axis("concat", axis, first.rank());
  Shape out_shape = first.shape();
  out_shape[static_cast<size_t>(a)] = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != first.dtype()) {
      throw Error("concat: dtypes differ (" + dtype_str(first.dtype()) + " vs " +
                  dtype_str(t.dtype()) + ")");
    }
    if (t.rank() != first.rank()) throw Error("concat: ranks differ: " + shapes());
    for (int64_t d = 0; d < first.rank(); ++d) {
      if (d != a && t.shape()[static_cast<size_t>(d)] != first.shape()[static_cast<size_t>(d)]) {
        throw Error("concat: shapes differ outside axis " + std::to_string(axis) + ": " + shapes());
      }
    }
    out_shape[static_cast<size_t>(a)] += t.shape()[static_cast<size_t>(a)];
  }
  Tensor out = Tensor::empty(first.dtype(), out_shape);
  if (out.numel() == 0) return out;
  int64_t outer = 1;
  for (int64_t d = 0; d < a; ++d) outer *= out_shape[static_cast<size_t>(d)];
  const int64_t out_block = out.numel() / outer;  // elements per outer index in the output
  const auto elem = static_cast<int64_t>(dtype_size(first.dtype()));
  std::byte* dst = out.mutable_data();
  int64_t col = 0;  // element offset of this tensor's slab within an output block
  for (const Tensor& t : tensors) {
    if (t.numel() == 0) continue;
    const Tensor c = t.contiguous();
    const int64_t block = c.numel() / outer;
    const std::byte* src = c.data();
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + (o * out_block + col) * elem, src + o * block * elem,
                  static_cast<size_t>(block * elem));
    }
    col += block;
  }
  return out;
}

Tensor concat(std::initializer_list<Tensor> tensors, int64_t axis) {
  return concat(std::span<const Tensor>(tensors.begin(), tensors.size()), axis);
}

TopK topk(const Tensor& x, int64_t k) {
  detail::require_float("topk", x);
  if (x.rank() == 0) throw Error("topk: input is a scalar (rank 0)");
  const int64_t n = x.dim(-1);
  if (k < 0 || k > n) {
    throw Error("topk: k = " + std::to_string(k) + " out of range for last dim of shape " +
                shape_to_string(x.shape()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = k;
  TopK result{Tensor::empty(x.dtype(), out_shape), Tensor::empty(DType::I64, out_shape)};
  if (result.values.numel() == 0) return result;
  const int64_t rows = x.numel() / n;
  int64_t* idx = result.indices.mutable_data_as<int64_t>();
  const Tensor src = x.contiguous();
  if (x.dtype() == DType::F64) {
    topk_rows(src.data_as<double>(), rows, n, k, idx);
  } else {
    const Tensor f = to_f32(src);
    topk_rows(f.data_as<float>(), rows, n, k, idx);
  }
  // Values are gathered from the input itself, so F16/BF16 values come back exactly.
  const auto elem = static_cast<int64_t>(dtype_size(x.dtype()));
  const std::byte* in = src.data();
  std::byte* out = result.values.mutable_data();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      std::memcpy(out + (r * k + j) * elem, in + (r * n + idx[r * k + j]) * elem,
                  static_cast<size_t>(elem));
    }
  }
  return result;
}

}  // namespace ember::ops
