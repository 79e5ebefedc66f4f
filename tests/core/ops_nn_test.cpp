// Reductions, softmax, norms, embedding, concat, topk against naive double references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ember/core/convert.hpp"
#include "ember/core/half.hpp"
#include "ember/core/ops.hpp"
#include "ops_test_util.hpp"

namespace ember {
namespace {

using namespace ember::test;  // NOLINT

// Applies fn(values along `axis`) for every position of the other axes; returns the results in
// row-major order of the reduced shape.
template <typename Fn>
std::vector<double> reduce_reference(const Tensor& x, int64_t axis, Fn fn) {
  const std::vector<double> v = x.to_f64_vector();
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  const int64_t n = s[static_cast<size_t>(axis)];
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<double> line;
      for (int64_t j = 0; j < n; ++j)
        line.push_back(v[static_cast<size_t>((o * n + j) * inner + i)]);
      out.push_back(fn(line));
    }
  }
  return out;
}

double ref_sum(const std::vector<double>& l) {
  return std::accumulate(l.begin(), l.end(), 0.0);
}
double ref_mean(const std::vector<double>& l) {
  return ref_sum(l) / static_cast<double>(l.size());
}
double ref_abs_sum(const std::vector<double>& l) {
  double s = 0;
  for (double v : l) s += std::fabs(v);
  return s;
}
double ref_max(const std::vector<double>& l) {
  return *std::max_element(l.begin(), l.end());
}
double ref_argmax(const std::vector<double>& l) {
  return static_cast<double>(std::max_element(l.begin(), l.end()) - l.begin());  // first max
}

// A sum of n values in precision u, in any order (pairwise, SIMD lanes, threads), is within
// (n - 1) u sum|x_i| of the exact sum (Higham 4.2); rounding the result and dividing for a mean
// add u each. (n + 1) u covers both, on every SIMD target and machine.
void expect_within_sum_bound(const Tensor& got, const Tensor& x, int64_t axis, bool mean,
                             const std::string& what) {
  const int64_t n = x.dim(axis);
  const double u = got.dtype() == DType::F64 ? 0x1p-53 : 0x1p-24;
  const std::vector<double> want = reduce_reference(x, axis, mean ? ref_mean : ref_sum);
  const std::vector<double> scale = reduce_reference(x, axis, ref_abs_sum);
  const std::vector<double> g = got.to_f64_vector();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    const double bound = static_cast<double>(n + 1) * u * scale[i] / (mean ? n : 1);
    ASSERT_LE(std::fabs(g[i] - want[i]), bound) << what << " at " << i;
  }
}

TEST(Reduce, EveryAxisMatchesReference) {
  const Tensor x = random_tensor({3, 4, 5}, 1);
  for (int64_t axis = 0; axis < 3; ++axis) {
    const std::string tag = "axis " + std::to_string(axis);
    expect_within_sum_bound(ops::sum(x, axis), x, axis, false, "sum " + tag);
    expect_within_sum_bound(ops::mean(x, axis), x, axis, true, "mean " + tag);
    expect_close(ops::max(x, axis), reduce_reference(x, axis, ref_max), 0, 0, "max " + tag);
    const Tensor am = ops::argmax(x, axis);
    EXPECT_EQ(am.dtype(), DType::I64);
    expect_close(am, reduce_reference(x, axis, ref_argmax), 0, 0, "argmax " + tag);
  }
  EXPECT_EQ(ops::sum(x, 1).shape(), (Shape{3, 5}));
  EXPECT_EQ(ops::sum(x, -1, true).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(ops::argmax(x, 0, true).shape(), (Shape{1, 4, 5}));
}

TEST(Reduce, ViewsDtypesTiesAndNaN) {
  const Tensor x = random_tensor({6, 7}, 2);
  const Tensor xt = x.transpose(0, 1);
  expect_within_sum_bound(ops::sum(xt, 1), xt.contiguous(), 1, false, "view");
  const Tensor h = random_tensor({4, 9}, 3, -2, 2, DType::BF16);
  const Tensor hm = ops::mean(h, 1);
  EXPECT_EQ(hm.dtype(), DType::BF16);
  expect_close(hm, reduce_reference(h, 1, ref_mean), 4e-3, 1e-3, "bf16 mean");
  const Tensor d = random_tensor({4, 9}, 3, -2, 2, DType::F64);
  expect_within_sum_bound(ops::sum(d, 0), d, 0, false, "f64 sum");
  // Ties pick the first index; NaN is the maximum.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor t = f32_tensor({2, 4}, {1, 3, 3, 2, 1, nan, 5, nan});
  EXPECT_EQ(ops::argmax(t, 1).to_f64_vector(), (std::vector<double>{1, 1}));
  EXPECT_TRUE(std::isnan(ops::max(t, 1).to_f64_vector()[1]));
}

TEST(Reduce, EmptyAndErrors) {
  const Tensor e = Tensor::zeros(DType::F32, {3, 0});
  EXPECT_EQ(ops::sum(e, 1).to_f64_vector(), std::vector<double>(3, 0.0));
  for (double v : ops::mean(e, 1).to_f64_vector()) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(ops::sum(e, 0).shape(), (Shape{0}));
  expect_error([&] { ops::max(e, 1); }, {"max", "empty", "[3, 0]"});
  expect_error([&] { ops::argmax(e, -1); }, {"argmax", "empty"});
  expect_error([] { ops::sum(random_tensor({2, 3}, 1), 2); }, {"sum", "axis 2", "rank 2"});
  expect_error([] { ops::sum(ops::scalar(1.0), 0); }, {"sum", "rank 0"});
  expect_error([] { ops::sum(Tensor::zeros(DType::I64, {2}), 0); }, {"sum", "I64"});
}

std::vector<double> softmax_reference(const Tensor& x) {
  std::vector<double> v = x.to_f64_vector();
  const auto n = static_cast<size_t>(x.dim(-1));
  for (size_t r = 0; r < v.size() / n; ++r) {
    double m = -INFINITY, s = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, v[r * n + i]);
    for (size_t i = 0; i < n; ++i) s += std::exp(v[r * n + i] - m);
    for (size_t i = 0; i < n; ++i) v[r * n + i] = std::exp(v[r * n + i] - m) / s;
  }
  return v;
}

TEST(Softmax, MatchesReference) {
  const Tensor x = random_tensor({5, 37}, 4, -20, 20);
  expect_close(ops::softmax(x), softmax_reference(x), 1e-5, 1e-7, "softmax");
  // Rows sum to one even with huge logits (stability).
  const Tensor big = random_tensor({3, 1001}, 5, 500, 1000);
  const Tensor s = ops::sum(ops::softmax(big), -1);
  expect_close(s, std::vector<double>(3, 1.0), 1e-5, 0, "row sums");
  // Another axis: reference computed on the transposed data.
  const Tensor y0 = ops::softmax(x, 0);
  EXPECT_EQ(y0.shape(), x.shape());
  const std::vector<double> rt = softmax_reference(x.transpose(0, 1).contiguous());  // [37, 5]
  std::vector<double> want(size_t{5} * 37);
  for (size_t i = 0; i < 5; ++i) {
    for (size_t j = 0; j < 37; ++j) want[i * 37 + j] = rt[j * 5 + i];
  }
  expect_close(y0, want, 1e-5, 1e-7, "softmax axis 0");
  // Half and double dtypes.
  const Tensor h = random_tensor({2, 9}, 6, -3, 3, DType::F16);
  EXPECT_EQ(ops::softmax(h).dtype(), DType::F16);
  expect_close(ops::softmax(h), softmax_reference(h), 1e-3, 1e-4, "f16");
  const Tensor d = random_tensor({2, 9}, 6, -3, 3, DType::F64);
  expect_close(ops::softmax(d), softmax_reference(d), 1e-14, 1e-16, "f64");
  EXPECT_EQ(ops::softmax(Tensor::zeros(DType::F32, {0, 4})).shape(), (Shape{0, 4}));
  expect_error([] { ops::softmax(ops::scalar(1.0)); }, {"softmax", "rank 0"});
  expect_error([&] { ops::softmax(x, 2); }, {"softmax", "axis 2"});
}

std::vector<double> norm_reference(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                                   bool rms) {
  std::vector<double> v = x.to_f64_vector();
  const std::vector<double> wv = w.defined() ? w.to_f64_vector() : std::vector<double>();
  const std::vector<double> bv = b.defined() ? b.to_f64_vector() : std::vector<double>();
  const auto n = static_cast<size_t>(x.dim(-1));
  for (size_t r = 0; r < v.size() / n; ++r) {
    double mean = 0, sq = 0;
    if (!rms) {
      for (size_t i = 0; i < n; ++i) mean += v[r * n + i];
      mean /= static_cast<double>(n);
    }
    for (size_t i = 0; i < n; ++i) sq += (v[r * n + i] - mean) * (v[r * n + i] - mean);
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
    for (size_t i = 0; i < n; ++i) {
      double y = (v[r * n + i] - mean) * rstd;
      if (!wv.empty()) y *= wv[i];
      if (!bv.empty()) y += bv[i];
      v[r * n + i] = y;
    }
  }
  return v;
}

TEST(Norms, LayerNormAndRmsNorm) {
  const Tensor x = random_tensor({2, 3, 45}, 7, -3, 5);
  const Tensor w = random_tensor({45}, 8);
  const Tensor b = random_tensor({45}, 9);
  expect_close(ops::layer_norm(x, w, b, 1e-5), norm_reference(x, w, b, 1e-5, false), 1e-5, 1e-5,
               "ln");
  expect_close(ops::layer_norm(x, Tensor(), Tensor(), 1e-12),
               norm_reference(x, Tensor(), Tensor(), 1e-12, false), 1e-5, 1e-5, "ln plain");
  expect_close(ops::rms_norm(x, w, 1e-6), norm_reference(x, w, Tensor(), 1e-6, true), 1e-5, 1e-5,
               "rms");
  // Views, and F16 input with BF16 weights.
  const Tensor xv = x.transpose(0, 1);
  expect_close(ops::rms_norm(xv, w), norm_reference(xv, w, Tensor(), 1e-6, true), 1e-5, 1e-5,
               "rms view");
  const Tensor xh = random_tensor({4, 16}, 10, -3, 3, DType::F16);
  const Tensor wh = random_tensor({16}, 11, -1, 1, DType::BF16);
  const Tensor yh = ops::layer_norm(xh, wh, Tensor());
  EXPECT_EQ(yh.dtype(), DType::F16);
  expect_close(yh, norm_reference(xh, wh, Tensor(), 1e-5, false), 2e-3, 2e-3, "ln f16");
  const Tensor xd = random_tensor({3, 10}, 12, -3, 3, DType::F64);
  expect_close(ops::rms_norm(xd, Tensor()), norm_reference(xd, Tensor(), Tensor(), 1e-6, true),
               1e-13, 1e-13, "rms f64");
  expect_error([&] { ops::layer_norm(x, random_tensor({44}, 1), b); },
               {"layer_norm", "weight", "[44]", "[2, 3, 45]"});
  expect_error([&] { ops::rms_norm(x, w, -1.0); }, {"rms_norm", "eps"});
  expect_error([] { ops::rms_norm(ops::scalar(1.0), Tensor()); }, {"rms_norm", "rank"});
}

TEST(Embedding, GathersRowsAndChecksIds) {
  const Tensor w = random_tensor({10, 6}, 13);
  const std::vector<int64_t> ids = {3, 0, 9, 3, 7, 1};
  const Tensor idt = Tensor::from_values<int64_t>(DType::I64, {2, 3}, ids);
  const Tensor y = ops::embedding(w, idt);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 6}));
  const std::vector<double> wv = w.to_f64_vector();
  std::vector<double> want;
  for (int64_t id : ids)
    for (int64_t j = 0; j < 6; ++j) want.push_back(wv[static_cast<size_t>(id * 6 + j)]);
  expect_close(y, want, 0, 0, "embedding");
  // I32 ids, a transposed id view, BF16 weights keep their dtype.
  const std::vector<int32_t> ids32 = {3, 0, 9, 3, 7, 1};
  const Tensor id32 = Tensor::from_values<int32_t>(DType::I32, {3, 2}, ids32).transpose(0, 1);
  const Tensor wb = w.to(DType::BF16);
  const Tensor yb = ops::embedding(wb, id32);
  EXPECT_EQ(yb.dtype(), DType::BF16);
  EXPECT_EQ(yb.shape(), (Shape{2, 3, 6}));
  EXPECT_EQ(yb.to_f64_vector(), ops::embedding(wb, id32.contiguous()).to_f64_vector());
  EXPECT_EQ(yb.select(0, 0).select(0, 1).to_f64_vector(), wb.select(0, 9).to_f64_vector());
  // Bounds and dtype checks.
  const std::vector<int64_t> bad = {1, 10};
  expect_error([&] { ops::embedding(w, Tensor::from_values<int64_t>(DType::I64, {2}, bad)); },
               {"embedding", "id 10", "[10, 6]"});
  const std::vector<int64_t> neg = {-1};
  expect_error([&] { ops::embedding(w, Tensor::from_values<int64_t>(DType::I64, {1}, neg)); },
               {"embedding", "id -1"});
  expect_error([&] { ops::embedding(w, random_tensor({2}, 1)); }, {"embedding", "F32"});
  expect_error([&] { ops::embedding(random_tensor({10}, 1), idt); }, {"embedding", "[V, D]"});
  EXPECT_EQ(ops::embedding(w, Tensor::zeros(DType::I64, {0})).shape(), (Shape{0, 6}));
}

TEST(Concat, AlongEachAxis) {
  const Tensor a = random_tensor({2, 3, 4}, 14);
  const Tensor b = random_tensor({2, 1, 4}, 15);
  const Tensor c = random_tensor({2, 5, 4}, 16).narrow(1, 1, 2);  // non-contiguous
  const Tensor y = ops::concat({a, b, c}, 1);
  EXPECT_EQ(y.shape(), (Shape{2, 6, 4}));
  const std::vector<double> va = a.to_f64_vector(), vb = b.to_f64_vector(), vc = c.to_f64_vector();
  std::vector<double> want;
  for (size_t o = 0; o < 2; ++o) {
    want.insert(want.end(), va.begin() + o * 12, va.begin() + (o + 1) * 12);
    want.insert(want.end(), vb.begin() + o * 4, vb.begin() + (o + 1) * 4);
    want.insert(want.end(), vc.begin() + o * 8, vc.begin() + (o + 1) * 8);
  }
  expect_close(y, want, 0, 0, "concat axis 1");
  const Tensor z = ops::concat({a, a}, -1);
  EXPECT_EQ(z.shape(), (Shape{2, 3, 8}));
  EXPECT_EQ(z.narrow(2, 4, 4).to_f64_vector(), va);
  EXPECT_EQ(ops::concat({a, Tensor::zeros(DType::F32, {0, 3, 4})}, 0).to_f64_vector(), va);
  expect_error([&] { ops::concat({a, b}, 0); }, {"concat", "[2, 3, 4]", "[2, 1, 4]"});
  expect_error([&] { ops::concat({a, a.to(DType::F16)}, 0); }, {"concat", "F16"});
  expect_error([&] { ops::concat({a}, 3); }, {"concat", "axis 3"});
  expect_error([&] { ops::concat(std::span<const Tensor>(), 0); }, {"concat", "no tensors"});
}

TEST(TopK, SortedValuesAndIndices) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = f32_tensor({2, 6}, {1, 5, 3, 5, -2, 0, 4, nan, 4, 9, 4, -1});
  const ops::TopK r = ops::topk(x, 4);
  EXPECT_EQ(r.values.shape(), (Shape{2, 4}));
  EXPECT_EQ(r.indices.dtype(), DType::I64);
  EXPECT_EQ(r.indices.to_f64_vector(), (std::vector<double>{1, 3, 2, 0, 1, 3, 0, 2}));
  const std::vector<double> v = r.values.to_f64_vector();
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 4), (std::vector<double>{5, 5, 3, 1}));
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_EQ(std::vector<double>(v.begin() + 5, v.end()), (std::vector<double>{9, 4, 4}));
  // Against a full stable sort on random data; F16 values come back exactly.
  const Tensor h = random_tensor({3, 50}, 17, -4, 4, DType::F16);
  const ops::TopK rh = ops::topk(h, 7);
  EXPECT_EQ(rh.values.dtype(), DType::F16);
  const std::vector<double> hv = h.to_f64_vector();
  for (size_t row = 0; row < 3; ++row) {
    std::vector<int64_t> order(50);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
      return hv[row * 50 + static_cast<size_t>(i)] > hv[row * 50 + static_cast<size_t>(j)];
    });
    for (size_t j = 0; j < 7; ++j) {
      EXPECT_EQ(rh.indices.to_f64_vector()[row * 7 + j], static_cast<double>(order[j]));
      EXPECT_EQ(rh.values.to_f64_vector()[row * 7 + j],
                hv[row * 50 + static_cast<size_t>(order[j])]);
    }
  }
  EXPECT_EQ(ops::topk(x, 0).values.shape(), (Shape{2, 0}));
  expect_error([&] { ops::topk(x, 7); }, {"topk", "k = 7", "[2, 6]"});
  expect_error([&] { ops::topk(x, -1); }, {"topk", "k = -1"});
}

TEST(Convert, TensorHelpers) {
  const Tensor x = random_tensor({3, 5}, 18, -100, 100);
  for (DType dt : {DType::F16, DType::BF16}) {
    const Tensor h = convert_to(x.transpose(0, 1), dt);
    EXPECT_EQ(h.dtype(), dt);
    EXPECT_TRUE(h.is_contiguous());
    // Same bits as the scalar reference conversion in Tensor::to.
    EXPECT_EQ(h.to_f64_vector(), x.transpose(0, 1).to(dt).to_f64_vector());
    const Tensor back = to_f32(h);
    EXPECT_EQ(back.dtype(), DType::F32);
    EXPECT_EQ(back.to_f64_vector(), h.to_f64_vector());
  }
  EXPECT_EQ(to_f32(x).storage(), x.storage());  // contiguous F32: no copy
  EXPECT_EQ(to_f32(Tensor::zeros(DType::I32, {2})).dtype(), DType::F32);
}

}  // namespace
}  // namespace ember
