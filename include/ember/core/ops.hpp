#pragma once
// Tensor ops for CPU inference, in namespace ember::ops (so that exp, max, abs... never shadow
// the std math functions in code of namespace ember). Free functions taking `const Tensor&` and
// returning new contiguous tensors; inputs may be any strided view (transposed, narrowed,
// broadcast).
//
// API summary
//   Elementwise unary   neg abs sqrt rsqrt exp log tanh sigmoid relu silu gelu gelu_tanh
//                       square reciprocal sin cos          (also unary(UnaryOp, x))
//   Elementwise binary  add sub mul div maximum minimum pow (numpy broadcasting;
//                       also binary(BinaryOp, a, b)); scalar(v, dtype), full(shape, v, dtype)
//   Reductions          sum mean max (values) argmax (I64) over one axis, keepdim optional
//   Linear algebra      matmul (numpy semantics: 1-D promotion, broadcast batch dims)
//                       linear(x[..., K], weight[N, K], bias[N]?) = x @ weight^T + bias
//                       register_linear_kernel: per-weight-dtype kernel table (see below)
//   NN                  softmax (stable, any axis; default last), layer_norm, rms_norm,
//                       embedding (gather rows), concat, topk (values + I64 indices)
//   Conversions         see ember/core/convert.hpp (to_f32, convert_to, bulk F16/BF16)
//
// Dtype policy
//   Float ops accept F32, F64, F16 and BF16. F32 is the fast path (SIMD + thread pool). F16 and
//   BF16 are converted to F32, computed in F32 and converted back: elementwise ops, softmax,
//   norms, reductions (sum/mean/max) return the input dtype (binary ops: the promoted dtype;
//   F16 with BF16 promotes to F32, anything with F64 to F64). F64 is computed in F64 by scalar
//   loops. matmul and linear return F32, or F64 when an operand is F64 (weights are often stored
//   in a narrower or quantized format; the result is always full precision).
//   Integer dtypes are rejected by float ops with an ember::Error.
//
// Threading
//   Ops split work across the persistent pool (ember::parallel_for). GEMMs go to OpenBLAS from
//   the calling thread only: OpenBLAS threads large GEMMs itself, and calling it from inside our
//   pool would oversubscribe the cores (each pool thread spawning BLAS threads) and serialize on
//   OpenBLAS's internal locks. Set OPENBLAS_NUM_THREADS to bound its threads, and do not call
//   matmul/linear from inside a parallel_for task.
//
// Errors: every op validates shapes and dtypes and throws ember::Error naming the op and shapes.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "ember/core/kernels.hpp"
#include "ember/core/tensor.hpp"

namespace ember::ops {

using kernels::BinaryOp;
using kernels::UnaryOp;

// ---- construction helpers
Tensor scalar(double value, DType dtype = DType::F32);  // rank-0 tensor
Tensor full(Shape shape, double value, DType dtype = DType::F32);

// ---- elementwise
Tensor unary(UnaryOp op, const Tensor& x);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);       // erf form (BERT, GPT-NeoX "gelu")
Tensor gelu_tanh(const Tensor& x);  // tanh approximation (GPT-2 "gelu_new", Gemma)
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);

// numpy broadcasting: shapes are right-aligned; each dim pair must be equal or contain a 1.
Shape broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // NaN-propagating
Tensor minimum(const Tensor& a, const Tensor& b);  // NaN-propagating
Tensor pow(const Tensor& a, const Tensor& b);

// ---- reductions over one axis (negative axes count from the end)
// sum/mean accumulate in F64. max propagates NaN; argmax returns the first maximal index (a NaN
// counts as maximal, like numpy). max/argmax over an empty axis throw.
Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // I64

// ---- linear algebra
// a [..., M, K] @ b [..., K, N] -> [broadcast(...), M, N]. 1-D a is [1, K] (that dim is then
// dropped), 1-D b is [K, 1] (dropped). Float dtypes only; block-quantized weights go to linear.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., K], weight [N, K] (nn.Linear layout), bias [N] or an undefined Tensor -> [..., N].
// Dispatches on weight.dtype() through the linear-kernel table.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Linear-kernel table. A kernel computes y[m, n] = sum_k x[m, k] * w(n, k) where
//   x: row-major F32 [m, k]; y: row-major F32 [m, n] (overwritten);
//   w: the weight's bytes, contiguous [n, k] in the kernel's dtype: for block-quantized dtypes
//      each of the n rows holds k / block_elems blocks of block_bytes (dtype_info()).
// Built in: F32 (cblas_sgemm), F16 and BF16 (converted to F32 in row blocks, then sgemm).
// F64 weights are handled outside the table (dgemm, F64 result).
//
// Adding a quantized dtype (e.g. Q8_0): 1. append the DType with its block_elems/block_bytes in
// dtype.hpp/dtype.cpp; 2. write `void q8_0_linear(const float* x, int64_t m, int64_t k,
// const std::byte* w, int64_t n, float* y)` (it may use ember::parallel_for over n; it must not
// call BLAS from inside the pool); 3. call register_linear_kernel(DType::Q8_0, q8_0_linear) once
// at startup (e.g. from a static initializer in the LLM module). linear() then accepts weights of
// that dtype, checks k is a whole number of blocks, and model code is unchanged.
using LinearKernel = void (*)(const float* x, int64_t m, int64_t k, const std::byte* w, int64_t n,
                              float* y);
// Registers (or replaces) the kernel for weights of `weight_dtype`. Call before running ops.
void register_linear_kernel(DType weight_dtype, LinearKernel kernel);
// The registered kernel, or nullptr.
LinearKernel find_linear_kernel(DType weight_dtype);

// ---- neural-network ops
Tensor softmax(const Tensor& x, int64_t axis = -1);
// Normalizes over the last axis. weight/bias are [D] or undefined (identity).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);
// weight [V, D] (any scalar dtype), ids I64/I32 of any shape -> [ids..., D] in weight's dtype.
// Every id must be in [0, V); otherwise ember::Error naming the first bad id.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// All tensors: same dtype and rank, equal dims except `axis`.
Tensor concat(std::span<const Tensor> tensors, int64_t axis);
Tensor concat(std::initializer_list<Tensor> tensors, int64_t axis);

struct TopK {
  Tensor values;   // [..., k], input dtype, sorted descending
  Tensor indices;  // [..., k], I64; ties keep the lower index first; NaN ranks highest
};
TopK topk(const Tensor& x, int64_t k);  // along the last axis

}  // namespace ember::ops
