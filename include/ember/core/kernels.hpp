#pragma once
// Row kernels on contiguous F32 data: the SIMD building blocks under ember/core/ops.hpp.
//
// Every function in namespace ember::kernels is vectorized with Highway and picks the best
// instruction set of the running CPU at run time (HWY_DYNAMIC_DISPATCH: SSSE3/SSE4/AVX2/AVX-512
// on x86-64; no -march flags needed). Each has a scalar twin in ember::kernels::ref that defines
// the expected result; tests compare the two on every target the CPU supports.
//
// Semantics shared by both versions:
//  - NaN inputs give NaN outputs (max/min propagate NaN like torch.maximum).
//  - exp/log/tanh/sigmoid/gelu are approximations within a few ulp of libm (GELU's erf form
//    within ~2e-7 absolute of std::erf); exp overflows to +inf and log(0) = -inf.
//  - pow and sin/cos run the scalar libm function per element on every target.
//  - Kernels are single-threaded; ops.cpp splits work across ember::parallel_for.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ember::kernels {

enum class UnaryOp : uint8_t {
  Neg,
  Abs,
  Sqrt,
  Rsqrt,  // 1 / sqrt(x), exactly rounded division (not the hardware estimate)
  Exp,
  Log,
  Tanh,
  Sigmoid,   // 1 / (1 + exp(-x))
  Relu,      // max(x, 0); relu(NaN) = NaN
  Silu,      // x * sigmoid(x)
  Gelu,      // 0.5 x (1 + erf(x / sqrt(2)))
  GeluTanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  Square,
  Reciprocal,  // 1 / x
  Sin,
  Cos,
};
inline constexpr int kUnaryOpCount = 16;
const char* unary_op_name(UnaryOp op);

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Max, Min, Pow };
inline constexpr int kBinaryOpCount = 7;
const char* binary_op_name(BinaryOp op);

// y[i] = op(x[i]). x and y may be the same pointer.
void unary_f32(UnaryOp op, const float* x, float* y, size_t n);
// y[i] = op(a[i], b[i]); y may alias a or b.
void binary_f32(BinaryOp op, const float* a, const float* b, float* y, size_t n);
// y[i] = op(a[i], b) and y[i] = op(a, b[i]): one operand broadcast as a scalar.
void binary_f32_scalar_rhs(BinaryOp op, const float* a, float b, float* y, size_t n);
void binary_f32_scalar_lhs(BinaryOp op, float a, const float* b, float* y, size_t n);

// Numerically stable softmax of one row: y = exp(x - max(x)) / sum(exp(x - max(x))).
void softmax_row_f32(const float* x, float* y, size_t n);
// y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance over the row.
// weight and bias may be null (treated as 1 and 0).
void layer_norm_row_f32(const float* x, const float* weight, const float* bias, float eps, float* y,
                        size_t n);
// y = x / sqrt(mean(x^2) + eps) * weight; weight may be null.
void rms_norm_row_f32(const float* x, const float* weight, float eps, float* y, size_t n);

// sum_i w[i] * x[i] for a weight row stored as F32, F16 or BF16 (raw bits) and F32 x, widened
// in registers. Accumulation order differs between targets (lane-wise partial sums).
float dot_f32(const void* w, const float* x, size_t n);
float dot_f16(const void* w, const float* x, size_t n);
float dot_bf16(const void* w, const float* x, size_t n);

// GGML block weight rows dotted with activation rows in their 8-bit format (see
// ember/core/quant.hpp, whose scalar vec_dot kernels are the references): n elements, a whole
// number of blocks. Integer sums per block are exact; float rounding as in the references.
float dot_q4_0_q8_0(const void* w, const void* x, size_t n);
float dot_q4_1_q8_1(const void* w, const void* x, size_t n);
float dot_q5_0_q8_0(const void* w, const void* x, size_t n);
float dot_q5_1_q8_1(const void* w, const void* x, size_t n);
float dot_q8_0_q8_0(const void* w, const void* x, size_t n);
float dot_q2_k_q8_k(const void* w, const void* x, size_t n);
float dot_q3_k_q8_k(const void* w, const void* x, size_t n);
float dot_q4_k_q8_k(const void* w, const void* x, size_t n);
float dot_q5_k_q8_k(const void* w, const void* x, size_t n);
float dot_q6_k_q8_k(const void* w, const void* x, size_t n);

// Small-M GEMM over weights packed once into column panels (ops::pack_linear_weight): panel p
// holds, for each k in order, the kGemmPanel weights w[p * kGemmPanel + j][k] side by side,
// zero past the last of n outputs. Computes y[i, j] = sum_k x[i, k] * w[j][k] for rows i < m
// and the columns of panels [p0, p1) below n; x rows are ldx floats apart, y rows ldy. Each
// output is one F32 sum along k in order (fused multiply-add where the target has it).
inline constexpr size_t kGemmPanel = 16;
// For more rows than one register block, the SIMD kernel walks k in blocks of this many
// (carrying its sums through y), so a caller that keeps a block of x rows in cache needs only
// this much of each row there.
inline constexpr size_t kGemmKBlock = 256;
void gemm_panels_f32(const float* x, size_t ldx, size_t m, size_t k, const float* panels, size_t p0,
                     size_t p1, size_t n, float* y, size_t ldy);

// Attention for a few query rows (a decode step) without a GEMM: the keys and values are read
// in place, rows `stride` floats apart, with nothing packed.
// scores[j] = scale * dot(q, k + j * stride) over d floats, for j < n.
void dot_rows_f32(const float* q, const float* k, size_t stride, size_t n, size_t d, float scale,
                  float* scores);
// out[i] = sum over j < n, in order, of p[j] * v[j * stride + i], for i < d.
void weighted_rows_f32(const float* p, const float* v, size_t stride, size_t n, size_t d,
                       float* out);
// Log-softmax of one row: y = x - max(x) - log(sum exp(x - max(x))), the sum in double. y may
// be x.
void log_softmax_row_f32(const float* x, float* y, size_t n);
// The first i < n with x[i] + base > threshold (the sum rounded to F32), or n: beam search's
// scan of a vocabulary row for scores that enter its list of best continuations.
size_t first_above_f32(const float* x, size_t n, float base, float threshold);

namespace ref {
float unary(UnaryOp op, float x);
double unary(UnaryOp op, double x);
float binary(BinaryOp op, float a, float b);
double binary(BinaryOp op, double a, double b);
void unary_f32(UnaryOp op, const float* x, float* y, size_t n);
void binary_f32(BinaryOp op, const float* a, const float* b, float* y, size_t n);
void softmax_row_f32(const float* x, float* y, size_t n);
void layer_norm_row_f32(const float* x, const float* weight, const float* bias, float eps, float* y,
                        size_t n);
void rms_norm_row_f32(const float* x, const float* weight, float eps, float* y, size_t n);
// Sequential sums in double.
float dot_f32(const void* w, const float* x, size_t n);
float dot_f16(const void* w, const float* x, size_t n);
float dot_bf16(const void* w, const float* x, size_t n);
// Plain F32 multiply-then-add along k in order.
void gemm_panels_f32(const float* x, size_t ldx, size_t m, size_t k, const float* panels, size_t p0,
                     size_t p1, size_t n, float* y, size_t ldy);
// Sums in double, sequential.
void dot_rows_f32(const float* q, const float* k, size_t stride, size_t n, size_t d, float scale,
                  float* scores);
void weighted_rows_f32(const float* p, const float* v, size_t stride, size_t n, size_t d,
                       float* out);
void log_softmax_row_f32(const float* x, float* y, size_t n);
size_t first_above_f32(const float* x, size_t n, float base, float threshold);
}  // namespace ref

// Which SIMD targets this build holds that the CPU supports, best first (e.g. "AVX3", "AVX2",
// "SSE4", "SSSE3", "EMU128"), and a test hook that restricts dispatch to one of them
// (an empty name restores normal dispatch). Also covers the conversions in convert.hpp.
// The environment variable EMBER_SIMD=NAME (case-insensitive; "scalar" names the portable
// target, SCALAR or EMU128 as built) limits the list to NAME and the targets below it. It is
// read before the first dispatch, so a whole program or test run takes a lower arithmetic
// path; a name the CPU or build lacks makes every kernel call throw an Error listing the
// available ones.
std::vector<std::string> simd_targets();
void simd_force_target(const std::string& name);
// The target the dispatcher picks now (after any simd_force_target).
std::string simd_active_target();

}  // namespace ember::kernels
