// Highway SIMD kernels with run-time dispatch: elementwise F32 ops, softmax, norms and the
// F16/BF16 <-> F32 conversions. This file is compiled once per SIMD target by
// hwy/foreach_target.h; the HWY_ONCE section at the end holds the dispatching entry points.
// Scalar references that define the expected results live in kernels_ref.cpp.
// GCC contracts a*b+c into FMA wherever it likes in C++ (even with -std=c++20), which made the
// full-vector body and the one-lane tail round differently. Contraction is off in this file so
// a kernel's result depends only on the input value, not on its position or the input layout;
// fused operations are spelled out with MulAdd where wanted.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#undef HWY_TARGET_INCLUDE
// Resolved through the include path (<root>/include), so no build-system change is needed.
#define HWY_TARGET_INCLUDE "../src/core/kernels_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h re-includes this file; everything below runs once per target.
#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/kernels.hpp"
#include "quant_tiles.hpp"

HWY_BEFORE_NAMESPACE();
namespace ember::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------------------------------------
// Per-vector math. Each takes a tag and a vector so the same code serves full vectors and the
// one-lane tail (CappedTag<float, 1>), which keeps tails bit-identical to the body.

// NaN -> 0 and clamp into [lo, hi]: Highway's Exp/Expm1 convert x / ln2 to int32, which for
// NaN or huge inputs is undefined behaviour on the EMU128/SCALAR targets (static_cast).
template <class D, class V>
HWY_INLINE V SanitizeForExp(D d, V x, float lo, float hi) {
  const V no_nan = hn::IfThenElse(hn::IsNaN(x), hn::Zero(d), x);
  return hn::Min(hn::Max(no_nan, hn::Set(d, lo)), hn::Set(d, hi));
}

template <class D, class V>
HWY_INLINE V ExpV(D d, V x) {
  // Highway's Exp is valid on [-104, 104]: below it returns 0; above ln(FLT_MAX) the true
  // result is +inf.
  V r = hn::Exp(d, SanitizeForExp(d, x, -105.0f, 89.0f));
  r = hn::IfThenElse(hn::Gt(x, hn::Set(d, 88.75f)),
                     hn::Set(d, std::numeric_limits<float>::infinity()), r);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

template <class D, class V>
HWY_INLINE V LogV(D d, V x) {
  V r = hn::Log(d, x);
  // Highway's Log is defined on (0, FLT_MAX]; patch the IEEE special cases.
  const V zero = hn::Zero(d);
  const V inf = hn::Set(d, std::numeric_limits<float>::infinity());
  r = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), r);
  r = hn::IfThenElse(hn::Lt(x, zero), hn::Set(d, std::numeric_limits<float>::quiet_NaN()), r);
  r = hn::IfThenElse(hn::Eq(x, inf), inf, r);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

template <class D, class V>
HWY_INLINE V TanhV(D d, V x) {
  // tanh(x) rounds to +-1 for |x| > 9.1; Highway's Tanh returns +-1 beyond 18.7 anyway.
  return hn::IfThenElse(hn::IsNaN(x), x, hn::Tanh(d, SanitizeForExp(d, x, -20.0f, 20.0f)));
}

// x / (1 + exp(-x)): the form used by both SiLU and the sigmoid form of tanh-GELU.
template <class D, class V>
HWY_INLINE V DivOnePlusExpNeg(D d, V num, V x) {
  return hn::Div(num, hn::Add(hn::Set(d, 1.0f), ExpV(d, hn::Neg(x))));
}

// erfc(z) for z >= 0 with relative error below ~1.2e-7 (Chebyshev fit from Numerical Recipes,
// "erfcc"); relative accuracy matters because GELU multiplies it by x for negative x.
template <class D, class V>
HWY_INLINE V ErfcNonNegV(D d, V z) {
  const V t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(hn::Set(d, 0.5f), z, hn::Set(d, 1.0f)));
  V p = hn::Set(d, 0.17087277f);
  p = hn::MulAdd(p, t, hn::Set(d, -0.82215223f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.48851587f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.13520398f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.27886807f));
  p = hn::MulAdd(p, t, hn::Set(d, -0.18628806f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.09678418f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.37409196f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.00002368f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.26551223f));
  const V arg = hn::Sub(p, hn::Mul(z, z));
  return hn::Mul(t, ExpV(d, arg));
}

template <class D, class V>
HWY_INLINE V GeluV(D d, V x) {
  const V z = hn::Mul(hn::Abs(x), hn::Set(d, 0.70710678118654752f));
  const V half_c = hn::Mul(hn::Set(d, 0.5f), ErfcNonNegV(d, z));
  // x >= 0: x * (1 - erfc/2); x < 0: x * erfc/2. Never subtracts nearly equal numbers.
  const V pos = hn::Mul(x, hn::Sub(hn::Set(d, 1.0f), half_c));
  const V neg = hn::Mul(x, half_c);
  const V r = hn::IfThenElse(hn::Lt(x, hn::Zero(d)), neg, pos);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

template <class D, class V>
HWY_INLINE V GeluTanhV(D d, V x) {
  // 0.5 (1 + tanh(u)) == sigmoid(2u), which stays accurate for large negative x.
  const V x3 = hn::Mul(hn::Mul(x, x), x);
  const V u = hn::Mul(hn::Set(d, 0.7978845608028654f), hn::MulAdd(hn::Set(d, 0.044715f), x3, x));
  return DivOnePlusExpNeg(d, x, hn::Add(u, u));
}

template <class D, class V>
HWY_INLINE V UnaryV(UnaryOp op, D d, V x) {
  switch (op) {
    case UnaryOp::Neg:
      return hn::Neg(x);
    case UnaryOp::Abs:
      return hn::Abs(x);
    case UnaryOp::Sqrt:
      return hn::Sqrt(x);
    case UnaryOp::Rsqrt:
      return hn::Div(hn::Set(d, 1.0f), hn::Sqrt(x));
    case UnaryOp::Exp:
      return ExpV(d, x);
    case UnaryOp::Log:
      return LogV(d, x);
    case UnaryOp::Tanh:
      return TanhV(d, x);
    case UnaryOp::Sigmoid:
      return DivOnePlusExpNeg(d, hn::Set(d, 1.0f), x);
    case UnaryOp::Relu:
      return hn::IfThenElse(hn::Gt(x, hn::Zero(d)), x,
                            hn::IfThenElse(hn::IsNaN(x), x, hn::Zero(d)));
    case UnaryOp::Silu:
      return DivOnePlusExpNeg(d, x, x);
    case UnaryOp::Gelu:
      return GeluV(d, x);
    case UnaryOp::GeluTanh:
      return GeluTanhV(d, x);
    case UnaryOp::Square:
      return hn::Mul(x, x);
    case UnaryOp::Reciprocal:
      return hn::Div(hn::Set(d, 1.0f), x);
    case UnaryOp::Sin:
    case UnaryOp::Cos:
      break;  // handled by the scalar loop in UnaryF32
  }
  return x;
}

// The switch sits outside the loop: each op instantiates its own loop.
template <UnaryOp kOp>
HWY_INLINE void UnaryLoop(const float* x, float* y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(UnaryV(kOp, d, hn::LoadU(d, x + i)), d, y + i);
  const hn::CappedTag<float, 1> d1;
  for (; i < n; ++i) hn::StoreU(UnaryV(kOp, d1, hn::LoadU(d1, x + i)), d1, y + i);
}

void UnaryF32(UnaryOp op, const float* x, float* y, size_t n) {
  switch (op) {
#define EMBER_UNARY_CASE(name)         \
  case UnaryOp::name:                  \
    UnaryLoop<UnaryOp::name>(x, y, n); \
    return;
    EMBER_UNARY_CASE(Neg)
    EMBER_UNARY_CASE(Abs)
    EMBER_UNARY_CASE(Sqrt)
    EMBER_UNARY_CASE(Rsqrt)
    EMBER_UNARY_CASE(Exp)
    EMBER_UNARY_CASE(Log)
    EMBER_UNARY_CASE(Tanh)
    EMBER_UNARY_CASE(Sigmoid)
    EMBER_UNARY_CASE(Relu)
    EMBER_UNARY_CASE(Silu)
    EMBER_UNARY_CASE(Gelu)
    EMBER_UNARY_CASE(GeluTanh)
    EMBER_UNARY_CASE(Square)
    EMBER_UNARY_CASE(Reciprocal)
#undef EMBER_UNARY_CASE
    case UnaryOp::Sin:
    case UnaryOp::Cos:
      for (size_t i = 0; i < n; ++i) y[i] = ref::unary(op, x[i]);
      return;
  }
}

template <class D, class V>
HWY_INLINE V BinaryV(BinaryOp op, D d, V a, V b) {
  switch (op) {
    case BinaryOp::Add:
      return hn::Add(a, b);
    case BinaryOp::Sub:
      return hn::Sub(a, b);
    case BinaryOp::Mul:
      return hn::Mul(a, b);
    case BinaryOp::Div:
      return hn::Div(a, b);
    case BinaryOp::Max:
    case BinaryOp::Min: {
      // x86 max/min return one operand when either is NaN; propagate NaN instead.
      const V m = op == BinaryOp::Max ? hn::Max(a, b) : hn::Min(a, b);
      return hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::IsNaN(b)), hn::Add(a, b), m);
    }
    case BinaryOp::Pow:
      break;  // scalar loop
  }
  (void)d;
  return a;
}

// kMode: 0 both vectors, 1 scalar rhs, 2 scalar lhs.
template <BinaryOp kOp, int kMode>
HWY_INLINE void BinaryLoop(const float* a, const float* b, float* y, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  if constexpr (kMode == 0) {
    for (; i + lanes <= n; i += lanes) {
      hn::StoreU(BinaryV(kOp, d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, y + i);
    }
    for (; i < n; ++i) {
      hn::StoreU(BinaryV(kOp, d1, hn::LoadU(d1, a + i), hn::LoadU(d1, b + i)), d1, y + i);
    }
  } else if constexpr (kMode == 1) {
    const auto vb = hn::Set(d, *b);
    for (; i + lanes <= n; i += lanes)
      hn::StoreU(BinaryV(kOp, d, hn::LoadU(d, a + i), vb), d, y + i);
    const auto vb1 = hn::Set(d1, *b);
    for (; i < n; ++i) hn::StoreU(BinaryV(kOp, d1, hn::LoadU(d1, a + i), vb1), d1, y + i);
  } else {
    const auto va = hn::Set(d, *a);
    for (; i + lanes <= n; i += lanes)
      hn::StoreU(BinaryV(kOp, d, va, hn::LoadU(d, b + i)), d, y + i);
    const auto va1 = hn::Set(d1, *a);
    for (; i < n; ++i) hn::StoreU(BinaryV(kOp, d1, va1, hn::LoadU(d1, b + i)), d1, y + i);
  }
}

template <int kMode>
void BinaryDispatch(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  switch (op) {
    case BinaryOp::Add:
      return BinaryLoop<BinaryOp::Add, kMode>(a, b, y, n);
    case BinaryOp::Sub:
      return BinaryLoop<BinaryOp::Sub, kMode>(a, b, y, n);
    case BinaryOp::Mul:
      return BinaryLoop<BinaryOp::Mul, kMode>(a, b, y, n);
    case BinaryOp::Div:
      return BinaryLoop<BinaryOp::Div, kMode>(a, b, y, n);
    case BinaryOp::Max:
      return BinaryLoop<BinaryOp::Max, kMode>(a, b, y, n);
    case BinaryOp::Min:
      return BinaryLoop<BinaryOp::Min, kMode>(a, b, y, n);
    case BinaryOp::Pow:
      for (size_t i = 0; i < n; ++i) {
        y[i] = ref::binary(op, a[kMode == 2 ? 0 : i], b[kMode == 1 ? 0 : i]);
      }
      return;
  }
}

void BinaryF32(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  BinaryDispatch<0>(op, a, b, y, n);
}
void BinaryF32ScalarRhs(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  BinaryDispatch<1>(op, a, b, y, n);
}
void BinaryF32ScalarLhs(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  BinaryDispatch<2>(op, a, b, y, n);
}

// ---------------------------------------------------------------------------------------------
// Row reductions.

HWY_INLINE float RowMax(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  auto acc = hn::Set(d, -std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) acc = hn::Max(acc, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, acc));
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Sum of (x[i] - shift)^2 when kSquares, else of x[i].
template <bool kSquares>
HWY_INLINE float RowSum(const float* x, size_t n, float shift) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  auto acc0 = hn::Zero(d);
  auto acc1 = hn::Zero(d);
  const auto vshift = hn::Set(d, shift);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto v0 = hn::Sub(hn::LoadU(d, x + i), vshift);
    const auto v1 = hn::Sub(hn::LoadU(d, x + i + lanes), vshift);
    if constexpr (kSquares) {
      acc0 = hn::MulAdd(v0, v0, acc0);
      acc1 = hn::MulAdd(v1, v1, acc1);
    } else {
      acc0 = hn::Add(acc0, v0);
      acc1 = hn::Add(acc1, v1);
    }
  }
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::Sub(hn::LoadU(d, x + i), vshift);
    acc0 = kSquares ? hn::MulAdd(v, v, acc0) : hn::Add(acc0, v);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) {
    const float v = x[i] - shift;
    s += kSquares ? v * v : v;
  }
  return s;
}

void SoftmaxRowF32(const float* x, float* y, size_t n) {
  if (n == 0) return;
  const float m = RowMax(x, n);
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(d);
  auto acc = hn::Zero(d);
  const auto vm = hn::Set(d, m);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = ExpV(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, y + i);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, acc));
  const auto vm1 = hn::Set(d1, m);
  for (; i < n; ++i) {
    const auto e = ExpV(d1, hn::Sub(hn::LoadU(d1, x + i), vm1));
    hn::StoreU(e, d1, y + i);
    sum += hn::GetLane(e);
  }
  const auto scale = hn::Set(d, 1.0f / sum);
  i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, y + i), scale), d, y + i);
  for (; i < n; ++i) y[i] *= 1.0f / sum;
}

// y = (x - shift) * scale * weight + bias; weight/bias may be null.
HWY_INLINE void ScaleShiftRow(const float* x, float shift, float scale, const float* weight,
                              const float* bias, float* y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto vshift = hn::Set(d, shift);
  const auto vscale = hn::Set(d, scale);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    auto v = hn::Mul(hn::Sub(hn::LoadU(d, x + i), vshift), vscale);
    if (weight) v = hn::Mul(v, hn::LoadU(d, weight + i));
    if (bias) v = hn::Add(v, hn::LoadU(d, bias + i));
    hn::StoreU(v, d, y + i);
  }
  for (; i < n; ++i) {
    float v = (x[i] - shift) * scale;
    if (weight) v *= weight[i];
    if (bias) v += bias[i];
    y[i] = v;
  }
}

void LayerNormRowF32(const float* x, const float* weight, const float* bias, float eps, float* y,
                     size_t n) {
  if (n == 0) return;
  const float mean = RowSum<false>(x, n, 0.0f) / static_cast<float>(n);
  const float var = RowSum<true>(x, n, mean) / static_cast<float>(n);
  ScaleShiftRow(x, mean, 1.0f / std::sqrt(var + eps), weight, bias, y, n);
}

void RmsNormRowF32(const float* x, const float* weight, float eps, float* y, size_t n) {
  if (n == 0) return;
  const float mean_sq = RowSum<true>(x, n, 0.0f) / static_cast<float>(n);
  ScaleShiftRow(x, 0.0f, 1.0f / std::sqrt(mean_sq + eps), weight, nullptr, y, n);
}

// ---------------------------------------------------------------------------------------------
// Conversions. Integer implementations of the exact algorithms in half.hpp, so every target
// (including those without F16C) rounds to nearest even and handles subnormals, inf and NaN
// identically to the scalar reference. (Highway 1.0.3's emulated DemoteTo truncates.)

template <class DF>
HWY_INLINE hn::Vec<DF> F16BitsToF32(DF df, hn::Vec<hn::RebindToSigned<DF>> h) {
  const hn::RebindToSigned<DF> di;
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(di, 0x8000)));
  const auto exp = hn::And(hn::ShiftRight<10>(h), hn::Set(di, 0x1f));
  const auto mant = hn::And(h, hn::Set(di, 0x3ff));
  const auto mant_shifted = hn::ShiftLeft<13>(mant);
  const auto normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(di, 112))), mant_shifted);
  const auto inf_nan = hn::Or(hn::Set(di, 0x7f800000), mant_shifted);
  const auto subnormal = hn::BitCast(di, hn::Mul(hn::ConvertTo(df, mant), hn::Set(df, 0x1p-24f)));
  auto bits = hn::IfThenElse(hn::Eq(exp, hn::Set(di, 0x1f)), inf_nan, normal);
  bits = hn::IfThenElse(hn::Eq(exp, hn::Zero(di)), subnormal, bits);
  return hn::BitCast(df, hn::Or(bits, sign));
}

template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> F32ToF16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const auto x = hn::BitCast(di, v);
  const auto sign = hn::And(hn::ShiftRight<16>(x), hn::Set(di, 0x8000));
  const auto abs = hn::And(x, hn::Set(di, 0x7fffffff));
  // Below the smallest normal half: adding 0.5 makes the FPU round the subnormal mantissa.
  const auto sub = hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, abs), hn::Set(df, 0.5f))),
                           hn::Set(di, 0x3f000000));
  const auto mant_odd = hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 1));
  const auto normal = hn::ShiftRight<13>(
      hn::Add(hn::Add(abs, hn::Set(di, static_cast<int32_t>(0xc8000fffu))), mant_odd));
  auto r = hn::IfThenElse(hn::Lt(abs, hn::Set(di, 0x38800000)), sub, normal);
  r = hn::IfThenElse(hn::Gt(abs, hn::Set(di, 0x477fefff)), hn::Set(di, 0x7c00), r);
  r = hn::IfThenElse(hn::Gt(abs, hn::Set(di, 0x7f800000)), hn::Set(di, 0x7e00), r);
  return hn::Or(r, sign);
}

template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> F32ToBF16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const auto xu = hn::BitCast(du, v);
  const auto hi = hn::ShiftRight<16>(xu);  // logical shift
  const auto rounding = hn::Add(hn::Set(du, 0x7fffu), hn::And(hi, hn::Set(du, 1u)));
  const auto rounded = hn::BitCast(di, hn::ShiftRight<16>(hn::Add(xu, rounding)));
  const auto quiet_nan = hn::BitCast(di, hn::Or(hi, hn::Set(du, 0x40u)));
  const auto abs = hn::And(hn::BitCast(di, xu), hn::Set(di, 0x7fffffff));
  (void)df;
  return hn::IfThenElse(hn::Gt(abs, hn::Set(di, 0x7f800000)), quiet_nan, rounded);
}

template <class DF>
HWY_INLINE void F16ToF32Block(DF df, const uint16_t* src, float* dst) {
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> d16;
  const auto h = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<DF>(), hn::LoadU(d16, src)));
  hn::StoreU(F16BitsToF32(df, h), df, dst);
}

template <class DF>
HWY_INLINE void BF16ToF32Block(DF df, const uint16_t* src, float* dst) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  const auto h = hn::PromoteTo(du, hn::LoadU(d16, src));
  hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(h)), df, dst);
}

template <class DF>
HWY_INLINE void F32ToF16Block(DF df, const float* src, uint16_t* dst) {
  const hn::Rebind<uint16_t, DF> d16;
  hn::StoreU(hn::DemoteTo(d16, F32ToF16Bits(df, hn::LoadU(df, src))), d16, dst);
}

template <class DF>
HWY_INLINE void F32ToBF16Block(DF df, const float* src, uint16_t* dst) {
  const hn::Rebind<uint16_t, DF> d16;
  hn::StoreU(hn::DemoteTo(d16, F32ToBF16Bits(df, hn::LoadU(df, src))), d16, dst);
}

// kKind: 0 f16->f32, 1 bf16->f32, 2 f32->f16, 3 f32->bf16.
template <int kKind, class Src, class Dst>
HWY_INLINE void ConvertLoop(const Src* src, Dst* dst, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  auto block = [&](auto tag) HWY_ATTR {
    if constexpr (kKind == 0) F16ToF32Block(tag, src + i, dst + i);
    if constexpr (kKind == 1) BF16ToF32Block(tag, src + i, dst + i);
    if constexpr (kKind == 2) F32ToF16Block(tag, src + i, dst + i);
    if constexpr (kKind == 3) F32ToBF16Block(tag, src + i, dst + i);
  };
  for (; i + lanes <= n; i += lanes) block(d);
  for (; i < n; ++i) block(d1);
}

void F16ToF32(const uint16_t* src, float* dst, size_t n) {
  ConvertLoop<0>(src, dst, n);
}
void BF16ToF32(const uint16_t* src, float* dst, size_t n) {
  ConvertLoop<1>(src, dst, n);
}
void F32ToF16(const float* src, uint16_t* dst, size_t n) {
  ConvertLoop<2>(src, dst, n);
}
void F32ToBF16(const float* src, uint16_t* dst, size_t n) {
  ConvertLoop<3>(src, dst, n);
}

// ---------------------------------------------------------------------------------------------
// Dot products of one weight row in its storage format with F32 activations: the per-row kernels
// of the linear driver (dtype_traits.hpp). Weights are widened in registers, never in memory.

template <int kKind, class DF>  // kKind: 0 F32, 1 F16, 2 BF16 weights
HWY_INLINE hn::Vec<DF> LoadWeight(DF df, const void* w, size_t i) {
  if constexpr (kKind == 0) {
    return hn::LoadU(df, static_cast<const float*>(w) + i);
  } else {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // F16C's vcvtph2ps (part of Highway's AVX2 and AVX-512 targets): exact like the integer
    // emulation, which cost five times the dot's multiply-adds (SmolLM2 F16 decoding ran at 0.8x
    // llama.cpp's speed). Only a NaN's quiet bit can differ, and the dot is NaN either way.
    if constexpr (kKind == 1) {
      const hn::Rebind<hwy::float16_t, DF> dh;
      return hn::PromoteTo(df, hn::LoadU(dh, static_cast<const hwy::float16_t*>(w) + i));
    }
#endif
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint16_t, DF> d16;
    const auto h = hn::PromoteTo(du, hn::LoadU(d16, static_cast<const uint16_t*>(w) + i));
    if constexpr (kKind == 1) return F16BitsToF32(df, hn::BitCast(hn::RebindToSigned<DF>(), h));
    return hn::BitCast(df, hn::ShiftLeft<16>(h));
  }
}

template <int kKind>
HWY_INLINE float DotLoop(const void* w, const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(d);
  auto acc0 = hn::Zero(d);
  auto acc1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    acc0 = hn::MulAdd(LoadWeight<kKind>(d, w, i), hn::LoadU(d, x + i), acc0);
    acc1 = hn::MulAdd(LoadWeight<kKind>(d, w, i + lanes), hn::LoadU(d, x + i + lanes), acc1);
  }
  for (; i + lanes <= n; i += lanes) {
    acc0 = hn::MulAdd(LoadWeight<kKind>(d, w, i), hn::LoadU(d, x + i), acc0);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += hn::GetLane(hn::Mul(LoadWeight<kKind>(d1, w, i), hn::LoadU(d1, x + i)));
  return sum;
}

float DotF32(const void* w, const float* x, size_t n) {
  return DotLoop<0>(w, x, n);
}
float DotF16(const void* w, const float* x, size_t n) {
  return DotLoop<1>(w, x, n);
}
float DotBF16(const void* w, const float* x, size_t n) {
  return DotLoop<2>(w, x, n);
}

// ---------------------------------------------------------------------------------------------
// Small-M GEMM over weights packed in column panels (kGemmPanel outputs per panel, k-major): the
// register block is kRows activation rows x kPanels panels, so each packed weight is loaded once
// per block and every broadcast activation feeds kPanels * kGemmPanel outputs.

// How far ahead (in k steps of one 64-byte panel line) a block that streams its panels from
// memory prefetches them.
constexpr size_t kPrefetchSteps = 16;

// Few rows leave too few accumulators to hide the FMA latency, so those blocks also split k
// into kSplit interleaved partial sums (added at the end), keeping about 8 chains in flight.
// With `resume`, the sums continue from what y holds (an earlier block of k) instead of zero.
// kStream: the call streams its panels from memory (its later row blocks find them in L2);
// blocks of two rows or more prefetch them (one row measured faster on the hardware prefetcher
// alone). Otherwise `next` (when set) is the next panel group's k block, which this block
// prefetches one 64-byte line a step: the group's first row block would else wait on memory for
// it while the later ones find it in L1.
template <size_t kRows, size_t kPanels, bool kStream, class D>
HWY_INLINE void PanelBlock(D d, const float* x, size_t ldx, size_t k, const float* panel,
                           size_t panel_stride, float* y, size_t ldy, size_t cols, bool resume,
                           const float* next = nullptr) {
  constexpr size_t kLanes = HWY_LANES(float);
  constexpr size_t kVecs = kPanels * kGemmPanel / kLanes;
  constexpr size_t kPanelVecs = kGemmPanel / kLanes;
  static_assert(kGemmPanel % kLanes == 0, "a panel must be whole vectors");
  constexpr size_t kSplit = kRows * kVecs >= 8 ? 1 : 8 / (kRows * kVecs);
  using V = hn::Vec<D>;
  V acc[kSplit][kRows][kVecs];
  for (size_t s = 0; s < kSplit; ++s)
    for (size_t r = 0; r < kRows; ++r)
      for (size_t v = 0; v < kVecs; ++v) acc[s][r][v] = hn::Zero(d);
  HWY_ALIGN float tail[kPanels * kGemmPanel];
  if (resume) {
    for (size_t r = 0; r < kRows; ++r) {
      const float* in = y + r * ldy;
      if (cols != kPanels * kGemmPanel) {
        std::copy(in, in + cols, tail);
        in = tail;
      }
      for (size_t v = 0; v < kVecs; ++v) acc[0][r][v] = hn::LoadU(d, in + v * kLanes);
    }
  }
  const auto step = [&](size_t s, size_t kk) HWY_ATTR {
    if constexpr (kStream && kRows > 1) {
      if (kk + kPrefetchSteps < k) {
        for (size_t p = 0; p < kPanels; ++p)
          hwy::Prefetch(panel + p * panel_stride + (kk + kPrefetchSteps) * kGemmPanel);
      }
    }
    if constexpr (!kStream) {
      if (next != nullptr) {
        for (size_t p = 0; p < kPanels; ++p)
          hwy::Prefetch(next + p * panel_stride + kk * kGemmPanel);
      }
    }
    V w[kVecs];
    for (size_t v = 0; v < kVecs; ++v) {
      w[v] = hn::LoadU(
          d, panel + (v / kPanelVecs) * panel_stride + kk * kGemmPanel + (v % kPanelVecs) * kLanes);
    }
    for (size_t r = 0; r < kRows; ++r) {
      const V xr = hn::Set(d, x[r * ldx + kk]);
      for (size_t v = 0; v < kVecs; ++v) acc[s][r][v] = hn::MulAdd(xr, w[v], acc[s][r][v]);
    }
  };
  size_t kk = 0;
  for (; kk + kSplit <= k; kk += kSplit)
    for (size_t s = 0; s < kSplit; ++s) step(s, kk + s);
  for (; kk < k; ++kk) step(0, kk);
  for (size_t s = 1; s < kSplit; ++s)
    for (size_t r = 0; r < kRows; ++r)
      for (size_t v = 0; v < kVecs; ++v) acc[0][r][v] = hn::Add(acc[0][r][v], acc[s][r][v]);
  for (size_t r = 0; r < kRows; ++r) {
    float* out = cols == kPanels * kGemmPanel ? y + r * ldy : tail;
    for (size_t v = 0; v < kVecs; ++v) hn::StoreU(acc[0][r][v], d, out + v * kLanes);
    if (out == tail) std::copy(tail, tail + cols, y + r * ldy);
  }
}

// All rows of x against panels [p0, p0 + kPanels) over one block of k (x, panels and y advanced
// to it; panel_stride is a whole panel's): blocks of kRows rows, then the leftover rows in
// blocks of 4, 2 and 1.
template <size_t kRows, size_t kPanels, bool kStream, class D>
HWY_INLINE void PanelColumns(D d, const float* x, size_t ldx, size_t m, size_t k,
                             const float* panels, size_t panel_stride, size_t p0, size_t n,
                             float* y, size_t ldy, bool resume, const float* next = nullptr) {
  const float* panel = panels + p0 * panel_stride;
  const size_t col0 = p0 * kGemmPanel;
  const size_t cols = std::min(kPanels * kGemmPanel, n - col0);
  size_t i = 0;
  for (; i + kRows <= m; i += kRows)
    PanelBlock<kRows, kPanels, kStream>(d, x + i * ldx, ldx, k, panel, panel_stride,
                                        y + i * ldy + col0, ldy, cols, resume,
                                        i == 0 ? next : nullptr);
  if constexpr (kRows > 4) {
    if (i + 4 <= m) {
      PanelBlock<4, kPanels, kStream>(d, x + i * ldx, ldx, k, panel, panel_stride,
                                      y + i * ldy + col0, ldy, cols, resume);
      i += 4;
    }
  }
  if (i + 2 <= m) {
    PanelBlock<2, kPanels, kStream>(d, x + i * ldx, ldx, k, panel, panel_stride, y + i * ldy + col0,
                                    ldy, cols, resume);
    i += 2;
  }
  if (i < m)
    PanelBlock<1, kPanels, kStream>(d, x + i * ldx, ldx, k, panel, panel_stride, y + i * ldy + col0,
                                    ldy, cols, resume);
}

// Panels [p0, p1) over one block of k: kPanels at a time, then one at a time. Unless the call
// streams, each group's first row block prefetches the next group's k block (bit-identical sums;
// Zen 3, one thread, bart-base's decoder and head at 32-48 rows: 5-14% more multiply-adds a
// second, 0-4% at 64, none from 96 on, where more row blocks share the wait).
template <size_t kRows, size_t kPanels, bool kStream, class D>
HWY_INLINE void PanelRange(D d, const float* x, size_t ldx, size_t m, size_t k, const float* panels,
                           size_t panel_stride, size_t p0, size_t p1, size_t n, float* y,
                           size_t ldy, bool resume) {
  size_t p = p0;
  for (; p + kPanels <= p1; p += kPanels) {
    const bool prefetch_next = !kStream && p + 2 * kPanels <= p1;
    PanelColumns<kRows, kPanels, kStream>(
        d, x, ldx, m, k, panels, panel_stride, p, n, y, ldy, resume,
        prefetch_next ? panels + (p + kPanels) * panel_stride : nullptr);
  }
  for (; p < p1; ++p)
    PanelColumns<kRows, 1, kStream>(d, x, ldx, m, k, panels, panel_stride, p, n, y, ldy, resume);
}

// k is cut into blocks of kGemmKBlock: within one, each panel group's weights (32 KiB for
// AVX-512's pair, 16 KiB for one panel) stay in L1 while every row of x passes them, and the x
// rows' block stays in L2 while the panels pass; the sums carry over between blocks through y.
// (Unblocked, a panel pair at k = 3072 is 384 KiB, streamed from L2 or L3 once per register
// block of rows.)
void GemmPanelsF32(const float* x, size_t ldx, size_t m, size_t k, const float* panels, size_t p0,
                   size_t p1, size_t n, float* y, size_t ldy) {
  const hn::ScalableTag<float> d;
  // Register blocks sized to the register file with room for the weights and one broadcast:
  // 8 rows x 2 panels (16 accumulators of 32) with 512-bit vectors, 6 rows x 1 panel (12 of 16)
  // with 256-bit ones, 4 x 1 (16 of 32 with AVX's 128-bit forms, or NEON) otherwise.
  constexpr size_t kLanes = HWY_LANES(float);
  constexpr size_t kRows = kLanes >= 16 ? 8 : kLanes == 8 ? 6 : 4;
  constexpr size_t kPanels = kLanes >= 16 ? 2 : 1;
  const size_t stride = k * kGemmPanel;
  // Up to a few register blocks of rows (a decode step's beams), the call is bound by streaming
  // the weights from memory: k is not blocked, so the panels are read whole and in order, one
  // stream (k blocks cost T5's batch-1 beam search 28% of its time), while a panel (48-192 KiB
  // at k = 768-3072) stays in L2 for the row blocks after the first. Zen 3, bart-base's decoder
  // and head, one thread, quiet host (`bench_core --stream`): 4 rows 16.2-17.3 -> 19.0-19.8 GB/s
  // of weights with the prefetch (a busier host showed no gain there); 8 rows, k-blocked before,
  // 10.7-11.1 -> 14.1-14.3 (held on the busier host).
  constexpr size_t kStreamBlocks = 4;
  if (m <= kStreamBlocks * kRows) {
    PanelRange<kRows, kPanels, true>(d, x, ldx, m, k, panels, stride, p0, p1, n, y, ldy, false);
    return;
  }
  size_t k0 = 0;
  do {  // once at k = 0, which stores zeros
    PanelRange<kRows, kPanels, false>(d, x + k0, ldx, m, std::min(kGemmKBlock, k - k0),
                                      panels + k0 * kGemmPanel, stride, p0, p1, n, y, ldy, k0 > 0);
    k0 += kGemmKBlock;
  } while (k0 < k);
}

// ---------------------------------------------------------------------------------------------
// Attention for a few query rows and the log-softmax of beam scoring. A decode step's (beam,
// head) products are too small for a GEMM: BLAS would pack the cached keys and values on every
// call. Here the keys and values are read where they are.

void DotRowsF32(const float* q, const float* k, size_t stride, size_t n, size_t d, float scale,
                float* scores) {
  for (size_t j = 0; j < n; ++j) scores[j] = scale * DotLoop<0>(k + j * stride, q, d);
}

// out[i..] over one group of kVecs vectors (or one lane with D = CappedTag<float, 1>): each lane
// sums its column along the rows in order.
template <size_t kVecs, class D>
HWY_INLINE void WeightedColumns(D d, const float* p, const float* v, size_t stride, size_t n,
                                float* out) {
  const size_t lanes = hn::Lanes(d);
  hn::Vec<D> acc[kVecs];
  for (size_t c = 0; c < kVecs; ++c) acc[c] = hn::Zero(d);
  for (size_t j = 0; j < n; ++j) {
    const auto weight = hn::Set(d, p[j]);
    const float* row = v + j * stride;
    for (size_t c = 0; c < kVecs; ++c)
      acc[c] = hn::MulAdd(weight, hn::LoadU(d, row + c * lanes), acc[c]);
  }
  for (size_t c = 0; c < kVecs; ++c) hn::StoreU(acc[c], d, out + c * lanes);
}

void WeightedRowsF32(const float* p, const float* v, size_t stride, size_t n, size_t d,
                     float* out) {
  const hn::ScalableTag<float> df;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  // Four independent chains hide the multiply-add latency (a head of 64 is one group on
  // AVX-512).
  for (; i + 4 * lanes <= d; i += 4 * lanes) WeightedColumns<4>(df, p, v + i, stride, n, out + i);
  for (; i + lanes <= d; i += lanes) WeightedColumns<1>(df, p, v + i, stride, n, out + i);
  for (; i < d; ++i) WeightedColumns<1>(d1, p, v + i, stride, n, out + i);
}

size_t FirstAboveF32(const float* x, size_t n, float base, float threshold) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto vb = hn::Set(d, base);
  const auto vt = hn::Set(d, threshold);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto a = hn::Gt(hn::Add(hn::LoadU(d, x + i), vb), vt);
    const auto b = hn::Gt(hn::Add(hn::LoadU(d, x + i + lanes), vb), vt);
    if (!hn::AllFalse(d, hn::Or(a, b))) break;
  }
  for (; i < n; ++i)
    if (x[i] + base > threshold) return i;
  return n;
}

void LogSoftmaxRowF32(const float* x, float* y, size_t n) {
  if (n == 0) return;
  const float m = RowMax(x, n);
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const hn::Repartition<double, decltype(d)> dd;
  const hn::Rebind<float, decltype(dd)> dhalf;
  const size_t lanes = hn::Lanes(d), wide = hn::Lanes(dd);
  const auto vm = hn::Set(d, m);
  // In double: over a vocabulary row of 50k terms an F32 sum would drift by ~1e-4 relative,
  // which shifts every log-prob by as much. The exponentials are widened from a store (every
  // target, the one-lane scalar one included, has these loads).
  // Two vectors a step over four sums keep the double additions' latency off the critical path.
  HWY_ALIGN float e[2 * HWY_LANES(float)];
  hn::Vec<decltype(dd)> acc[4] = {hn::Zero(dd), hn::Zero(dd), hn::Zero(dd), hn::Zero(dd)};
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    hn::Store(ExpV(d, hn::Sub(hn::LoadU(d, x + i), vm)), d, e);
    hn::Store(ExpV(d, hn::Sub(hn::LoadU(d, x + i + lanes), vm)), d, e + lanes);
    for (size_t j = 0; j < 2 * lanes; j += wide) {
      auto& a = acc[(j / wide) % 4];
      a = hn::Add(a, hn::PromoteTo(dd, hn::Load(dhalf, e + j)));
    }
  }
  double sum =
      hn::GetLane(hn::SumOfLanes(dd, hn::Add(hn::Add(acc[0], acc[1]), hn::Add(acc[2], acc[3]))));
  const auto vm1 = hn::Set(d1, m);
  for (size_t t = i; t < n; ++t) sum += hn::GetLane(ExpV(d1, hn::Sub(hn::LoadU(d1, x + t), vm1)));
  const auto shift = static_cast<float>(std::log(sum));
  // (x - max) - log(sum): rounded twice, as the reference does.
  const auto vs = hn::Set(d, shift);
  for (i = 0; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Sub(hn::Sub(hn::LoadU(d, x + i), vm), vs), d, y + i);
  for (; i < n; ++i) y[i] = (x[i] - m) - shift;
}

}  // namespace HWY_NAMESPACE
}  // namespace ember::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

namespace ember::kernels {

HWY_EXPORT(UnaryF32);
HWY_EXPORT(BinaryF32);
HWY_EXPORT(BinaryF32ScalarRhs);
HWY_EXPORT(BinaryF32ScalarLhs);
HWY_EXPORT(SoftmaxRowF32);
HWY_EXPORT(LayerNormRowF32);
HWY_EXPORT(RmsNormRowF32);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(BF16ToF32);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(F32ToBF16);
HWY_EXPORT(DotF32);
HWY_EXPORT(DotF16);
HWY_EXPORT(DotBF16);
HWY_EXPORT(GemmPanelsF32);
HWY_EXPORT(DotRowsF32);
HWY_EXPORT(WeightedRowsF32);
HWY_EXPORT(LogSoftmaxRowF32);
HWY_EXPORT(FirstAboveF32);

namespace {
// Captured once, before any limiting: SupportedAndGeneratedTargets() reflects the current mock.
// The quantized kernels' file is built for these targets and AVX3_DL, so its list is the union.
const std::vector<int64_t>& available_targets() {
  static const std::vector<int64_t> targets = quant_simd_targets();
  return targets;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// Position of `name` in the best-first list, or -1. Case-insensitive; "scalar" also names
// EMU128, the portable target that stands in for SCALAR in builds that have it.
int64_t target_index(const std::vector<int64_t>& targets, const std::string& name) {
  const std::string wanted = upper(name);
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string target = hwy::TargetName(targets[i]);
    if (wanted == target || (wanted == "SCALAR" && target == "EMU128")) {
      return static_cast<int64_t>(i);
    }
  }
  return -1;
}

// The targets dispatch may use: all the CPU's, or with EMBER_SIMD=NAME that target and the
// ones below it (so a test run on an AVX-512 machine takes the AVX2, SSE4 or scalar paths).
// Read once, before the first dispatch; an unknown name throws from every kernel call.
const std::vector<int64_t>& allowed_targets() {
  static const std::vector<int64_t> targets = [] {
    const std::vector<int64_t>& all = available_targets();
    const char* env = std::getenv("EMBER_SIMD");
    if (env == nullptr || *env == '\0') return all;
    const int64_t index = target_index(all, env);
    if (index < 0) {
      std::string names;
      for (int64_t target : all)
        names += std::string(names.empty() ? "" : ", ") + hwy::TargetName(target);
      throw Error("EMBER_SIMD: unknown or unsupported SIMD target '" + std::string(env) +
                  "' (this CPU and build offer " + names + ")");
    }
    std::vector<int64_t> allowed(all.begin() + index, all.end());
    int64_t mask = 0;
    for (int64_t target : allowed) mask |= target;
    hwy::SetSupportedTargetsForTest(mask);
    return allowed;
  }();
  return targets;
}

// Every dispatching entry point goes through here so EMBER_SIMD applies before Highway first
// picks a target (a function-local static: one guarded load per call after the first).
void apply_simd_limit() {
  allowed_targets();
}
}  // namespace

void unary_f32(UnaryOp op, const float* x, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(UnaryF32)(op, x, y, n);
}
void binary_f32(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(BinaryF32)(op, a, b, y, n);
}
void binary_f32_scalar_rhs(BinaryOp op, const float* a, float b, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(BinaryF32ScalarRhs)(op, a, &b, y, n);
}
void binary_f32_scalar_lhs(BinaryOp op, float a, const float* b, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(BinaryF32ScalarLhs)(op, &a, b, y, n);
}
void softmax_row_f32(const float* x, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(SoftmaxRowF32)(x, y, n);
}
void layer_norm_row_f32(const float* x, const float* weight, const float* bias, float eps, float* y,
                        size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(LayerNormRowF32)(x, weight, bias, eps, y, n);
}
void rms_norm_row_f32(const float* x, const float* weight, float eps, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(RmsNormRowF32)(x, weight, eps, y, n);
}
float dot_f32(const void* w, const float* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotF32)(w, x, n);
}
float dot_f16(const void* w, const float* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotF16)(w, x, n);
}
float dot_bf16(const void* w, const float* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotBF16)(w, x, n);
}

void gemm_panels_f32(const float* x, size_t ldx, size_t m, size_t k, const float* panels, size_t p0,
                     size_t p1, size_t n, float* y, size_t ldy) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(GemmPanelsF32)(x, ldx, m, k, panels, p0, p1, n, y, ldy);
}
void dot_rows_f32(const float* q, const float* k, size_t stride, size_t n, size_t d, float scale,
                  float* scores) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsF32)(q, k, stride, n, d, scale, scores);
}
void weighted_rows_f32(const float* p, const float* v, size_t stride, size_t n, size_t d,
                       float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(WeightedRowsF32)(p, v, stride, n, d, out);
}
void log_softmax_row_f32(const float* x, float* y, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(LogSoftmaxRowF32)(x, y, n);
}
size_t first_above_f32(const float* x, size_t n, float base, float threshold) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(FirstAboveF32)(x, n, base, threshold);
}

std::vector<std::string> simd_targets() {
  std::vector<std::string> names;
  for (int64_t target : allowed_targets()) names.emplace_back(hwy::TargetName(target));
  return names;
}

void simd_force_target(const std::string& name) {
  const std::vector<int64_t>& targets = allowed_targets();
  if (name.empty()) {
    // Back to what EMBER_SIMD allows (0: no mock, every target the CPU has).
    int64_t mask = 0;
    if (targets.size() != available_targets().size()) {
      for (int64_t target : targets) mask |= target;
    }
    hwy::SetSupportedTargetsForTest(mask);
    return;
  }
  const int64_t index = target_index(targets, name);
  if (index < 0) throw Error("simd_force_target: target '" + name + "' is not available");
  // The target and those below it: a file not built for it (AVX3_DL is only in the quantized
  // kernels') takes its best one below, as under EMBER_SIMD.
  int64_t mask = 0;
  for (size_t i = static_cast<size_t>(index); i < targets.size(); ++i) mask |= targets[i];
  hwy::SetSupportedTargetsForTest(mask);
}

std::string simd_active_target() {
  apply_simd_limit();
  return quant_active_target();
}

namespace {
void dispatch_f16_to_f32(const uint16_t* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(F16ToF32)(src, dst, n);
}
void dispatch_bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(BF16ToF32)(src, dst, n);
}
void dispatch_f32_to_f16(const float* src, uint16_t* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(F32ToF16)(src, dst, n);
}
void dispatch_f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(F32ToBF16)(src, dst, n);
}
}  // namespace

}  // namespace ember::kernels

namespace ember {

void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n) {
  kernels::dispatch_f16_to_f32(src, dst, n);
}
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  kernels::dispatch_bf16_to_f32(src, dst, n);
}
void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n) {
  kernels::dispatch_f32_to_f16(src, dst, n);
}
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  kernels::dispatch_f32_to_bf16(src, dst, n);
}

}  // namespace ember
#endif  // HWY_ONCE
