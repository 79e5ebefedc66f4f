#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>

#include "ember/core/ops.hpp"
#include "ops_test_util.hpp"

namespace ember {
namespace {

using namespace ember::test;  // NOLINT
using kernels::BinaryOp;
using kernels::UnaryOp;

// Reference values in long double, written in forms other than the library's (sigmoid through
// tanh, powers through pow, GELU through erf rather than erfc) so that a slip in one is not
// repeated in the other.
double unary_reference(UnaryOp op, double x) {
  const long double v = x;
  switch (op) {
    case UnaryOp::Neg:
      return static_cast<double>(0.0L - v);
    case UnaryOp::Abs:
      return static_cast<double>(std::hypot(v, 0.0L));
    case UnaryOp::Sqrt:
      return static_cast<double>(std::pow(v, 0.5L));
    case UnaryOp::Rsqrt:
      return static_cast<double>(std::pow(v, -0.5L));
    case UnaryOp::Exp:
      return static_cast<double>(std::pow(std::numbers::e_v<long double>, v));
    case UnaryOp::Log:
      return static_cast<double>(std::log2(v) / std::log2(std::numbers::e_v<long double>));
    case UnaryOp::Tanh:
      return static_cast<double>(std::tanh(v));
    case UnaryOp::Sigmoid:
      return static_cast<double>(0.5L * (1.0L + std::tanh(0.5L * v)));
    case UnaryOp::Relu:
      return static_cast<double>(std::fmax(v, 0.0L));
    case UnaryOp::Silu:
      return static_cast<double>(v * 0.5L * (1.0L + std::tanh(0.5L * v)));
    case UnaryOp::Gelu:
      return static_cast<double>(0.5L * v * (1.0L + std::erf(v / std::sqrt(2.0L))));
    case UnaryOp::GeluTanh:
      return static_cast<double>(
          0.5L * v *
          (1.0L + std::tanh(std::sqrt(2.0L / std::numbers::pi_v<long double>) *
                            (v + 0.044715L * std::pow(v, 3.0L)))));
    case UnaryOp::Square:
      return static_cast<double>(std::pow(v, 2.0L));
    case UnaryOp::Reciprocal:
      return static_cast<double>(std::pow(v, -1.0L));
    case UnaryOp::Sin:
      return static_cast<double>(std::sin(v));
    case UnaryOp::Cos:
      return static_cast<double>(std::cos(v));
  }
  return 0.0;
}

double binary_reference(BinaryOp op, double a, double b) {
  const long double x = a;
  const long double y = b;
  switch (op) {
    case BinaryOp::Add:
      return static_cast<double>(x + y);
    case BinaryOp::Sub:
      return static_cast<double>(x + (0.0L - y));
    case BinaryOp::Mul:
      return static_cast<double>(x * y);
    case BinaryOp::Div:
      return static_cast<double>(x * (1.0L / y));
    case BinaryOp::Max:
      return static_cast<double>(std::fmax(x, y));
    case BinaryOp::Min:
      return static_cast<double>(std::fmin(x, y));
    case BinaryOp::Pow:
      return static_cast<double>(std::exp(y * std::log(x)));
  }
  return 0.0;
}

bool needs_positive(UnaryOp op) {
  return op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Log ||
         op == UnaryOp::Reciprocal;
}

std::vector<double> unary_expected(UnaryOp op, const Tensor& x) {
  std::vector<double> v = x.to_f64_vector();
  for (double& e : v) e = unary_reference(op, e);
  return v;
}

TEST(Unary, F32MatchesDoubleReference) {
  for (int o = 0; o < kernels::kUnaryOpCount; ++o) {
    const auto op = static_cast<UnaryOp>(o);
    const Tensor x = needs_positive(op) ? random_tensor({3, 37}, 10 + o, 0.05, 6.0)
                                        : random_tensor({3, 37}, 10 + o, -9.0, 9.0);
    const Tensor y = ops::unary(op, x);
    EXPECT_EQ(y.dtype(), DType::F32);
    EXPECT_EQ(y.shape(), x.shape());
    expect_close(y, unary_expected(op, x), 4e-6, 1e-6, kernels::unary_op_name(op));
  }
}

TEST(Unary, NamedFunctionsCallTheirOp) {
  const Tensor x = random_tensor({17}, 1, 0.1, 3.0);
  expect_close(ops::exp(x), unary_expected(UnaryOp::Exp, x), 4e-6, 0, "exp");
  expect_close(ops::log(x), unary_expected(UnaryOp::Log, x), 4e-6, 1e-7, "log");
  expect_close(ops::gelu(x), unary_expected(UnaryOp::Gelu, x), 4e-6, 1e-7, "gelu");
  expect_close(ops::gelu_tanh(x), unary_expected(UnaryOp::GeluTanh, x), 4e-6, 1e-7, "gelu_tanh");
  expect_close(ops::silu(x), unary_expected(UnaryOp::Silu, x), 4e-6, 1e-7, "silu");
  expect_close(ops::rsqrt(x), unary_expected(UnaryOp::Rsqrt, x), 1e-6, 0, "rsqrt");
  expect_close(ops::neg(x), unary_expected(UnaryOp::Neg, x), 0, 0, "neg");
  expect_close(ops::relu(ops::neg(x)), std::vector<double>(17, 0.0), 0, 0, "relu");
}

TEST(Unary, LargeTensorUsesAllChunksCorrectly) {
  const Tensor x = random_tensor({257, 999}, 2, -5.0, 5.0);
  expect_close(ops::tanh(x), unary_expected(UnaryOp::Tanh, x), 4e-6, 1e-7, "tanh");
}

TEST(Unary, NonContiguousInputMatchesContiguous) {
  const Tensor base = random_tensor({6, 9, 4}, 3, -3.0, 3.0);
  const Tensor views[] = {base.transpose(0, 2), base.narrow(1, 2, 5), base.select(2, 1),
                          base.narrow(0, 1, 1).broadcast_to({3, 9, 4})};
  for (const Tensor& v : views) {
    ASSERT_FALSE(v.is_contiguous());
    const Tensor y = ops::gelu(v);
    const Tensor y_ref = ops::gelu(v.contiguous());
    EXPECT_EQ(y.shape(), v.shape());
    EXPECT_EQ(y.to_f32_vector(), y_ref.to_f32_vector());  // layout never changes the result
    expect_close(y, unary_expected(UnaryOp::Gelu, v), 4e-6, 1e-6, "gelu view");
  }
}

TEST(Unary, HalfAndDoubleDtypes) {
  const Tensor x64 = random_tensor({5, 11}, 4, -3.0, 3.0, DType::F64);
  const Tensor y64 = ops::exp(x64);
  EXPECT_EQ(y64.dtype(), DType::F64);
  expect_close(y64, unary_expected(UnaryOp::Exp, x64), 1e-14, 0, "exp f64");
  for (DType dt : {DType::F16, DType::BF16}) {
    const Tensor x = random_tensor({5, 11}, 5, -3.0, 3.0, dt);
    const Tensor y = ops::silu(x);
    EXPECT_EQ(y.dtype(), dt);
    // One rounding to the output format: half an ulp of 2^-11 (F16) or 2^-8 (BF16).
    const double rtol = dt == DType::F16 ? 1e-3 : 4e-3;
    expect_close(y, unary_expected(UnaryOp::Silu, x), rtol, 1e-4, "silu half");
  }
}

TEST(Unary, EmptyAndScalar) {
  const Tensor empty = Tensor::zeros(DType::F32, {0, 3});
  const Tensor e = ops::exp(empty);
  EXPECT_EQ(e.shape(), (Shape{0, 3}));
  const Tensor s = ops::sqrt(ops::scalar(16.0));
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.to_f64_vector(), std::vector<double>{4.0});
}

TEST(Unary, RejectsIntegerDtypes) {
  expect_error([] { ops::exp(Tensor::zeros(DType::I64, {2})); }, {"exp", "I64", "[2]"});
  expect_error([] { ops::neg(Tensor()); }, {"neg", "undefined"});
}

TEST(Broadcast, Shapes) {
  EXPECT_EQ(ops::broadcast_shapes(Shape{2, 1, 4}, Shape{3, 1}), (Shape{2, 3, 4}));
  EXPECT_EQ(ops::broadcast_shapes(Shape{}, Shape{5}), (Shape{5}));
  EXPECT_EQ(ops::broadcast_shapes(Shape{0, 1}, Shape{1, 3}), (Shape{0, 3}));
  EXPECT_THROW(ops::broadcast_shapes(Shape{2, 3}, Shape{4}), Error);
  EXPECT_THROW(ops::broadcast_shapes(Shape{2}, Shape{0}), Error);
}

void check_binary(BinaryOp op, const Tensor& a, const Tensor& b, double rtol) {
  const Tensor y = ops::binary(op, a, b);
  const Shape shape = ops::broadcast_shapes(a.shape(), b.shape());
  ASSERT_EQ(y.shape(), shape);
  const std::vector<double> va = a.to_f64_vector();
  const std::vector<double> vb = b.to_f64_vector();
  std::vector<double> want(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < want.size(); ++i) {
    const std::vector<int64_t> idx = unravel(static_cast<int64_t>(i), shape);
    want[i] = binary_reference(op, va[static_cast<size_t>(broadcast_flat(idx, a.shape()))],
                               vb[static_cast<size_t>(broadcast_flat(idx, b.shape()))]);
  }
  expect_close(y, want, rtol, 1e-6,
               std::string(kernels::binary_op_name(op)) + " " + shape_to_string(a.shape()) + " " +
                   shape_to_string(b.shape()));
}

TEST(Binary, BroadcastingMatchesReference) {
  const std::pair<Shape, Shape> cases[] = {
      {{2, 3, 4}, {4}},  {{2, 1, 4}, {3, 1}},    {{1}, {5}},       {{}, {2, 3}},
      {{3, 1}, {1, 4}},  {{2, 3}, {2, 3}},       {{0, 3}, {1, 3}}, {{4, 1, 1}, {1, 2, 5}},
      {{7, 33}, {7, 1}}, {{1, 1, 1}, {2, 1, 3}}, {{2, 3}, {}},     {{40, 300}, {300}},
  };
  uint32_t seed = 100;
  for (const auto& [sa, sb] : cases) {
    for (int o = 0; o < kernels::kBinaryOpCount; ++o) {
      const auto op = static_cast<BinaryOp>(o);
      const double lo = op == BinaryOp::Pow || op == BinaryOp::Div ? 0.5 : -3.0;
      const Tensor a = random_tensor(sa, seed++, lo, 3.0);
      const Tensor b = random_tensor(sb, seed++, lo, 3.0);
      check_binary(op, a, b, 1e-6);
      check_binary(op, b, a, 1e-6);
    }
  }
}

TEST(Binary, NonContiguousOperands) {
  const Tensor a = random_tensor({5, 8, 3}, 7);
  const Tensor b = random_tensor({3, 8}, 8);
  check_binary(BinaryOp::Add, a, b.transpose(0, 1), 1e-6);               // [5,8,3] + [8,3] view
  check_binary(BinaryOp::Mul, a.transpose(0, 2), b.unsqueeze(2), 1e-6);  // [3,8,5] * [3,8,1]
  check_binary(BinaryOp::Sub, a.narrow(1, 3, 4), a.narrow(1, 0, 4), 1e-6);
  check_binary(BinaryOp::Max, a.select(2, 1), b.select(0, 2), 1e-6);  // strided rows
}

TEST(Binary, DtypePromotion) {
  const Tensor f32 = random_tensor({4, 5}, 9);
  const Tensor f16 = random_tensor({5}, 10, -2, 2, DType::F16);
  const Tensor bf16 = random_tensor({4, 1}, 11, -2, 2, DType::BF16);
  const Tensor f64 = random_tensor({4, 5}, 12, -2, 2, DType::F64);
  EXPECT_EQ(ops::add(f32, f16).dtype(), DType::F32);
  EXPECT_EQ(ops::add(f16, f16).dtype(), DType::F16);
  EXPECT_EQ(ops::add(bf16, bf16).dtype(), DType::BF16);
  EXPECT_EQ(ops::add(f16, bf16).dtype(), DType::F32);
  EXPECT_EQ(ops::add(f32, f64).dtype(), DType::F64);
  check_binary(BinaryOp::Mul, f32, f16, 1e-6);  // F32 result: exact inputs, one rounding
  check_binary(BinaryOp::Add, f16, bf16, 1e-6);
  check_binary(BinaryOp::Div, f64, f32, 1e-15);
  check_binary(BinaryOp::Sub, bf16, bf16.transpose(0, 1), 4e-3);  // rounded to BF16
}

TEST(Binary, MaxMinPropagateNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor a = f32_tensor({4}, {1.0f, nan, 3.0f, nan});
  const Tensor b = f32_tensor({4}, {nan, 2.0f, 1.0f, nan});
  for (const Tensor& y : {ops::maximum(a, b), ops::minimum(a, b)}) {
    const auto v = y.to_f32_vector();
    EXPECT_TRUE(std::isnan(v[0]));
    EXPECT_TRUE(std::isnan(v[1]));
    EXPECT_TRUE(std::isnan(v[3]));
  }
  EXPECT_EQ(ops::maximum(a, b).to_f32_vector()[2], 3.0f);
  EXPECT_EQ(ops::minimum(a, b).to_f32_vector()[2], 1.0f);
}

TEST(Binary, Errors) {
  expect_error(
      [] {
        ops::add(Tensor::zeros(DType::F32, {2, 3}), Tensor::zeros(DType::F32, {4}));
      },
      {"add", "[2, 3]", "[4]"});
  expect_error([] { ops::mul(Tensor::zeros(DType::I32, {2}), Tensor::zeros(DType::F32, {2})); },
               {"mul", "I32"});
}

TEST(Construction, ScalarAndFull) {
  const Tensor f = ops::full({2, 3}, -1.5, DType::BF16);
  EXPECT_EQ(f.dtype(), DType::BF16);
  EXPECT_EQ(f.to_f64_vector(), std::vector<double>(6, -1.5));
  const Tensor y = ops::mul(random_tensor({3}, 1), ops::scalar(0.0));
  EXPECT_EQ(y.to_f64_vector(), std::vector<double>(3, 0.0));
}

}  // namespace
}  // namespace ember
