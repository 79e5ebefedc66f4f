// Elementwise unary and binary ops with numpy broadcasting over strided views.
//
// Plan: compute the output shape, express every operand as strides over that shape (0 on
// broadcast dims), merge dims that are contiguous for all operands, then walk the flattened
// output in chunks on the thread pool. Each chunk is a run of "rows" along the innermost dim;
// F32 rows go to the SIMD kernels (strided rows are gathered into a small buffer first, so
// the result never depends on the input layout).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"
#include "ops_internal.hpp"

namespace ember::ops {
namespace {

using detail::dtype_str;

constexpr int64_t kGatherPiece = 256;

// Output shape + per-operand strides (operand 0 is the contiguous output), coalesced.
template <size_t kOps>
struct LoopPlan {
  Shape shape;
  std::array<Shape, kOps> strides;
};

template <size_t kOps>
LoopPlan<kOps> coalesce(const Shape& shape, const std::array<Shape, kOps>& strides) {
  LoopPlan<kOps> plan;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims contribute nothing to addressing
    if (!plan.shape.empty()) {
      bool mergeable = true;
      for (size_t k = 0; k < kOps; ++k) {
        if (plan.strides[k].back() != strides[k][d] * shape[d]) mergeable = false;
      }
      if (mergeable) {
        plan.shape.back() *= shape[d];
        for (size_t k = 0; k < kOps; ++k) plan.strides[k].back() = strides[k][d];
        continue;
      }
    }
    plan.shape.push_back(shape[d]);
    for (size_t k = 0; k < kOps; ++k) plan.strides[k].push_back(strides[k][d]);
  }
  if (plan.shape.empty()) {
    plan.shape.push_back(1);
    for (size_t k = 0; k < kOps; ++k) plan.strides[k].push_back(0);
  }
  return plan;
}

// Calls fn(offsets, len) for every run of the innermost dim, in parallel chunks; offsets are
// element offsets of the run's first element for each operand.
template <size_t kOps, typename Fn>
void for_each_run(const LoopPlan<kOps>& plan, int64_t grain, const Fn& fn) {
  const auto rank = static_cast<int64_t>(plan.shape.size());
  const int64_t inner = plan.shape.back();
  const int64_t numel = shape_numel(plan.shape);
  if (numel == 0) return;
  parallel_for(0, numel, grain, [&](int64_t lo, int64_t hi) {
    int64_t idx = lo;
    while (idx < hi) {
      const int64_t row = idx / inner;
      const int64_t col = idx % inner;
      const int64_t len = std::min(inner - col, hi - idx);
      std::array<int64_t, kOps> off{};
      int64_t rest = row;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const auto ud = static_cast<size_t>(d);
        const int64_t i = rest % plan.shape[ud];
        rest /= plan.shape[ud];
        for (size_t k = 0; k < kOps; ++k) off[k] += i * plan.strides[k][ud];
      }
      for (size_t k = 0; k < kOps; ++k) off[k] += col * plan.strides[k].back();
      fn(off, len);
      idx += len;
    }
  });
}

// Strides of `t` viewed with the (broadcast) output shape.
Shape broadcast_strides(const Tensor& t, const Shape& out_shape) {
  Shape strides(out_shape.size(), 0);
  const size_t lead = out_shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i) {
    strides[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  }
  return strides;
}

// Pointer to `len` floats of a strided run: the data itself when unit-stride, else a copy in buf.
const float* gather_run(const float* p, int64_t stride, int64_t len, float* buf) {
  if (stride == 1) return p;
  if (stride == 0) {
    std::fill(buf, buf + len, *p);
  } else {
    for (int64_t i = 0; i < len; ++i) buf[i] = p[i * stride];
  }
  return buf;
}

bool is_cheap(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Relu:
    case UnaryOp::Square:
      return true;
    default:
      return false;
  }
}

DType promote(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() == b.dtype()) return a.dtype();
  if (a.dtype() == DType::F64 || b.dtype() == DType::F64) return DType::F64;
  (void)op;
  return DType::F32;  // F32 with F16/BF16, or F16 with BF16
}

// F64 computation: inputs converted to F64 (if needed), scalar loops.
Tensor unary_f64_tensor(UnaryOp op, const Tensor& x) {
  const Tensor in = x.dtype() == DType::F64 ? x : x.to(DType::F64);
  Tensor out = Tensor::empty(DType::F64, in.shape());
  const LoopPlan<2> plan = coalesce<2>(in.shape(), {contiguous_strides(in.shape()), in.strides()});
  const double* src = in.data_as<double>();
  double* dst = out.mutable_data_as<double>();
  for_each_run(plan, 8192, [&](const std::array<int64_t, 2>& off, int64_t len) {
    const int64_t s = plan.strides[1].back();
    for (int64_t i = 0; i < len; ++i)
      dst[off[0] + i] = kernels::ref::unary(op, src[off[1] + i * s]);
  });
  return out;
}

}  // namespace

Tensor scalar(double value, DType dtype) {
  return full({}, value, dtype);
}

Tensor full(Shape shape, double value, DType dtype) {
  if (is_quantized(dtype)) throw Error("full: quantized dtype " + dtype_str(dtype));
  // Build one element of the dtype through Tensor::to, then replicate its bytes.
  const double one[1] = {value};
  const Tensor element = Tensor::from_values<double>(DType::F64, {1}, one).to(dtype);
  Tensor out = Tensor::empty(dtype, std::move(shape));
  const size_t size = dtype_size(dtype);
  std::byte* dst = out.mutable_data();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * static_cast<int64_t>(size), element.data(), size);
  return out;
}

Shape broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw Error("cannot broadcast shapes " + shape_to_string(a) + " and " + shape_to_string(b));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x) {
  const char* name = kernels::unary_op_name(op);
  detail::require_float(name, x);
  if (x.dtype() == DType::F64) return unary_f64_tensor(op, x);
  // F16/BF16 -> contiguous F32; F32 views are read in place.
  const Tensor in = x.dtype() == DType::F32 ? x : to_f32(x);
  Tensor out = Tensor::empty(DType::F32, in.shape());
  const LoopPlan<2> plan = coalesce<2>(in.shape(), {contiguous_strides(in.shape()), in.strides()});
  const float* src = in.data_as<float>();
  float* dst = out.mutable_data_as<float>();
  const int64_t grain = is_cheap(op) ? 32768 : 4096;
  const int64_t in_stride = plan.strides[1].back();
  for_each_run(plan, grain, [&](const std::array<int64_t, 2>& off, int64_t len) {
    if (in_stride == 1) {
      kernels::unary_f32(op, src + off[1], dst + off[0], static_cast<size_t>(len));
      return;
    }
    float buf[kGatherPiece];
    for (int64_t p = 0; p < len; p += kGatherPiece) {
      const int64_t m = std::min(kGatherPiece, len - p);
      const float* run = gather_run(src + off[1] + p * in_stride, in_stride, m, buf);
      kernels::unary_f32(op, run, dst + off[0] + p, static_cast<size_t>(m));
    }
  });
  return x.dtype() == DType::F32 ? out : convert_to(out, x.dtype());
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_op_name(op);
  detail::require_float(name, a, "lhs");
  detail::require_float(name, b, "rhs");
  Shape shape;
  try {
    shape = broadcast_shapes(a.shape(), b.shape());
  } catch (const Error&) {
    throw Error(std::string(name) + ": cannot broadcast shapes " + shape_to_string(a.shape()) +
                " and " + shape_to_string(b.shape()));
  }
  const DType out_dtype = promote(name, a, b);
  if (out_dtype == DType::F64) {
    const Tensor a64 = a.dtype() == DType::F64 ? a : a.to(DType::F64);
    const Tensor b64 = b.dtype() == DType::F64 ? b : b.to(DType::F64);
    Tensor out = Tensor::empty(DType::F64, shape);
    const LoopPlan<3> plan = coalesce<3>(
        shape,
        {contiguous_strides(shape), broadcast_strides(a64, shape), broadcast_strides(b64, shape)});
    const double* pa = a64.data_as<double>();
    const double* pb = b64.data_as<double>();
    double* dst = out.mutable_data_as<double>();
    const int64_t sa = plan.strides[1].back();
    const int64_t sb = plan.strides[2].back();
    for_each_run(plan, 16384, [&](const std::array<int64_t, 3>& off, int64_t len) {
      for (int64_t i = 0; i < len; ++i) {
        dst[off[0] + i] = kernels::ref::binary(op, pa[off[1] + i * sa], pb[off[2] + i * sb]);
      }
    });
    return out;
  }
  const Tensor a32 = a.dtype() == DType::F32 ? a : to_f32(a);
  const Tensor b32 = b.dtype() == DType::F32 ? b : to_f32(b);
  Tensor out = Tensor::empty(DType::F32, shape);
  const LoopPlan<3> plan = coalesce<3>(
      shape,
      {contiguous_strides(shape), broadcast_strides(a32, shape), broadcast_strides(b32, shape)});
  const float* pa = a32.data_as<float>();
  const float* pb = b32.data_as<float>();
  float* dst = out.mutable_data_as<float>();
  const int64_t sa = plan.strides[1].back();
  const int64_t sb = plan.strides[2].back();
  const int64_t grain = op == BinaryOp::Pow ? 4096 : 32768;
  for_each_run(plan, grain, [&](const std::array<int64_t, 3>& off, int64_t len) {
    const auto n = static_cast<size_t>(len);
    if (sa == 1 && sb == 1)
      return kernels::binary_f32(op, pa + off[1], pb + off[2], dst + off[0], n);
    if (sa == 1 && sb == 0) {
      return kernels::binary_f32_scalar_rhs(op, pa + off[1], pb[off[2]], dst + off[0], n);
    }
    if (sa == 0 && sb == 1) {
      return kernels::binary_f32_scalar_lhs(op, pa[off[1]], pb + off[2], dst + off[0], n);
    }
    float buf_a[kGatherPiece];
    float buf_b[kGatherPiece];
    for (int64_t p = 0; p < len; p += kGatherPiece) {
      const int64_t m = std::min(kGatherPiece, len - p);
      const float* ra = gather_run(pa + off[1] + p * sa, sa, m, buf_a);
      const float* rb = gather_run(pb + off[2] + p * sb, sb, m, buf_b);
      kernels::binary_f32(op, ra, rb, dst + off[0] + p, static_cast<size_t>(m));
    }
  });
  return out_dtype == DType::F32 ? out : convert_to(out, out_dtype);
}

Tensor neg(const Tensor& x) {
  return unary(UnaryOp::Neg, x);
}
Tensor abs(const Tensor& x) {
  return unary(UnaryOp::Abs, x);
}
Tensor sqrt(const Tensor& x) {
  return unary(UnaryOp::Sqrt, x);
}
Tensor rsqrt(const Tensor& x) {
  return unary(UnaryOp::Rsqrt, x);
}
Tensor exp(const Tensor& x) {
  return unary(UnaryOp::Exp, x);
}
Tensor log(const Tensor& x) {
  return unary(UnaryOp::Log, x);
}
Tensor tanh(const Tensor& x) {
  return unary(UnaryOp::Tanh, x);
}
Tensor sigmoid(const Tensor& x) {
  return unary(UnaryOp::Sigmoid, x);
}
Tensor relu(const Tensor& x) {
  return unary(UnaryOp::Relu, x);
}
Tensor silu(const Tensor& x) {
  return unary(UnaryOp::Silu, x);
}
Tensor gelu(const Tensor& x) {
  return unary(UnaryOp::Gelu, x);
}
Tensor gelu_tanh(const Tensor& x) {
  return unary(UnaryOp::GeluTanh, x);
}
Tensor square(const Tensor& x) {
  return unary(UnaryOp::Square, x);
}
Tensor reciprocal(const Tensor& x) {
  return unary(UnaryOp::Reciprocal, x);
}
Tensor sin(const Tensor& x) {
  return unary(UnaryOp::Sin, x);
}
Tensor cos(const Tensor& x) {
  return unary(UnaryOp::Cos, x);
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Max, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Min, a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Pow, a, b);
}

}  // namespace ember::ops
