// SIMD kernels vs their scalar references, on every SIMD target this CPU supports.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ember/core/convert.hpp"
#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"
#include "ember/core/tensor.hpp"

namespace ember {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> special_values() {
  return {0.0f,
          -0.0f,
          1.0f,
          -1.0f,
          0.5f,
          -0.5f,
          kInf,
          -kInf,
          kNaN,
          -kNaN,
          std::numeric_limits<float>::max(),
          std::numeric_limits<float>::lowest(),
          std::numeric_limits<float>::min(),
          -std::numeric_limits<float>::min(),
          std::numeric_limits<float>::denorm_min(),
          1e-30f,
          -1e-30f,
          88.7f,
          88.8f,
          89.0f,
          -87.5f,
          -103.0f,
          -104.5f,
          -110.0f,
          9.5f,
          -9.5f,
          20.0f,
          -20.0f,
          200.0f,
          -200.0f,
          65504.0f,
          65520.0f,
          6.1e-5f,
          5.9e-8f,
          3.0e-8f,
          1e9f,
          -1e9f,
          1e20f,
          -1e20f};
}

// Random values from several magnitude ranges, followed by the special values.
std::vector<float> test_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> small(-4.0f, 4.0f);
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (i % 3 == 0) ? wide(rng) : small(rng);
  const std::vector<float> specials = special_values();
  for (size_t i = 0; i < specials.size() && i < n; ++i) v[(i * 7919) % n] = specials[i];
  return v;
}

// Lengths around vector widths (1, 4, 8, 16 lanes) plus odd ones.
const size_t kLengths[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 100, 257, 1000};

bool same_or_close(float got, float want, float rtol, float atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

class SimdTarget : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { kernels::simd_force_target(GetParam()); }
  void TearDown() override { kernels::simd_force_target(""); }
};

TEST_P(SimdTarget, DispatchUsesForcedTarget) {
  EXPECT_EQ(kernels::simd_active_target(), GetParam());
}

TEST_P(SimdTarget, UnaryMatchesScalar) {
  for (int o = 0; o < kernels::kUnaryOpCount; ++o) {
    const auto op = static_cast<UnaryOp>(o);
    // Exactly rounded ops must agree bit for bit; transcendental ones within a few ulp.
    const bool exact = op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sqrt ||
                       op == UnaryOp::Rsqrt || op == UnaryOp::Relu || op == UnaryOp::Square ||
                       op == UnaryOp::Reciprocal || op == UnaryOp::Sin || op == UnaryOp::Cos;
    for (size_t n : kLengths) {
      const std::vector<float> x =
          test_values(n + 40, static_cast<uint32_t>(n + 7 * static_cast<size_t>(o)));
      std::vector<float> got(x.size(), -7.0f);
      std::vector<float> want(x.size());
      kernels::unary_f32(op, x.data(), got.data(), x.size());
      kernels::ref::unary_f32(op, x.data(), want.data(), x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const bool ok = exact ? (std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i])
                              : same_or_close(got[i], want[i], 4e-6f, 1e-37f);
        ASSERT_TRUE(ok) << kernels::unary_op_name(op) << "(" << x[i] << ") = " << got[i]
                        << ", scalar " << want[i] << ", n=" << x.size() << " i=" << i;
      }
    }
  }
}

TEST_P(SimdTarget, UnaryInPlace) {
  std::vector<float> x = test_values(37, 3);
  std::vector<float> want(x.size());
  kernels::ref::unary_f32(UnaryOp::Square, x.data(), want.data(), x.size());
  kernels::unary_f32(UnaryOp::Square, x.data(), x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isnan(want[i]) ? std::isnan(x[i]) : x[i] == want[i]) << i;
  }
}

TEST_P(SimdTarget, BinaryMatchesScalar) {
  for (int o = 0; o < kernels::kBinaryOpCount; ++o) {
    const auto op = static_cast<BinaryOp>(o);
    for (size_t n : {size_t{1}, size_t{3}, size_t{17}, size_t{100}, size_t{1023}}) {
      std::vector<float> a = test_values(n + 40, static_cast<uint32_t>(n));
      std::vector<float> b = test_values(n + 40, static_cast<uint32_t>(n + 1000));
      // Pair NaN with finite values and vice versa, and make some operands equal.
      for (size_t i = 0; i < a.size(); i += 5) b[i] = a[i];
      std::vector<float> got(a.size());
      std::vector<float> want(a.size());
      auto check = [&](const char* mode, auto a_at, auto b_at) {
        for (size_t i = 0; i < a.size(); ++i) {
          want[i] = kernels::ref::binary(op, a_at(i), b_at(i));
          const bool ok = std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i];
          ASSERT_TRUE(ok) << kernels::binary_op_name(op) << " " << mode << "(" << a_at(i) << ", "
                          << b_at(i) << ") = " << got[i] << ", scalar " << want[i];
        }
      };
      kernels::binary_f32(op, a.data(), b.data(), got.data(), a.size());
      check(
          "vv", [&](size_t i) { return a[i]; }, [&](size_t i) { return b[i]; });
      for (float s : {2.5f, -0.0f, kNaN, kInf}) {
        kernels::binary_f32_scalar_rhs(op, a.data(), s, got.data(), a.size());
        check(
            "vs", [&](size_t i) { return a[i]; }, [&](size_t) { return s; });
        kernels::binary_f32_scalar_lhs(op, s, b.data(), got.data(), b.size());
        check(
            "sv", [&](size_t) { return s; }, [&](size_t i) { return b[i]; });
      }
    }
  }
}

TEST_P(SimdTarget, RowKernelsMatchScalar) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (size_t n : kLengths) {
    std::vector<float> x(n), w(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = normal(rng) + 1.5f;
      w[i] = normal(rng);
      b[i] = normal(rng);
    }
    std::vector<float> got(n), want(n);
    auto compare = [&](const char* what) {
      for (size_t i = 0; i < n; ++i) {
        ASSERT_TRUE(same_or_close(got[i], want[i], 2e-5f, 2e-6f))
            << what << " n=" << n << " i=" << i << ": " << got[i] << " vs " << want[i];
      }
    };
    kernels::softmax_row_f32(x.data(), got.data(), n);
    kernels::ref::softmax_row_f32(x.data(), want.data(), n);
    compare("softmax");
    kernels::layer_norm_row_f32(x.data(), w.data(), b.data(), 1e-5f, got.data(), n);
    kernels::ref::layer_norm_row_f32(x.data(), w.data(), b.data(), 1e-5f, want.data(), n);
    compare("layer_norm");
    kernels::layer_norm_row_f32(x.data(), nullptr, nullptr, 1e-5f, got.data(), n);
    kernels::ref::layer_norm_row_f32(x.data(), nullptr, nullptr, 1e-5f, want.data(), n);
    compare("layer_norm (no affine)");
    kernels::rms_norm_row_f32(x.data(), w.data(), 1e-6f, got.data(), n);
    kernels::ref::rms_norm_row_f32(x.data(), w.data(), 1e-6f, want.data(), n);
    compare("rms_norm");
  }
}

// Dot products of F32, F16 and BF16 weight rows: each product w[i] * x[i] is exact in double,
// so the only error is F32 accumulation, bounded by n * eps * sum |w[i] x[i]| for any order.
TEST_P(SimdTarget, DotProductsMatchScalarWithinTheSummationBound) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t n : kLengths) {
    std::vector<float> x(n), w(n);
    std::vector<uint16_t> wh(n), wb(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = normal(rng);
      w[i] = normal(rng);
      wh[i] = f32_to_f16(w[i]);
      wb[i] = f32_to_bf16(w[i]);
    }
    auto check = [&](const char* what, float got, float want, auto weight) {
      double abs_sum = 0;
      for (size_t i = 0; i < n; ++i) abs_sum += std::fabs(double{weight(i)} * x[i]);
      const double bound = 2.0 * static_cast<double>(n + 1) * 0x1p-24 * abs_sum + 1e-30;
      ASSERT_LE(std::fabs(double{got} - double{want}), bound) << what << " n=" << n;
    };
    check("f32", kernels::dot_f32(w.data(), x.data(), n),
          kernels::ref::dot_f32(w.data(), x.data(), n), [&](size_t i) { return w[i]; });
    check("f16", kernels::dot_f16(wh.data(), x.data(), n),
          kernels::ref::dot_f16(wh.data(), x.data(), n),
          [&](size_t i) { return f16_to_f32(wh[i]); });
    check("bf16", kernels::dot_bf16(wb.data(), x.data(), n),
          kernels::ref::dot_bf16(wb.data(), x.data(), n),
          [&](size_t i) { return bf16_to_f32(wb[i]); });
  }
}

// The decode-attention kernels: keys and values are rows `stride` apart (a KV cache's heads
// interleaved). Each output is one sum of exact-in-double products, so F32 accumulation in any
// order stays within n * eps * sum |terms|; dot_rows' scaling adds one rounding on each side.
TEST_P(SimdTarget, AttentionRowKernelsMatchScalarWithinTheSummationBound) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float scale = 0.125f;
  for (size_t d : {size_t{1}, size_t{7}, size_t{16}, size_t{33}, size_t{64}, size_t{80}}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{17}, size_t{100}}) {
      const size_t stride = 3 * d + 5;
      std::vector<float> q(d), rows(n * stride + d), p(n);
      for (float& x : q) x = normal(rng);
      for (float& x : rows) x = normal(rng);
      for (float& x : p) x = std::fabs(normal(rng));
      std::vector<float> got(n + 1, -7.0f), want(n + 1, -7.0f);
      kernels::dot_rows_f32(q.data(), rows.data(), stride, n, d, scale, got.data());
      kernels::ref::dot_rows_f32(q.data(), rows.data(), stride, n, d, scale, want.data());
      for (size_t j = 0; j < n; ++j) {
        double abs_sum = 0;
        for (size_t i = 0; i < d; ++i) abs_sum += std::fabs(double{q[i]} * rows[j * stride + i]);
        const double bound = 2.0 * static_cast<double>(d + 3) * 0x1p-24 * scale * abs_sum + 1e-30;
        ASSERT_LE(std::fabs(double{got[j]} - double{want[j]}), bound)
            << "dot_rows d=" << d << " n=" << n << " j=" << j;
      }
      EXPECT_EQ(got[n], -7.0f) << "dot_rows wrote past its n scores";
      std::vector<float> out(d + 1, -7.0f), out_want(d);
      kernels::weighted_rows_f32(p.data(), rows.data(), stride, n, d, out.data());
      kernels::ref::weighted_rows_f32(p.data(), rows.data(), stride, n, d, out_want.data());
      for (size_t i = 0; i < d; ++i) {
        double abs_sum = 0;
        for (size_t j = 0; j < n; ++j) abs_sum += std::fabs(double{p[j]} * rows[j * stride + i]);
        const double bound = 2.0 * static_cast<double>(n + 1) * 0x1p-24 * abs_sum + 1e-30;
        ASSERT_LE(std::fabs(double{out[i]} - double{out_want[i]}), bound)
            << "weighted_rows d=" << d << " n=" << n << " i=" << i;
      }
      EXPECT_EQ(out[d], -7.0f) << "weighted_rows wrote past its d outputs";
    }
  }
}

// Both sides compute x - max exactly alike and sum the exponentials in double, so they differ
// by the exponentials' error (the 4e-6 relative of UnaryMatchesScalar's Exp, which moves
// log(sum) by at most as much) and one rounding of log(sum) and of the final subtraction each.
TEST_P(SimdTarget, LogSoftmaxRowMatchesScalar) {
  std::mt19937 rng(14);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (size_t n : kLengths) {
    // The longest length stands for a vocabulary row of BART's size instead.
    std::vector<float> x(n == 1000 ? size_t{50265} : n);
    for (float& v : x) v = normal(rng);
    if (x.size() > 3) x[2] = -kInf;  // a banned token
    std::vector<float> got(x.size()), want(x.size());
    kernels::log_softmax_row_f32(x.data(), got.data(), x.size());
    kernels::ref::log_softmax_row_f32(x.data(), want.data(), x.size());
    double exp_sum = 0;
    float top = -kInf;
    for (float v : x) top = std::max(top, v);
    for (float v : x) exp_sum += std::exp(double{v} - top);
    const double shift = std::log(exp_sum);
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isinf(want[i])) {
        ASSERT_EQ(got[i], want[i]) << "n=" << x.size() << " i=" << i;
        continue;
      }
      const double bound = 4e-6 + 0x1p-23 * (std::fabs(shift) + std::fabs(double{want[i]}));
      ASSERT_LE(std::fabs(double{got[i]} - double{want[i]}), bound)
          << "n=" << x.size() << " i=" << i << ": " << got[i] << " vs " << want[i];
    }
    // In place gives the same row.
    std::vector<float> in_place = x;
    kernels::log_softmax_row_f32(in_place.data(), in_place.data(), in_place.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(in_place[i], got[i]) << "i=" << i;
  }
}

// An exact comparison of the same F32 sums on both sides: the same index, wherever the first
// score above the threshold lies relative to the vector blocks.
TEST_P(SimdTarget, FirstAboveMatchesScalar) {
  std::mt19937 rng(15);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t n : kLengths) {
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    if (n > 4) x[n / 2] = kNaN;
    for (float threshold : {-kInf, -0.5f, 1.0f, 2.5f, kInf}) {
      for (size_t from = 0; from <= std::min<size_t>(n, 3); ++from) {
        const size_t got = kernels::first_above_f32(x.data() + from, n - from, 0.25f, threshold);
        ASSERT_EQ(got, kernels::ref::first_above_f32(x.data() + from, n - from, 0.25f, threshold))
            << "n=" << n << " from=" << from << " threshold=" << threshold;
        if (got < n - from) {
          EXPECT_GT(x[from + got] + 0.25f, threshold);
        }
      }
    }
  }
}

TEST_P(SimdTarget, SoftmaxSpecialRows) {
  // Large logits must not overflow; -inf entries get probability 0; a NaN poisons the row.
  std::vector<float> x = {1000.0f, 999.0f, -kInf, 998.0f, -1000.0f};
  std::vector<float> got(x.size()), want(x.size());
  kernels::softmax_row_f32(x.data(), got.data(), x.size());
  kernels::ref::softmax_row_f32(x.data(), want.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(same_or_close(got[i], want[i], 1e-6f, 1e-7f));
  EXPECT_EQ(got[2], 0.0f);
  EXPECT_NEAR(got[0], 1.0 / (1.0 + std::exp(-1.0) + std::exp(-2.0)), 1e-6);
  x[1] = kNaN;
  kernels::softmax_row_f32(x.data(), got.data(), x.size());
  for (float v : got) EXPECT_TRUE(std::isnan(v));
}

TEST_P(SimdTarget, F16ToF32AllBitPatterns) {
  std::vector<uint16_t> h(65536 + 13);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> got(h.size()), want(h.size());
  for (size_t offset : {size_t{0}, size_t{3}}) {  // unaligned start as well
    const size_t n = h.size() - offset;
    convert_f16_to_f32(h.data() + offset, got.data(), n);
    ref::convert_f16_to_f32(h.data() + offset, want.data(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << "f16 bits 0x" << std::hex << h[i + offset];
    }
  }
}

TEST_P(SimdTarget, BF16ToF32AllBitPatterns) {
  std::vector<uint16_t> h(65536 + 5);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> got(h.size()), want(h.size());
  convert_bf16_to_f32(h.data(), got.data(), h.size());
  ref::convert_bf16_to_f32(h.data(), want.data(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i;
  }
}

// F32 inputs that probe every rounding path: random bit patterns, all f16/bf16 values and the
// midpoints between neighbours (ties), plus specials.
std::vector<float> rounding_probe_values() {
  std::vector<float> v = special_values();
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) v.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (uint32_t h = 0; h < 0x7c00; h += 7) {
    const float a = f16_to_f32(static_cast<uint16_t>(h));
    const float b = f16_to_f32(static_cast<uint16_t>(h + 1));
    v.push_back(a);
    v.push_back(-(a + (b - a) * 0.5f));  // tie
    v.push_back(a + (b - a) * 0.25f);
  }
  for (uint32_t h = 0; h < 0x7f80; h += 3) {
    const float a = bf16_to_f32(static_cast<uint16_t>(h));
    v.push_back(std::bit_cast<float>(std::bit_cast<uint32_t>(a) | 0x8000u));  // exact tie
    v.push_back(std::bit_cast<float>(std::bit_cast<uint32_t>(a) | 0x8001u));
  }
  v.push_back(std::bit_cast<float>(0x7f800001u));  // signalling NaN
  v.push_back(std::bit_cast<float>(0xffc12345u));
  return v;
}

TEST_P(SimdTarget, F32ToF16MatchesScalarBits) {
  const std::vector<float> x = rounding_probe_values();
  std::vector<uint16_t> got(x.size()), want(x.size());
  convert_f32_to_f16(x.data(), got.data(), x.size());
  ref::convert_f32_to_f16(x.data(), want.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(got[i], want[i]) << "f32 bits 0x" << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

TEST_P(SimdTarget, F32ToBF16MatchesScalarBits) {
  const std::vector<float> x = rounding_probe_values();
  std::vector<uint16_t> got(x.size()), want(x.size());
  convert_f32_to_bf16(x.data() + 1, got.data(), x.size() - 1);  // odd start and length
  ref::convert_f32_to_bf16(x.data() + 1, want.data(), x.size() - 1);
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    ASSERT_EQ(got[i], want[i]) << "f32 bits 0x" << std::hex << std::bit_cast<uint32_t>(x[i + 1]);
  }
}

// The packed small-M GEMM (SIMD and scalar) against a double-precision product on odd shapes:
// every M from 1 to 33 (all register-block remainders), K not a multiple of any vector width,
// N not a multiple of the 16-wide panel (in odd and even panel counts), and x rows strided. Each
// output is one F32 sum of K products, whose worst-case error is gamma_K * sum |x w| with gamma_K =
// K u / (1 - K u), u = 2^-24 (Higham, Accuracy and Stability, 3.1), whatever the target or FMA use.
TEST_P(SimdTarget, PackedGemmWithinTheSummationBound) {
  std::mt19937 rng(31);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t k : {1, 7, 33, 259, 520}) {   // 259, 520: two and three blocks of k
    for (int64_t n : {1, 15, 17, 40, 49}) {  // 1 to 4 panels: pairs and a single
      Tensor w = Tensor::empty(DType::F32, {n, k});
      float* pw = w.mutable_data_as<float>();
      for (int64_t i = 0; i < n * k; ++i) pw[i] = normal(rng);
      const Tensor packed = ops::pack_linear_weight(w);
      const auto panels = static_cast<size_t>((n + 15) / 16);
      for (int64_t m = 1; m <= 33; ++m) {
        const int64_t ldx = k + 3;
        std::vector<float> x(static_cast<size_t>(m * ldx));
        for (float& v : x) v = normal(rng);
        const float kSentinel = 1234.5f;
        const int64_t ldy = n + 2;
        std::vector<float> simd(static_cast<size_t>(m * ldy), kSentinel), ref = simd;
        kernels::gemm_panels_f32(x.data(), size_t(ldx), size_t(m), size_t(k),
                                 packed.data_as<float>(), 0, panels, size_t(n), simd.data(),
                                 size_t(ldy));
        kernels::ref::gemm_panels_f32(x.data(), size_t(ldx), size_t(m), size_t(k),
                                      packed.data_as<float>(), 0, panels, size_t(n), ref.data(),
                                      size_t(ldy));
        const double u = 0x1p-24, gamma = double(k) * u / (1.0 - double(k) * u);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < ldy; ++j) {
            const auto at = static_cast<size_t>(i * ldy + j);
            if (j >= n) {  // past N: never written
              ASSERT_EQ(simd[at], kSentinel);
              ASSERT_EQ(ref[at], kSentinel);
              continue;
            }
            double exact = 0, magnitude = 0;
            for (int64_t kk = 0; kk < k; ++kk) {
              const double p = double{x[static_cast<size_t>(i * ldx + kk)]} * pw[j * k + kk];
              exact += p;
              magnitude += std::fabs(p);
            }
            const double bound = gamma * magnitude;
            ASSERT_LE(std::fabs(simd[at] - exact), bound) << "m=" << m << " n=" << n << " k=" << k;
            ASSERT_LE(std::fabs(ref[at] - exact), bound) << "m=" << m << " n=" << n << " k=" << k;
          }
        }
      }
    }
  }
}

// A range of panels writes exactly those panels' columns (the unit linear threads over).
TEST_P(SimdTarget, PackedGemmWritesOnlyItsPanels) {
  const int64_t n = 40, k = 5, m = 3;
  Tensor w = Tensor::empty(DType::F32, {n, k});
  std::fill_n(w.mutable_data_as<float>(), n * k, 1.0f);
  const Tensor packed = ops::pack_linear_weight(w);
  std::vector<float> x(static_cast<size_t>(m * k), 2.0f), y(static_cast<size_t>(m * n), -1.0f);
  kernels::gemm_panels_f32(x.data(), k, m, k, packed.data_as<float>(), 1, 2, n, y.data(), n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      EXPECT_EQ(y[static_cast<size_t>(i * n + j)], j >= 16 && j < 32 ? 10.0f : -1.0f);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, SimdTarget, ::testing::ValuesIn(kernels::simd_targets()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(SimdTargets, ListsAtLeastOneAndRejectsUnknown) {
  const std::vector<std::string> targets = kernels::simd_targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(kernels::simd_active_target(), targets.front());  // best target by default
  EXPECT_THROW(kernels::simd_force_target("NOT_A_TARGET"), Error);
}

// EMBER_SIMD=NAME makes NAME the best target left, so the forced runs of scripts/test.sh really
// take the path they name.
TEST(SimdTargets, EnvironmentLimitsDispatch) {
  const char* env = std::getenv("EMBER_SIMD");
  if (env == nullptr || *env == '\0') {
    // Unset: no limit, dispatch takes the best target the CPU has.
    EXPECT_EQ(kernels::simd_active_target(), kernels::simd_targets().front());
    return;
  }
  std::string name = env;
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string active = kernels::simd_active_target();
  EXPECT_TRUE(active == name || (name == "SCALAR" && active == "EMU128")) << active;
  // Nothing above NAME can be forced either.
  if (name.rfind("AVX3", 0) != 0) {
    EXPECT_THROW(kernels::simd_force_target("AVX3"), Error);
  }
}

TEST(SimdTargetsDeathTest, UnknownEnvironmentNameIsAClearError) {
  // The child process re-runs this binary, which dispatches (lists the targets) at start-up.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* saved = std::getenv("EMBER_SIMD");
  const std::string restore = saved ? saved : "";
  setenv("EMBER_SIMD", "AVX9000", 1);
  EXPECT_DEATH(kernels::simd_active_target(),
               "EMBER_SIMD: unknown or unsupported SIMD target 'AVX9000' \\(this CPU and build "
               "offer .*SSE4");
  if (saved) {
    setenv("EMBER_SIMD", restore.c_str(), 1);
  } else {
    unsetenv("EMBER_SIMD");
  }
}

// Independent spot checks of the scalar references against double-precision math.
TEST(ScalarReference, AgreesWithDoubleMath) {
  for (double x : {-6.0, -2.5, -0.3, 0.0, 0.7, 1.0, 3.0}) {
    const double gelu = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double gelu_t =
        0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    const auto fx = static_cast<float>(x);
    EXPECT_NEAR(kernels::ref::unary(UnaryOp::Gelu, fx), gelu, 1e-6 * (1 + std::fabs(gelu)));
    EXPECT_NEAR(kernels::ref::unary(UnaryOp::GeluTanh, fx), gelu_t, 1e-6 * (1 + std::fabs(gelu_t)));
    EXPECT_NEAR(kernels::ref::unary(UnaryOp::Silu, fx), x / (1 + std::exp(-x)), 1e-6);
  }
}

}  // namespace
}  // namespace ember
