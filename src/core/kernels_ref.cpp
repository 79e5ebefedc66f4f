// Scalar reference kernels: the definitions the SIMD kernels in kernels_simd.cpp are tested
// against, and the fallback for ops that have no vector form (pow, sin, cos).
#include <cmath>
#include <limits>

#include "ember/core/convert.hpp"
#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"

namespace ember::kernels {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Abs:
      return "abs";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Rsqrt:
      return "rsqrt";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::Silu:
      return "silu";
    case UnaryOp::Gelu:
      return "gelu";
    case UnaryOp::GeluTanh:
      return "gelu_tanh";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::Reciprocal:
      return "reciprocal";
    case UnaryOp::Sin:
      return "sin";
    case UnaryOp::Cos:
      return "cos";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Max:
      return "maximum";
    case BinaryOp::Min:
      return "minimum";
    case BinaryOp::Pow:
      return "pow";
  }
  return "binary";
}

namespace ref {
namespace {

// One definition per op for both precisions: F32 is what the SIMD kernels are tested against,
// F64 is what ops use for double tensors.
template <typename T>
T unary_scalar(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Abs:
      return std::fabs(x);
    case UnaryOp::Sqrt:
      return std::sqrt(x);
    case UnaryOp::Rsqrt:
      return T(1) / std::sqrt(x);
    case UnaryOp::Exp:
      return std::exp(x);
    case UnaryOp::Log:
      return std::log(x);
    case UnaryOp::Tanh:
      return std::tanh(x);
    case UnaryOp::Sigmoid:
      return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::Relu:
      return x > T(0) || std::isnan(x) ? x : T(0);
    case UnaryOp::Silu:
      return x / (T(1) + std::exp(-x));
    case UnaryOp::Gelu: {
      // erfc of |x| keeps full relative precision in the tail where x * Phi(x) is tiny.
      const T half_c = T(0.5) * std::erfc(std::fabs(x) * T(0.70710678118654752440));
      return x < T(0) ? x * half_c : x * (T(1) - half_c);
    }
    case UnaryOp::GeluTanh: {
      const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
      return x / (T(1) + std::exp(T(-2) * u));
    }
    case UnaryOp::Square:
      return x * x;
    case UnaryOp::Reciprocal:
      return T(1) / x;
    case UnaryOp::Sin:
      return std::sin(x);
    case UnaryOp::Cos:
      return std::cos(x);
  }
  return x;
}

template <typename T>
T binary_scalar(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Max:
      if (std::isnan(a) || std::isnan(b)) return a + b;
      return a > b ? a : b;
    case BinaryOp::Min:
      if (std::isnan(a) || std::isnan(b)) return a + b;
      return a < b ? a : b;
    case BinaryOp::Pow:
      return std::pow(a, b);
  }
  return a;
}

}  // namespace

float unary(UnaryOp op, float x) {
  return unary_scalar(op, x);
}
double unary(UnaryOp op, double x) {
  return unary_scalar(op, x);
}
float binary(BinaryOp op, float a, float b) {
  return binary_scalar(op, a, b);
}
double binary(BinaryOp op, double a, double b) {
  return binary_scalar(op, a, b);
}

void unary_f32(UnaryOp op, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = unary(op, x[i]);
}

void binary_f32(BinaryOp op, const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = binary(op, a[i], b[i]);
}

void softmax_row_f32(const float* x, float* y, size_t n) {
  if (n == 0) return;
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    sum += y[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) y[i] *= inv;
}

void layer_norm_row_f32(const float* x, const float* weight, const float* bias, float eps, float* y,
                        size_t n) {
  if (n == 0) return;
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(n);
  float sq = 0.0f;
  for (size_t i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  for (size_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * rstd;
    if (weight) v *= weight[i];
    if (bias) v += bias[i];
    y[i] = v;
  }
}

void rms_norm_row_f32(const float* x, const float* weight, float eps, float* y, size_t n) {
  if (n == 0) return;
  float sq = 0.0f;
  for (size_t i = 0; i < n; ++i) sq += x[i] * x[i];
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * rstd * (weight ? weight[i] : 1.0f);
}

float dot_f32(const void* w, const float* x, size_t n) {
  const auto* wf = static_cast<const float*>(w);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(wf[i]) * x[i];
  return static_cast<float>(sum);
}
float dot_f16(const void* w, const float* x, size_t n) {
  const auto* wh = static_cast<const uint16_t*>(w);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(f16_to_f32(wh[i])) * x[i];
  return static_cast<float>(sum);
}
float dot_bf16(const void* w, const float* x, size_t n) {
  const auto* wh = static_cast<const uint16_t*>(w);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_f32(wh[i])) * x[i];
  return static_cast<float>(sum);
}

void gemm_panels_f32(const float* x, size_t ldx, size_t m, size_t k, const float* panels, size_t p0,
                     size_t p1, size_t n, float* y, size_t ldy) {
  for (size_t p = p0; p < p1; ++p) {
    const float* panel = panels + p * k * kGemmPanel;
    for (size_t j = 0; j < kGemmPanel && p * kGemmPanel + j < n; ++j) {
      for (size_t i = 0; i < m; ++i) {
        float sum = 0.0f;
        for (size_t kk = 0; kk < k; ++kk) sum += x[i * ldx + kk] * panel[kk * kGemmPanel + j];
        y[i * ldy + p * kGemmPanel + j] = sum;
      }
    }
  }
}

void dot_rows_f32(const float* q, const float* k, size_t stride, size_t n, size_t d, float scale,
                  float* scores) {
  for (size_t j = 0; j < n; ++j) scores[j] = scale * dot_f32(k + j * stride, q, d);
}

void weighted_rows_f32(const float* p, const float* v, size_t stride, size_t n, size_t d,
                       float* out) {
  for (size_t i = 0; i < d; ++i) {
    double sum = 0.0;
    for (size_t j = 0; j < n; ++j) sum += static_cast<double>(p[j]) * v[j * stride + i];
    out[i] = static_cast<float>(sum);
  }
}

void log_softmax_row_f32(const float* x, float* y, size_t n) {
  if (n == 0) return;
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(x[i] - m);
  const auto shift = static_cast<float>(std::log(sum));
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - m) - shift;
}

size_t first_above_f32(const float* x, size_t n, float base, float threshold) {
  for (size_t i = 0; i < n; ++i)
    if (x[i] + base > threshold) return i;
  return n;
}

}  // namespace ref
}  // namespace ember::kernels

namespace ember::ref {

void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}
void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace ember::ref
