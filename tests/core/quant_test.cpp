// GGML block types (Q4_0 ... Q8_K) against ggml itself: fixtures made by
// tools/quant/make_quant_fixtures.py from the libggml that llama-cpp-python 0.3.36 bundles.
// Quantize must give ggml's bytes, dequantize ggml's floats bit for bit; dot products are
// checked against a double-precision dot of the dequantized rows, on every SIMD target.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/dtype_traits.hpp"
#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"
#include "ember/core/quant.hpp"

namespace ember {
namespace {

const DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                        DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K,
                        DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};
constexpr size_t kRandomRows = 2;  // RANDOM_ROWS of the fixture script

// Runs `body` with each SIMD target this CPU has forced in turn, then restores the dispatch (an
// ASSERT in the body leaves only the body).
void on_every_simd_target(const std::function<void(const std::string&)>& body) {
  for (const std::string& target : kernels::simd_targets()) {
    kernels::simd_force_target(target);
    body(target);
  }
  kernels::simd_force_target("");
}

std::vector<std::byte> read_file(const std::string& name) {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/quant/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("missing fixture " + path);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::vector<float> floats(const std::byte* p, size_t n) {
  std::vector<float> out(n);
  std::memcpy(out.data(), p, n * sizeof(float));
  return out;
}

struct Input {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> x;
  const float* row(size_t r) const { return x.data() + r * cols; }
};

const Input& input() {
  static const Input in = [] {
    const std::vector<std::byte> bytes = read_file("input.f32");
    Input r;
    uint32_t dims[2];
    std::memcpy(dims, bytes.data(), sizeof dims);
    r.rows = dims[0];
    r.cols = dims[1];
    r.x = floats(bytes.data() + sizeof dims, r.rows * r.cols);
    return r;
  }();
  return in;
}

// One <TYPE>.bin: ggml's quantization of the input and its dequantization, then random blocks
// and their dequantization.
struct TypeFixture {
  size_t row_bytes = 0;
  std::vector<std::byte> q, random_q;
  std::vector<float> deq, random_deq;
};

TypeFixture load(DType t) {
  const Input& in = input();
  const std::vector<std::byte> bytes = read_file(std::string(dtype_name(t)) + ".bin");
  TypeFixture f;
  f.row_bytes = *dtype_bytes(t, in.cols);
  const size_t q_bytes = in.rows * f.row_bytes, n = in.rows * in.cols;
  const size_t rq_bytes = kRandomRows * f.row_bytes, rn = kRandomRows * in.cols;
  if (bytes.size() != q_bytes + 4 * n + rq_bytes + 4 * rn) {
    throw Error("fixture " + std::string(dtype_name(t)) + ".bin has the wrong size");
  }
  const std::byte* p = bytes.data();
  f.q.assign(p, p + q_bytes);
  p += q_bytes;
  f.deq = floats(p, n);
  p += 4 * n;
  f.random_q.assign(p, p + rq_bytes);
  p += rq_bytes;
  f.random_deq = floats(p, rn);
  return f;
}

// Index of the first element whose bits differ, or -1.
int64_t first_bit_difference(const std::vector<float>& got, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i])) {
      return static_cast<int64_t>(i);
    }
  }
  return -1;
}

class QuantType : public ::testing::TestWithParam<DType> {};

TEST_P(QuantType, DequantizeMatchesGgmlBitForBit) {
  const DType t = GetParam();
  const TypeFixture f = load(t);
  // The scalar reference, then dtype_traits' to_f32 (SIMD for the common types) on every target.
  const auto check = [&](void (*to_f32)(const std::byte*, float*, size_t), const std::string& by) {
    std::vector<float> got(f.deq.size());
    to_f32(f.q.data(), got.data(), got.size());
    const int64_t at = first_bit_difference(got, f.deq);
    EXPECT_EQ(at, -1) << by << ", element " << at << ": " << got[static_cast<size_t>(at)]
                      << " vs ggml " << f.deq[static_cast<size_t>(at)];
    // Random blocks reach bit patterns the quantizers never write (every scale and level).
    std::vector<float> rgot(f.random_deq.size());
    to_f32(f.random_q.data(), rgot.data(), rgot.size());
    const int64_t rat = first_bit_difference(rgot, f.random_deq);
    EXPECT_EQ(rat, -1) << by << ", random element " << rat;
  };
  check(quant::reference(t).to_f32, "reference");
  on_every_simd_target([&](const std::string& target) { check(dtype_traits(t).to_f32, target); });
}

TEST_P(QuantType, QuantizeMatchesGgmlBytes) {
  const DType t = GetParam();
  const TypeFixture f = load(t);
  const Input& in = input();
  // The reference, then dtype_traits' from_f32 (SIMD for the Q8_0 and Q8_1 activations) on
  // every target.
  const auto check = [&](void (*from_f32)(const float*, std::byte*, size_t),
                         const std::string& by) {
    for (size_t r = 0; r < in.rows; ++r) {
      std::vector<std::byte> got(f.row_bytes, std::byte{0xAA});
      from_f32(in.row(r), got.data(), in.cols);
      const std::byte* want = f.q.data() + r * f.row_bytes;
      size_t diff = 0;
      while (diff < f.row_bytes && got[diff] == want[diff]) ++diff;
      EXPECT_EQ(diff, f.row_bytes) << by << ", row " << r << " differs from ggml at byte " << diff;
    }
  };
  check(quant::reference(t).from_f32, "reference");
  on_every_simd_target([&](const std::string& target) { check(dtype_traits(t).from_f32, target); });
}

// The SIMD Q8_0 / Q8_1 quantizers round as std::round does where x / d falls on or next to a
// half (ties away from zero, 0.49999997 down), and keep zero blocks, signs and the extremes:
// byte for byte the reference's on every target. A block with max |x| = 127 has d = 1.
TEST(QuantizeQ8, SimdRoundsTiesLikeTheReference) {
  std::vector<float> x(size_t{4} * 32, 0.0f);  // block 3 stays all zero (d = 0)
  const float cases[] = {0.5f,   -0.5f,   1.5f,       -2.5f,       0.49999997f, -0.49999997f,
                         126.5f, -126.5f, 2.5000002f, -3.4999998f, 7.0f,        -7.0f};
  for (size_t b = 0; b < 3; ++b) {
    const float scale = b == 0 ? 1.0f : (b == 1 ? 0.03125f : 1000.0f);
    for (size_t i = 0; i < 32; ++i) x[32 * b + i] = scale * cases[i % std::size(cases)];
    x[32 * b + 31] = scale * (b == 2 ? -127.0f : 127.0f);
  }
  for (const DType t : {DType::Q8_0, DType::Q8_1}) {
    const size_t bytes = *dtype_bytes(t, x.size());
    std::vector<std::byte> want(bytes);
    quant::reference(t).from_f32(x.data(), want.data(), x.size());
    on_every_simd_target([&](const std::string& target) {
      std::vector<std::byte> got(bytes, std::byte{0xAA});
      dtype_traits(t).from_f32(x.data(), got.data(), x.size());
      EXPECT_EQ(got, want) << dtype_name(t) << " on " << target;
    });
  }
}

// The part of a weight element that is an offset rather than scale * level (Q4_1/Q5_1's min,
// the K-quants' dmin * min), bounded from the block's stored F16 (dmin times the largest
// min code). Needed for the dot product bound: the offset and the scaled level can cancel.
float offset_bound(DType t, const std::byte* row, size_t i) {
  auto f16_at = [](const std::byte* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return std::fabs(f16_to_f32(h));
  };
  switch (t) {
    case DType::Q4_1:
      return f16_at(row + (i / 32) * 20 + 2);
    case DType::Q5_1:
      return f16_at(row + (i / 32) * 24 + 2);
    case DType::Q2_K:
      return 15 * f16_at(row + (i / 256) * 84 + 82);
    case DType::Q4_K:
      return 63 * f16_at(row + (i / 256) * 144 + 2);
    case DType::Q5_K:
      return 63 * f16_at(row + (i / 256) * 176 + 2);
    default:
      return 0.0f;
  }
}

// |vec_dot(w, x) - sum_i w_i x_i| (w, x the dequantized rows, summed in double) is bounded by
// float rounding. Within a block the level products are integers (exact); each block (or
// sub-block, for kernels that go to float earlier) adds a handful of roundings: the scale
// product d_w * d_x, the int -> float conversion, the product with the integer sum, the min
// term and its subtraction (at most 8), and the float sum over S terms adds S - 1 more. The
// reference's own rows carry up to 4 roundings per element (d * scale, * level, - offset,
// and the activation's d * q). Every rounding is relative 2^-24 of a quantity bounded by
// sum_i (|w_i| + 2 M_i) |x_i|, M_i the offset bound above, so the error is below
// (S + 12) 2^-24 sum_i (|w_i| + 2 M_i) |x_i|.
// Q8_1 activations (Q4_1/Q5_1) add m_w (s - d16 sum(q)) per block: ggml stores
// s = F16(d * sum(q)) from the float d, while the levels scale by d16 = F16(d). F16 rounding
// of s is relative 2^-11 (doubled for the float product before it) plus subnormal spacing
// 2^-24; d - d16 is relative 2^-11 of d16 (inside the first term, as d16 sum|q| = sum|x|)
// or, for d16 below F16's smallest normal 2^-14, up to 2^-25 times sum|q| <= 32 * 127.
double dot_bound(DType t, const std::byte* wq, const std::vector<float>& w, const std::byte* xq,
                 const std::vector<float>& x) {
  const DType act = dtype_traits(t).vec_dot_type;
  const size_t block = dtype_info(t).block_elems;
  const double terms = static_cast<double>(w.size()) / (block == 256 ? 16 : 32);
  double magnitude = 0.0, s_error = 0.0;
  for (size_t b = 0; b < w.size(); b += block) {
    double block_abs_x = 0.0;
    for (size_t i = b; i < b + block; ++i) {
      const double m = offset_bound(t, wq, i);
      magnitude += (std::fabs(w[i]) + 2 * m) * std::fabs(x[i]);
      block_abs_x += std::fabs(x[i]);
    }
    if (act == DType::Q8_1) {
      uint16_t d16;
      std::memcpy(&d16, xq + (b / 32) * 36, 2);
      const bool subnormal = std::fabs(f16_to_f32(d16)) < 0x1p-14f;
      s_error += offset_bound(t, wq, b) *
                 (0x1p-10 * block_abs_x + 0x1p-24 + (subnormal ? 32 * 127 * 0x1p-25 : 0.0));
    }
  }
  return (terms + 12) * 0x1p-24 * magnitude + s_error;
}

// Quantizes input row r to `t` and its activation format, dots each pair of rows with `dot`
// and checks the bound.
void check_dots(DType t, float (*dot)(const std::byte*, const std::byte*, size_t),
                const std::string& label) {
  const Input& in = input();
  const DTypeTraits& traits = dtype_traits(t);
  const DTypeTraits& act = dtype_traits(traits.vec_dot_type);
  const size_t n = in.cols;
  std::vector<std::byte> wq(*dtype_bytes(t, n)), xq(*dtype_bytes(traits.vec_dot_type, n));
  std::vector<float> w(n), x(n);
  for (size_t r = 0; r < in.rows; ++r) {
    traits.from_f32(in.row(r), wq.data(), n);
    traits.to_f32(wq.data(), w.data(), n);
    for (size_t s = 0; s < in.rows; ++s) {
      act.from_f32(in.row(s), xq.data(), n);
      act.to_f32(xq.data(), x.data(), n);
      double want = 0.0;
      for (size_t i = 0; i < n; ++i) want += static_cast<double>(w[i]) * x[i];
      const float got = dot(wq.data(), xq.data(), n);
      EXPECT_LE(std::fabs(got - want), dot_bound(t, wq.data(), w, xq.data(), x))
          << label << " weight row " << r << ", activation row " << s << ": " << got << " vs "
          << want;
    }
  }
}

TEST_P(QuantType, ReferenceDotWithinRoundingBound) {
  const DType t = GetParam();
  ASSERT_NE(quant::reference(t).vec_dot, nullptr);
  EXPECT_EQ(dtype_traits(t).vec_dot_type, quant::reference(t).vec_dot_type);
  // Every weight block type has a SIMD kernel; Q8_1 and Q8_K, activation formats, keep the
  // reference.
  const bool has_simd = t != DType::Q8_1 && t != DType::Q8_K;
  EXPECT_EQ(dtype_traits(t).vec_dot != quant::reference(t).vec_dot, has_simd);
  check_dots(t, quant::reference(t).vec_dot, "scalar reference");
}

// dtype_traits' vec_dot is the SIMD kernel where the type has one: check it on each target.
TEST_P(QuantType, DispatchedDotWithinRoundingBoundOnEveryTarget) {
  const DType t = GetParam();
  on_every_simd_target(
      [&](const std::string& target) { check_dots(t, dtype_traits(t).vec_dot, target); });
}

// The SIMD kernels against their scalar references on rows of an odd number of blocks (7: the
// 32-element kernels' vector loops and the K-quants' super-block loop end off any power of two)
// of random values, on every target. Both are within dot_bound of the exact dot of the
// dequantized rows, so within twice that of each other.
TEST_P(QuantType, DispatchedDotMatchesReferenceOnOddBlockCounts) {
  const DType t = GetParam();
  const DTypeTraits& traits = dtype_traits(t);
  const DTypeTraits& act = dtype_traits(traits.vec_dot_type);
  const size_t n = size_t{7} * dtype_info(t).block_elems;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(n), x(n);
  std::vector<std::byte> wq(*dtype_bytes(t, n)), xq(*dtype_bytes(traits.vec_dot_type, n));
  for (int trial = 0; trial < 4; ++trial) {
    for (size_t i = 0; i < n; ++i) {
      // A shifted half-row gives the min-carrying types (Q4_1, Q5_1, K-quants) nonzero mins.
      w[i] = normal(rng) + (i < n / 2 ? 1.5f : 0.0f);
      x[i] = normal(rng);
    }
    traits.from_f32(w.data(), wq.data(), n);
    traits.to_f32(wq.data(), w.data(), n);
    act.from_f32(x.data(), xq.data(), n);
    act.to_f32(xq.data(), x.data(), n);
    const float want = quant::reference(t).vec_dot(wq.data(), xq.data(), n);
    const double bound = 2 * dot_bound(t, wq.data(), w, xq.data(), x);
    on_every_simd_target([&](const std::string& target) {
      EXPECT_LE(std::fabs(static_cast<double>(traits.vec_dot(wq.data(), xq.data(), n)) - want),
                bound)
          << target << ", trial " << trial;
    });
  }
}

TEST_P(QuantType, TensorConversionsAndEmbeddingUseTheBlockKernels) {
  const DType t = GetParam();
  const TypeFixture f = load(t);
  const Input& in = input();
  const auto rows = static_cast<int64_t>(in.rows), cols = static_cast<int64_t>(in.cols);
  const Tensor x = Tensor::from_f32({rows, cols}, in.x);
  const Tensor q = x.to(t);
  ASSERT_EQ(q.dtype(), t);
  ASSERT_EQ(q.nbytes(), f.q.size());
  EXPECT_EQ(std::memcmp(q.data(), f.q.data(), f.q.size()), 0);
  EXPECT_EQ(std::memcmp(convert_to(x, t).data(), f.q.data(), f.q.size()), 0);

  const Tensor back = to_f32(q);
  ASSERT_EQ(back.shape(), x.shape());
  EXPECT_EQ(std::memcmp(back.data(), f.deq.data(), f.deq.size() * 4), 0);
  EXPECT_EQ(std::memcmp(q.to(DType::F32).data(), f.deq.data(), f.deq.size() * 4), 0);

  const std::vector<int64_t> ids = {3, 0, 5, 0};
  const Tensor emb = ops::embedding(q, Tensor::from_values<int64_t>(DType::I64, {4}, ids));
  ASSERT_EQ(emb.dtype(), DType::F32);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(std::memcmp(emb.data_as<float>() + i * in.cols,
                          f.deq.data() + static_cast<size_t>(ids[i]) * in.cols, in.cols * 4),
              0)
        << "embedding row " << i;
  }
}

// Random weight rows (a shifted half-row gives the min-carrying types nonzero mins) and
// activation rows, quantized, with their dequantized values for dot_bound.
struct RandomRows {
  size_t n = 0;
  std::vector<float> wf, x;                 // weights and activations as drawn (F32)
  std::vector<std::byte> wq, xq;            // weight rows in t, activation rows in vec_dot_type
  std::vector<std::vector<float>> w, xdeq;  // their dequantized rows
  size_t w_bytes = 0, x_bytes = 0;
};

RandomRows random_rows(DType t, size_t rows_w, size_t rows_x, size_t n, unsigned seed) {
  const DTypeTraits& traits = dtype_traits(t);
  const DTypeTraits& act = dtype_traits(traits.vec_dot_type);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  RandomRows r;
  r.n = n;
  r.w_bytes = *dtype_bytes(t, n);
  r.x_bytes = *dtype_bytes(traits.vec_dot_type, n);
  r.wq.resize(rows_w * r.w_bytes);
  r.xq.resize(rows_x * r.x_bytes);
  r.x.resize(rows_x * n);
  r.wf.resize(rows_w * n);
  std::vector<float> row(n);
  for (size_t j = 0; j < rows_w; ++j) {
    for (size_t i = 0; i < n; ++i) r.wf[j * n + i] = normal(rng) + (i < n / 2 ? 1.5f : 0.0f);
    traits.from_f32(r.wf.data() + j * n, r.wq.data() + j * r.w_bytes, n);
    traits.to_f32(r.wq.data() + j * r.w_bytes, row.data(), n);
    r.w.push_back(row);
  }
  for (size_t j = 0; j < rows_x; ++j) {
    for (size_t i = 0; i < n; ++i) r.x[j * n + i] = normal(rng);
    act.from_f32(r.x.data() + j * n, r.xq.data() + j * r.x_bytes, n);
    act.to_f32(r.xq.data() + j * r.x_bytes, row.data(), n);
    r.xdeq.push_back(row);
  }
  return r;
}

// Each weight block type's tile kernel gives, for every row pair, exactly what the dispatched
// vec_dot gives on the same target (the tile keeps its integer sums, lane grouping and float
// operations, so prompts and single tokens get the same numbers), and so stays within twice
// dot_bound of the scalar reference (both within dot_bound of the exact dot). Panels of 7 x 6
// rows end off the 4 x 4 register tile, rows of 3 blocks off any power of two; outputs land at
// stride ldo and nothing else is written.
TEST_P(QuantType, TileEqualsDispatchedDotOnEveryTarget) {
  const DType t = GetParam();
  const DTypeTraits& traits = dtype_traits(t);
  if (t == DType::Q8_1 || t == DType::Q8_K) {
    EXPECT_EQ(traits.vec_dot_tile, nullptr) << "activation formats have no tile";
    return;
  }
  ASSERT_NE(traits.vec_dot_tile, nullptr);
  constexpr size_t kW = 7, kX = 6, kLdo = kW + 3;
  const RandomRows r = random_rows(t, kW, kX, size_t{3} * dtype_info(t).block_elems, 5);
  on_every_simd_target([&](const std::string& target) {
    std::vector<float> out(kX * kLdo, -1234.0f);
    traits.vec_dot_tile(r.wq.data(), r.w_bytes, kW, r.xq.data(), r.x_bytes, kX, r.n, out.data(),
                        kLdo);
    for (size_t i = 0; i < kX; ++i) {
      for (size_t j = 0; j < kLdo; ++j) {
        if (j >= kW) {
          EXPECT_EQ(out[i * kLdo + j], -1234.0f) << target << ": wrote past the panel";
          continue;
        }
        const std::byte* wj = r.wq.data() + j * r.w_bytes;
        const std::byte* xi = r.xq.data() + i * r.x_bytes;
        EXPECT_EQ(out[i * kLdo + j], traits.vec_dot(wj, xi, r.n))
            << target << ", weight row " << j << ", activation row " << i;
        EXPECT_LE(std::fabs(static_cast<double>(out[i * kLdo + j]) -
                            quant::reference(t).vec_dot(wj, xi, r.n)),
                  2 * dot_bound(t, wj, r.w[j], xi, r.xdeq[i]))
            << target << ", weight row " << j << ", activation row " << i;
      }
    }
  });
}

// Decode's multi-row dot gives every weight row exactly the dispatched vec_dot on every target,
// for row counts below, on and past its four-row groups (0 to 11: partial groups at the end),
// and writes nothing past the rows it was given.
TEST_P(QuantType, RowsEqualDispatchedDotOnEveryTarget) {
  const DType t = GetParam();
  const DTypeTraits& traits = dtype_traits(t);
  if (traits.vec_dot_rows == nullptr) GTEST_SKIP() << "linear calls vec_dot row by row";
  constexpr size_t kW = 11;
  const RandomRows r = random_rows(t, kW, 2, size_t{3} * dtype_info(t).block_elems, 13);
  on_every_simd_target([&](const std::string& target) {
    for (size_t nw = 0; nw <= kW; ++nw) {
      for (size_t i = 0; i < 2; ++i) {
        const std::byte* xi = r.xq.data() + i * r.x_bytes;
        std::vector<float> out(kW + 1, -1234.0f);
        traits.vec_dot_rows(r.wq.data(), r.w_bytes, nw, xi, r.n, out.data());
        for (size_t j = 0; j < nw; ++j) {
          EXPECT_EQ(out[j], traits.vec_dot(r.wq.data() + j * r.w_bytes, xi, r.n))
              << target << ", " << nw << " rows, weight row " << j << ", activation row " << i;
        }
        for (size_t j = nw; j <= kW; ++j) {
          EXPECT_EQ(out[j], -1234.0f) << target << ", " << nw << " rows: wrote past the rows";
        }
      }
    }
  });
}

// The fixture's random blocks reach every scale, minimum and level bit pattern, which the
// quantizers never write (Q4_K 6-bit scales of 63, Q6_K scales of -128, all-15 nibbles): cut
// into rows of 256 elements (one K-quant super-block), against the input's rows quantized to the
// activation type, on every target the dispatched dot stays within dot_bound of the exact dot of
// the dequantized rows, and the tile (the generic integer sums) and the multi-row dot give it
// bit for bit, so the hand-written x86 kernels' integer sums are checked on the whole range.
TEST_P(QuantType, DotsAgreeOnRandomBlocksOnEveryTarget) {
  const DType t = GetParam();
  const DTypeTraits& traits = dtype_traits(t);
  if (traits.vec_dot_tile == nullptr) GTEST_SKIP() << "activation formats have no tile";
  const TypeFixture f = load(t);
  const Input& in = input();
  const DTypeTraits& act = dtype_traits(traits.vec_dot_type);
  constexpr size_t kN = 256;
  const size_t nw = kRandomRows * in.cols / kN, w_bytes = *dtype_bytes(t, kN);
  const size_t x_bytes = *dtype_bytes(traits.vec_dot_type, kN);
  std::vector<std::byte> xq(in.rows * x_bytes);
  std::vector<std::vector<float>> xdeq(in.rows, std::vector<float>(kN));
  for (size_t s = 0; s < in.rows; ++s) {
    act.from_f32(in.row(s), xq.data() + s * x_bytes, kN);
    act.to_f32(xq.data() + s * x_bytes, xdeq[s].data(), kN);
  }
  on_every_simd_target([&](const std::string& target) {
    std::vector<float> tile(in.rows * nw), rows(nw);
    traits.vec_dot_tile(f.random_q.data(), w_bytes, nw, xq.data(), x_bytes, in.rows, kN,
                        tile.data(), nw);
    for (size_t s = 0; s < in.rows; ++s) {
      const std::byte* xs = xq.data() + s * x_bytes;
      if (traits.vec_dot_rows != nullptr) {
        traits.vec_dot_rows(f.random_q.data(), w_bytes, nw, xs, kN, rows.data());
      }
      for (size_t j = 0; j < nw; ++j) {
        const std::byte* wj = f.random_q.data() + j * w_bytes;
        const std::vector<float> w(
            f.random_deq.begin() + static_cast<std::ptrdiff_t>(j * kN),
            f.random_deq.begin() + static_cast<std::ptrdiff_t>((j + 1) * kN));
        double want = 0.0;
        for (size_t i = 0; i < kN; ++i) want += static_cast<double>(w[i]) * xdeq[s][i];
        const float got = traits.vec_dot(wj, xs, kN);
        EXPECT_LE(std::fabs(got - want), dot_bound(t, wj, w, xs, xdeq[s]))
            << target << ", weight row " << j << ", activation row " << s;
        EXPECT_EQ(tile[s * nw + j], got)
            << target << ", weight row " << j << ", activation row " << s;
        if (traits.vec_dot_rows != nullptr) {
          EXPECT_EQ(rows[j], got) << target << ", weight row " << j << ", activation row " << s;
        }
      }
    }
  });
}

// EMBER_QUANT_TILES=1 for one test's scope (linear reads it per call).
struct QuantTilesOn {
  QuantTilesOn() { ::setenv("EMBER_QUANT_TILES", "1", 1); }
  ~QuantTilesOn() { ::unsetenv("EMBER_QUANT_TILES"); }
  QuantTilesOn(const QuantTilesOn&) = delete;
  QuantTilesOn& operator=(const QuantTilesOn&) = delete;
};

// With EMBER_QUANT_TILES=1, linear on 16 rows or more goes through the tile kernel: every output
// equals the dispatched vec_dot of its row pair, with the activations quantized as linear's
// few-row path quantizes them, at row counts on and off the tile sizes (16, 17, 64) and past
// several groups of activation rows (513), over a full and a partial 16-row weight panel.
TEST_P(QuantType, LinearOnManyRowsEqualsVecDot) {
  const DType t = GetParam();
  const DTypeTraits& traits = dtype_traits(t);
  if (traits.vec_dot_tile == nullptr) GTEST_SKIP() << "no tile";
  const QuantTilesOn tiles;
  constexpr size_t kN = 21;
  const size_t k = size_t{2} * dtype_info(t).block_elems;
  const RandomRows r = random_rows(t, kN, 513, k, 9);
  const Tensor w = Tensor::from_f32({kN, static_cast<int64_t>(k)}, r.wf).to(t);
  ASSERT_EQ(std::memcmp(w.data(), r.wq.data(), r.wq.size()), 0);
  for (const int64_t m : {16, 17, 64, 513}) {
    const Tensor x = Tensor::from_f32({m, static_cast<int64_t>(k)},
                                      std::span(r.x).first(static_cast<size_t>(m) * k));
    const Tensor y = ops::linear(x, w);
    for (int64_t i = 0; i < m; ++i) {
      const std::byte* xi = r.xq.data() + static_cast<size_t>(i) * r.x_bytes;
      for (size_t j = 0; j < kN; ++j) {
        ASSERT_EQ(y.data_as<float>()[i * kN + j],
                  traits.vec_dot(r.wq.data() + j * r.w_bytes, xi, k))
            << "m " << m << ", row " << i << ", column " << j;
      }
    }
  }
}

// Few activation rows go through vec_dot (activations quantized once), so each output is
// exactly the dispatched dot of that row pair: for one row (a decode step, which takes the
// dtype's multi-row dot over whole ranges where it has one) and for two.
TEST_P(QuantType, LinearOnFewRowsUsesVecDot) {
  const DType t = GetParam();
  const Input& in = input();
  const auto n = static_cast<int64_t>(in.rows), k = static_cast<int64_t>(in.cols);
  const Tensor w = Tensor::from_f32({n, k}, in.x).to(t);
  const DTypeTraits& traits = dtype_traits(t);
  const DTypeTraits& act = dtype_traits(traits.vec_dot_type);

  for (const int64_t m : {1, 2}) {
    const Tensor few = Tensor::from_f32(
        {m, k}, std::span(in.x).subspan(in.cols, static_cast<size_t>(m) * in.cols));
    const Tensor y = ops::linear(few, w);
    std::vector<std::byte> xq(*dtype_bytes(traits.vec_dot_type, in.cols));
    for (int64_t i = 0; i < m; ++i) {
      act.from_f32(in.row(static_cast<size_t>(i) + 1), xq.data(), in.cols);
      for (int64_t j = 0; j < n; ++j) {
        const float want = traits.vec_dot(w.data() + static_cast<size_t>(j) * w.nbytes() / in.rows,
                                          xq.data(), in.cols);
        EXPECT_EQ(y.data_as<float>()[i * n + j], want)
            << m << " rows: row " << i << ", column " << j;
      }
    }
  }
}

// 16 rows or more (without EMBER_QUANT_TILES) widen the weights into F32 GEMM panels: every
// output is the F32 dot of the activation row with the to_f32 weight row, in some summation
// order, on every SIMD target. Row counts on and off the register blocks (16, 17, 64, 513);
// 37 columns are a whole strip of 32 and a partial panel; k crosses the 256-element
// dequantization chunk (288 for 32-element blocks, 512 for super-blocks).
TEST_P(QuantType, LinearOnManyRowsIsTheDequantizedF32Product) {
  const DType t = GetParam();
  constexpr size_t kN = 37, kMaxM = 513;
  const size_t block = dtype_info(t).block_elems;
  const size_t k = block * (block >= 256 ? 2 : 9);
  const RandomRows r = random_rows(t, kN, kMaxM, k, 11);
  const Tensor w = Tensor::from_f32({kN, static_cast<int64_t>(k)}, r.wf).to(t);
  ASSERT_EQ(std::memcmp(w.data(), r.wq.data(), r.wq.size()), 0);
  // Exact dot (double) of each row pair, and sum_i |w_i x_i| for the bound.
  std::vector<double> exact(kMaxM * kN), magnitude(kMaxM * kN);
  for (size_t i = 0; i < kMaxM; ++i) {
    for (size_t j = 0; j < kN; ++j) {
      for (size_t c = 0; c < k; ++c) {
        const double p = static_cast<double>(r.x[i * k + c]) * r.w[j][c];
        exact[i * kN + j] += p;
        magnitude[i * kN + j] += std::fabs(p);
      }
    }
  }
  // Any order of F32 multiply-adds of k products is within gamma_k * sum |w_i x_i| of the exact
  // sum, gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and Stability, 3.1); the to_f32
  // weights and the F32 inputs are the operands, so nothing else rounds.
  const double u = 0x1p-24;
  const double gamma = static_cast<double>(k) * u / (1.0 - static_cast<double>(k) * u);
  on_every_simd_target([&](const std::string& target) {
    for (const int64_t m : {16, 17, 64, 513}) {
      const Tensor x = Tensor::from_f32({m, static_cast<int64_t>(k)},
                                        std::span(r.x).first(static_cast<size_t>(m) * k));
      const Tensor y = ops::linear(x, w);
      for (size_t e = 0; e < static_cast<size_t>(m) * kN; ++e) {
        ASSERT_LE(std::fabs(y.data_as<float>()[e] - exact[e]), gamma * magnitude[e])
            << target << ", m " << m << ", row " << e / kN << ", column " << e % kN;
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, QuantType, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

TEST(Quant, RowsThatAreNotWholeBlocksAreRejected) {
  const std::vector<float> values(96, 1.0f);
  const Tensor x = Tensor::from_f32({2, 48}, values);
  try {
    (void)x.to(DType::Q4_0);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 48]"), std::string::npos) << e.what();
  }
  std::vector<float> bad(64, 0.5f);
  bad[40] = std::nanf("");
  EXPECT_THROW((void)Tensor::from_f32({64}, bad).to(DType::Q8_0), Error);
  bad[40] = -std::numeric_limits<float>::infinity();
  EXPECT_THROW((void)Tensor::from_f32({64}, bad).to(DType::Q4_1), Error);
  // 512 elements are whole Q4_K blocks, but rows of 128 are not.
  const Tensor w = Tensor::zeros(DType::Q4_K, {4, 128});
  const Tensor act = Tensor::zeros(DType::F32, {1, 128});
  EXPECT_THROW((void)ops::linear(act, w), Error);
  EXPECT_THROW((void)quant::reference(DType::F32), Error);
}

}  // namespace
}  // namespace ember
