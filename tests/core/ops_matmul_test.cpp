#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/dtype_traits.hpp"
#include "ember/core/half.hpp"
#include "ember/core/ops.hpp"
#include "ops_test_util.hpp"

namespace ember {
namespace {

using namespace ember::test;  // NOLINT

// Naive double reference of numpy matmul for rank >= 2 operands with batch broadcasting. With
// `magnitude`, also the sum of |a_p b_p| of every output element (its rounding-error scale).
std::vector<double> matmul_reference(const Tensor& a, const Tensor& b, Shape* out_shape,
                                     std::vector<double>* magnitude = nullptr) {
  const std::vector<double> va = a.to_f64_vector();
  const std::vector<double> vb = b.to_f64_vector();
  const int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
  const Shape ab(a.shape().begin(), a.shape().end() - 2);
  const Shape bb(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = ops::broadcast_shapes(ab, bb);
  *out_shape = batch;
  out_shape->push_back(m);
  out_shape->push_back(n);
  std::vector<double> out(static_cast<size_t>(shape_numel(*out_shape)));
  if (magnitude) magnitude->assign(out.size(), 0.0);
  const int64_t batches = shape_numel(batch);
  for (int64_t bi = 0; bi < batches; ++bi) {
    const std::vector<int64_t> idx = unravel(bi, batch);
    const int64_t fa = broadcast_flat(idx, ab);
    const int64_t fb = broadcast_flat(idx, bb);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, abs_sum = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double term = va[static_cast<size_t>(fa * m * k + i * k + p)] *
                              vb[static_cast<size_t>(fb * k * n + p * n + j)];
          s += term;
          abs_sum += std::fabs(term);
        }
        const size_t at = static_cast<size_t>(bi * m * n + i * n + j);
        out[at] = s;
        if (magnitude) (*magnitude)[at] = abs_sum;
      }
    }
  }
  return out;
}

// Rounding bound of a product computed in the result's precision (unit roundoff u): each output
// is a length-k dot product, and ANY summation order (blocked, vectorised, with or without FMA,
// whatever the BLAS kernel) is within k u sum|a_p b_p| of the exact sum (Higham, Accuracy and
// Stability, 3.1); the final rounding adds u |result| <= u sum|a_p b_p|. (k + 2) u leaves room for
// the second-order terms. The inputs are exact in the result type (F16/BF16 widen exactly).
void expect_within_dot_bound(const Tensor& y, const std::vector<double>& want,
                             const std::vector<double>& magnitude, int64_t k,
                             const std::string& what) {
  const double u = y.dtype() == DType::F64 ? 0x1p-53 : 0x1p-24;
  const std::vector<double> got = y.to_f64_vector();
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), static_cast<double>(k + 2) * u * magnitude[i])
        << what << " at " << i << ": got " << got[i] << ", want " << want[i];
  }
}

void check_matmul(const Tensor& a, const Tensor& b) {
  Shape shape;
  std::vector<double> magnitude;
  const std::vector<double> want = matmul_reference(a, b, &shape, &magnitude);
  const Tensor y = ops::matmul(a, b);
  ASSERT_EQ(y.shape(), shape) << shape_to_string(a.shape()) << " @ " << shape_to_string(b.shape());
  expect_within_dot_bound(y, want, magnitude, a.dim(-1),
                          shape_to_string(a.shape()) + " @ " + shape_to_string(b.shape()));
}

TEST(Matmul, TwoDimensional) {
  check_matmul(random_tensor({3, 5}, 1), random_tensor({5, 4}, 2));
  check_matmul(random_tensor({1, 7}, 3), random_tensor({7, 1}, 4));
  check_matmul(random_tensor({64, 33}, 5), random_tensor({33, 65}, 6));
}

TEST(Matmul, BatchBroadcasting) {
  check_matmul(random_tensor({2, 3, 4, 5}, 7), random_tensor({5, 6}, 8));          // b shared
  check_matmul(random_tensor({4, 5}, 9), random_tensor({3, 5, 2}, 10));            // a shared
  check_matmul(random_tensor({2, 1, 4, 5}, 11), random_tensor({1, 3, 5, 2}, 12));  // both
  check_matmul(random_tensor({3, 4, 5}, 13), random_tensor({3, 5, 6}, 14));
}

TEST(Matmul, NonContiguousViews) {
  const Tensor a = random_tensor({6, 5}, 15);
  const Tensor b = random_tensor({4, 6}, 16);
  check_matmul(a.transpose(0, 1), b.transpose(0, 1));          // both transposed (BLAS Trans flags)
  check_matmul(a.narrow(1, 1, 3), random_tensor({3, 2}, 17));  // row stride > cols
  const Tensor c = random_tensor({2, 7, 3, 4}, 18);
  check_matmul(c.permute({0, 2, 1, 3}), random_tensor({4, 5}, 19));  // batch strides odd
  check_matmul(c.select(3, 1), random_tensor({3, 2}, 20));  // neither dim unit-stride: copied
  check_matmul(random_tensor({1, 4}, 21).broadcast_to({3, 4}), random_tensor({4, 2}, 22));
}

TEST(Matmul, BatchesOfSmallProductsSplitIntoRowBlocks) {
  // n * k = 65536: each product runs as row blocks of 4 rows on the pool (10 = 4 + 4 + 2), with
  // A as stored and A transposed, and with a broadcast B.
  const Tensor a = random_tensor({3, 10, 256}, 25);
  const Tensor b = random_tensor({3, 256, 256}, 26);
  check_matmul(a, b);
  check_matmul(random_tensor({3, 256, 10}, 27).transpose(1, 2), b);
  check_matmul(a, random_tensor({256, 256}, 28));
}

TEST(Matmul, VectorOperands) {
  const Tensor v = random_tensor({5}, 23);
  const Tensor m = random_tensor({5, 3}, 24);
  const Tensor y = ops::matmul(v, m);
  Shape s;
  std::vector<double> magnitude;
  EXPECT_EQ(y.shape(), (Shape{3}));
  const std::vector<double> vm = matmul_reference(v.unsqueeze(0), m, &s, &magnitude);
  expect_within_dot_bound(y, vm, magnitude, 5, "v @ M");
  const Tensor z = ops::matmul(m.transpose(0, 1), v);
  EXPECT_EQ(z.shape(), (Shape{3}));
  const std::vector<double> mv =
      matmul_reference(m.transpose(0, 1), v.unsqueeze(1), &s, &magnitude);
  expect_within_dot_bound(z, mv, magnitude, 5, "M @ v");
  const Tensor dot = ops::matmul(v, v);
  EXPECT_EQ(dot.rank(), 0);
  const Tensor batched = ops::matmul(random_tensor({2, 3, 5}, 25), v);
  EXPECT_EQ(batched.shape(), (Shape{2, 3}));
}

TEST(Matmul, DtypesAndEmpty) {
  const Tensor a16 = random_tensor({3, 8}, 26, -2, 2, DType::F16);
  const Tensor b16 = random_tensor({8, 2}, 27, -2, 2, DType::BF16);
  const Tensor y = ops::matmul(a16, b16);
  EXPECT_EQ(y.dtype(), DType::F32);
  check_matmul(a16, b16);  // inputs are exact in F32; only F32 accumulation error remains
  const Tensor a64 = random_tensor({3, 4}, 28, -2, 2, DType::F64);
  EXPECT_EQ(ops::matmul(a64, random_tensor({4, 2}, 29)).dtype(), DType::F64);
  check_matmul(a64, random_tensor({4, 2}, 29, -2, 2, DType::F64));
  // K = 0 gives zeros; M = 0 gives an empty result.
  const Tensor z =
      ops::matmul(Tensor::zeros(DType::F32, {2, 0}), Tensor::zeros(DType::F32, {0, 3}));
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.to_f64_vector(), std::vector<double>(6, 0.0));
  EXPECT_EQ(ops::matmul(Tensor::zeros(DType::F32, {0, 4}), random_tensor({4, 3}, 30)).shape(),
            (Shape{0, 3}));
}

TEST(Matmul, Errors) {
  expect_error(
      [] {
        ops::matmul(random_tensor({2, 3}, 1), random_tensor({4, 5}, 2));
      },
      {"matmul", "[2, 3]", "[4, 5]"});
  expect_error(
      [] {
        ops::matmul(random_tensor({2, 2, 3}, 1), random_tensor({3, 3, 4}, 2));
      },
      {"matmul", "batch"});
  expect_error([] { ops::matmul(ops::scalar(1.0), random_tensor({3}, 2)); }, {"matmul", "rank"});
  expect_error(
      [] {
        ops::matmul(Tensor::zeros(DType::I8, {2, 2}), random_tensor({2, 2}, 2));
      },
      {"matmul", "I8"});
}

std::vector<double> linear_reference(const Tensor& x, const Tensor& w, const Tensor& bias) {
  Shape s;
  std::vector<double> y = matmul_reference(x.reshape({-1, x.dim(-1)}), w.transpose(0, 1), &s);
  if (bias.defined()) {
    const std::vector<double> b = bias.to_f64_vector();
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i % b.size()];
  }
  return y;
}

TEST(Linear, F32WithAndWithoutBias) {
  const Tensor x = random_tensor({2, 3, 16}, 31);
  const Tensor w = random_tensor({10, 16}, 32);
  const Tensor b = random_tensor({10}, 33);
  const Tensor y = ops::linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 10}));
  expect_close(y, linear_reference(x, w, b), 1e-5, 1e-5, "linear+bias");
  expect_close(ops::linear(x, w), linear_reference(x, w, Tensor()), 1e-5, 1e-5, "linear");
  // Non-contiguous input and weight views.
  const Tensor wt = random_tensor({16, 10}, 34).transpose(0, 1);
  expect_close(ops::linear(x.transpose(0, 1), wt, b), linear_reference(x.transpose(0, 1), wt, b),
               1e-5, 1e-5, "linear views");
}

TEST(Linear, HalfWeightsUseTheirKernel) {
  const Tensor x = random_tensor({5, 24}, 35);
  for (DType dt : {DType::F16, DType::BF16}) {
    const Tensor w = random_tensor({7, 24}, 36, -1, 1, dt);
    const Tensor b = random_tensor({7}, 37, -1, 1, dt);
    const Tensor y = ops::linear(x, w, b);
    EXPECT_EQ(y.dtype(), DType::F32);
    // Weights are exact in F32, so the result is as accurate as the F32 path.
    expect_close(y, linear_reference(x, w, b), 1e-5, 1e-5, std::string(dtype_name(dt)));
  }
  // 1-D input, F64 path.
  const Tensor x64 = random_tensor({24}, 38, -1, 1, DType::F64);
  const Tensor w64 = random_tensor({3, 24}, 39, -1, 1, DType::F64);
  const Tensor y64 = ops::linear(x64, w64);
  EXPECT_EQ(y64.dtype(), DType::F64);
  EXPECT_EQ(y64.shape(), (Shape{3}));
  expect_close(y64, linear_reference(x64.unsqueeze(0), w64, Tensor()), 1e-13, 1e-13, "f64");
}

TEST(Linear, DispatchesOnTheWeightDtypeTraits) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    EXPECT_NE(dtype_traits(dt).vec_dot, nullptr) << dtype_name(dt);
    EXPECT_NE(dtype_traits(dt).to_f32, nullptr) << dtype_name(dt);
  }
  EXPECT_EQ(dtype_traits(DType::I8).vec_dot, nullptr);
  const Tensor x = random_tensor({3, 6}, 40);
  const Tensor wq = Tensor::zeros(DType::I8, {4, 6});
  expect_error([&] { ops::linear(x, wq); }, {"linear", "no kernel", "I8"});
}

// Both paths of the driver for 16-bit weights: the per-row dot product (fewer than 16 input
// rows, the decode step) and the widened F32 GEMM panels (16 rows and more), on odd K so vector
// tails run. The weights are exact in F32, so both are as accurate as F32 arithmetic.
TEST(Linear, HalfWeightsOnBothDriverPaths) {
  for (DType dt : {DType::F16, DType::BF16}) {
    const Tensor w = random_tensor({37, 131}, 50, -1, 1, dt);
    const Tensor b = random_tensor({37}, 51);
    for (int64_t m : {1, 3, 15, 16, 40}) {
      const Tensor x = random_tensor({m, 131}, 52 + m);
      expect_close(ops::linear(x, w, b), linear_reference(x, w, b), 1e-5, 1e-5,
                   std::string(dtype_name(dt)) + " m=" + std::to_string(m));
    }
  }
}

// linear with a packed [n, k] weight against the worst-case F32 bound of a K-term dot product
// plus the bias add, gamma_(K+1) * (sum |x w| + |b|) with gamma_n = n u / (1 - n u), u = 2^-24,
// whatever the summation order (a fixed 1e-5 is too tight for cancelling sums at these K), for
// each of `rows` row counts, through linear and linear_into.
void expect_packed_linear_within_bound(int64_t n, int64_t k, std::initializer_list<int64_t> rows,
                                       uint32_t seed) {
  const Tensor w = random_tensor({n, k}, seed);
  const Tensor b = random_tensor({n}, seed + 1);
  const Tensor packed = ops::pack_linear_weight(w);
  EXPECT_EQ(packed.shape(), (Shape{(n + 15) / 16, k, 16}));
  const std::vector<double> wv = w.to_f64_vector(), bv = b.to_f64_vector();
  const double u = 0x1p-24, gamma = double(k + 1) * u / (1.0 - double(k + 1) * u);
  const auto check = [&](const Tensor& x, const Tensor& y, const std::string& what) {
    const std::vector<double> xv = x.to_f64_vector(), yv = y.to_f64_vector();
    const int64_t m = x.dim(0);
    ASSERT_EQ(static_cast<int64_t>(yv.size()), m * n) << what;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double exact = bv[size_t(j)], magnitude = std::fabs(bv[size_t(j)]);
        for (int64_t kk = 0; kk < k; ++kk) {
          const double p = xv[size_t(i * k + kk)] * wv[size_t(j * k + kk)];
          exact += p;
          magnitude += std::fabs(p);
        }
        ASSERT_LE(std::fabs(yv[size_t(i * n + j)] - exact), gamma * magnitude)
            << what << " row " << i << " col " << j;
      }
    }
  };
  for (int64_t m : rows) {
    const Tensor x = random_tensor({m, k}, seed + 2 + static_cast<uint32_t>(m));
    const std::string what =
        std::to_string(n) + " x " + std::to_string(k) + " m=" + std::to_string(m);
    check(x, ops::linear(x, w, b, packed), "packed " + what);
    Tensor out = Tensor::zeros(DType::F32, {m * n});
    ops::linear_into(x, w, b, out, packed);
    check(x, out, "packed into " + what);
  }
}

// A packed F32 weight sends any number of rows to the packed kernel: one tile for a few rows;
// from 497 rows on (K = 131: row blocks of at most 496) several row blocks, 1101 rows as three
// of 367 (not whole register blocks), each over two panel groups, the second holding the odd
// third panel.
TEST(Linear, PackedWeightAtAnyRowCount) {
  expect_packed_linear_within_bound(37, 131, {1, 5, 70, 496, 497, 1101}, 70);
  // Only F32 weights are packed; a packing of another weight is refused.
  EXPECT_FALSE(ops::pack_linear_weight(random_tensor({4, 8}, 73, -1, 1, DType::BF16)).defined());
  const Tensor x = random_tensor({2, 131}, 74);
  expect_error(
      [&] {
        ops::linear(x, random_tensor({37, 131}, 70), Tensor(),
                    ops::pack_linear_weight(random_tensor({15, 131}, 75)));
      },
      {"linear", "packed", "[1, 131, 16]", "[37, 131]"});
}

// Past kernels::kGemmKBlock (256), the kernel carries its sums over blocks of k through y, and
// row blocks hold 256 rows of one block of k: K = 600 is two whole blocks and a partial one, and
// 300 rows are two row blocks.
TEST(Linear, PackedWeightOverSeveralBlocksOfK) {
  expect_packed_linear_within_bound(40, 600, {1, 9, 300}, 80);
}

// A PageReleaser that records what it is asked to release, over a heap buffer standing in for a
// file mapping.
struct RecordingReleaser final : PageReleaser {
  mutable std::vector<std::pair<const std::byte*, size_t>> calls;
  void release_pages(const std::byte* data, size_t bytes) const override {
    calls.emplace_back(data, bytes);
  }
};

// Packing reads each weight exactly into its panel slot (zero past N) and then releases every
// byte of a weight that views a mapping, in stretches as it goes, never outside the weight's
// bytes. N = 16 * 32 + 5 rows of K = 2048 are more than one stretch (4 MiB of rows, 32 panels)
// and end in a panel of 5 rows; 40 x 3 is a single stretch.
TEST(Linear, PackingPlacesEveryWeightAndReleasesTheMappedRows) {
  for (const auto& [n, k] : {std::pair<int64_t, int64_t>{16 * 32 + 5, 2048}, {40, 3}}) {
    SCOPED_TRACE(std::to_string(n) + " x " + std::to_string(k));
    const Tensor owned = random_tensor({n, k}, 90);
    RecordingReleaser releaser;
    const Tensor w =
        Tensor::borrow(DType::F32, {n, k}, owned.data(), owned.nbytes(), nullptr, &releaser);
    const Tensor packed = ops::pack_linear_weight(w);
    ASSERT_EQ(packed.shape(), (Shape{(n + 15) / 16, k, 16}));
    const float* pw = packed.data_as<float>();
    const float* ww = owned.data_as<float>();
    for (int64_t p = 0; p < packed.dim(0); ++p) {
      for (int64_t kk = 0; kk < k; ++kk) {
        for (int64_t j = 0; j < 16; ++j) {
          const float want = p * 16 + j < n ? ww[(p * 16 + j) * k + kk] : 0.0f;
          ASSERT_EQ(pw[(p * k + kk) * 16 + j], want) << "panel " << p << " k " << kk << " j " << j;
        }
      }
    }
    const std::byte* begin = owned.data();
    std::vector<bool> released(owned.nbytes(), false);
    ASSERT_FALSE(releaser.calls.empty());
    // The large weight is released in parts while it is packed, not only at the end.
    if (k == 2048) {
      EXPECT_LT(releaser.calls.front().second, owned.nbytes());
    }
    for (const auto& [data, bytes] : releaser.calls) {
      ASSERT_GE(data, begin);
      ASSERT_LE(data + bytes, begin + owned.nbytes());
      std::fill_n(released.begin() + (data - begin), bytes, true);
    }
    EXPECT_EQ(std::count(released.begin(), released.end(), false), 0);
  }
}

TEST(Linear, IntoCallerBuffer) {
  const Tensor x = random_tensor({4, 16}, 60);
  const Tensor w = random_tensor({8, 16}, 61, -1, 1, DType::BF16);
  Tensor out = Tensor::zeros(DType::F32, {32});
  ops::linear_into(x, w, Tensor(), out);
  expect_close(out.reshape({4, 8}), linear_reference(x, w, Tensor()), 1e-5, 1e-5, "into");
  Tensor wrong = Tensor::zeros(DType::F32, {31});
  expect_error([&] { ops::linear_into(x, w, Tensor(), wrong); }, {"linear_into", "32"});
}

// Into [m, n] columns of a wider table (rows of unit stride, further apart than n), as a fused
// layer's parts write their outputs: every path writes exactly what linear returns into its
// columns and leaves the rest of the table as it was. Paths: F32 through BLAS and packed, and
// quantized weights for a decode step (vec_dot), a prompt (widened panels) and the tiles.
TEST(Linear, IntoColumnsOfAWiderTable) {
  constexpr int64_t kN = 24, kK = 256, kWide = 40, kCol0 = 9;
  constexpr float kUntouched = 7.5f;
  const Tensor wf = random_tensor({kN, kK}, 63);
  const Tensor b = random_tensor({kN}, 64);
  struct Case {
    std::string name;
    Tensor w, packed;
    bool tiles = false;
  };
  const std::vector<Case> cases = {{"F32", wf, Tensor()},
                                   {"F32 packed", wf, ops::pack_linear_weight(wf)},
                                   {"Q8_0", wf.to(DType::Q8_0), Tensor()},
                                   {"Q4_K", wf.to(DType::Q4_K), Tensor()},
                                   {"Q4_K tiles", wf.to(DType::Q4_K), Tensor(), true}};
  for (const Case& c : cases) {
    if (c.tiles) ::setenv("EMBER_QUANT_TILES", "1", 1);
    for (const int64_t m : {1, 3, 17, 64}) {
      const std::string what = c.name + " m=" + std::to_string(m);
      const Tensor x = random_tensor({m, kK}, 65 + static_cast<uint32_t>(m));
      const std::vector<float> untouched(static_cast<size_t>(m * kWide), kUntouched);
      Tensor table = Tensor::from_f32({m, kWide}, untouched);
      Tensor columns = table.narrow(1, kCol0, kN);
      ops::linear_into(x, c.w, b, columns, c.packed);
      const Tensor want = ops::linear(x, c.w, b, c.packed);
      const float* got = table.data_as<float>();
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < kWide; ++j) {
          const float v = got[i * kWide + j];
          if (j < kCol0 || j >= kCol0 + kN) {
            ASSERT_EQ(v, kUntouched) << what << " row " << i << " col " << j;
          } else {
            ASSERT_EQ(v, want.data_as<float>()[i * kN + j - kCol0])
                << what << " row " << i << " col " << j;
          }
        }
      }
    }
    ::unsetenv("EMBER_QUANT_TILES");
  }
  // A view whose columns are not adjacent is refused.
  Tensor table = Tensor::zeros(DType::F32, {kN, 3});
  Tensor strided = table.transpose(0, 1);
  expect_error(
      [&] {
        ops::linear_into(random_tensor({3, kK}, 70), wf, b, strided);
      },
      {"linear_into", "unit column stride"});
}

TEST(Linear, Errors) {
  const Tensor x = random_tensor({2, 8}, 42);
  expect_error([&] { ops::linear(x, random_tensor({4, 7}, 1)); }, {"linear", "[2, 8]", "[4, 7]"});
  expect_error(
      [&] {
        ops::linear(x, random_tensor({4, 8}, 1), random_tensor({5}, 2));
      },
      {"linear", "bias", "[5]"});
  expect_error([&] { ops::linear(x, random_tensor({8}, 1)); }, {"linear", "weight"});
  expect_error([&] { ops::linear(x, Tensor()); }, {"linear", "undefined"});
}

}  // namespace
}  // namespace ember
