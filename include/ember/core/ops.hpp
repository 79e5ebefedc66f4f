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
//                       linear(x[..., K], weight[N, K], bias[N]?) = x @ weight^T + bias,
//                       dispatching on the weight dtype; linear_into (caller's buffer)
//   In place            copy_into (strided writes, e.g. a KV cache)
//   Attention           rope (half-split and interleaved), attention (causal, sliding window,
//                       padding keys, grouped-query)
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
// x [..., K], weight [N, K] (nn.Linear layout), bias [N] or an undefined Tensor -> [..., N], F32.
// Dispatches on weight.dtype() through dtype_traits() (ember/core/dtype_traits.hpp): F32 weights
// go to BLAS; any other dtype with a vec_dot entry (F16, BF16, quantized block types) through
// one driver that converts the activations once to the dtype's vec_dot format and threads over
// weight rows, reading each weight byte once per call. From 16 input rows on, strips of weight
// rows are widened with to_f32 straight into kernels::gemm_panels_f32's panels instead, threaded
// over strips (GEMM arithmetic then dominates). F64 operands take the dgemm path and return F64.
// `packed` (optional) is pack_linear_weight(weight): then every call goes to ember's kernel over
// the packed panels (kernels::gemm_panels_f32, cache-blocked over x rows and threaded over row
// blocks x panels on the pool) instead of BLAS, which re-packs the whole weight on every call
// and threads on its own. It leads OpenBLAS at the few-token shapes of batch-1 inference and is
// level with or ahead of its AVX-512 and AVX2 kernels up to thousands of rows
// (docs/benchmarks.md, "Packed F32 linear").
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Tensor& packed = Tensor());
// linear into a caller-owned buffer: `out` is a contiguous F32 tensor of m * N elements (any
// shape), e.g. a model's preallocated activations, or an F32 [m, N] view whose rows have unit
// stride (N columns of a wider table, written in place). F64 operands are refused.
void linear_into(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out,
                 const Tensor& packed = Tensor());
// How linear multiplies 16 rows or more by a block-quantized weight, process-wide: Widened (the
// default) widens strips of the weight into F32 GEMM panels; Int8Activations quantizes the
// activations to the weight type's 8-bit format and runs its integer tile kernel, whose results
// equal vec_dot's (what single tokens get) and llama.cpp's arithmetic: `ember perplexity
// --activations q8` uses it to reproduce llama.cpp's perplexities (docs/llm_agreement.md).
// EMBER_QUANT_TILES=1 in the environment also selects Int8Activations.
enum class QuantizedPrompts { Widened, Int8Activations };
void set_quantized_prompts(QuantizedPrompts path);

// An F32 weight [N, K] copied once (at load) into the layout kernels::gemm_panels_f32 streams:
// F32 [ceil(N / 16), K, 16], zero past N. The copy costs as much memory as the weight; when the
// weight views a file mapping, its pages are then released (Storage::release_pages), so the
// process holds those bytes once. Other dtypes return an undefined Tensor (they have their own
// kernels).
Tensor pack_linear_weight(const Tensor& weight);

// ---- in-place writes
// Writes src's values into dst, a view of writable storage with any strides (e.g. the rows of a
// preallocated KV cache selected with narrow). Shapes must be equal; dtypes equal, or src F32 into
// an F16/BF16 dst. Throws on read-only (borrowed) storage.
void copy_into(Tensor dst, const Tensor& src);

// ---- attention
// Rotary position embedding. A table holds, for each entry of `positions`, cos and sin of the
// angles position * inv_freq[i] (an F32 product, as the reference computes it), multiplied by
// `scale` (YaRN's attention factor, else 1). One table serves every layer of a forward pass.
struct RopeTable {
  int64_t half = 0;             // inv_freq.size(): 2 * half dims of each head rotate
  std::vector<float> cos, sin;  // positions.size() rows of `half` values
};
RopeTable rope_table(std::span<const int64_t> positions, std::span<const float> inv_freq,
                     float scale = 1.0f);
// Rotates x [B, T, H, D] (F32, unit stride in the last dim) in place; the table has a row per
// token (B * T rows, row-major) or per position shared by the batch (T rows).
//   HalfSplit   (Hugging Face): pairs (x[i], x[i + half]).
//   Interleaved (GGML's NORM mode): pairs (x[2i], x[2i + 1]).
enum class RopeLayout : uint8_t { HalfSplit, Interleaved };
void rope(Tensor& x, const RopeTable& table, RopeLayout layout);

struct AttentionMask {
  // Query i (absolute position Tk - Tq + i: the keys hold the past) sees key j only if j is not
  // after it.
  bool causal = false;
  // With causal: query position p also sees key j only if p - j < sliding_window (0: no limit).
  int64_t sliding_window = 0;
  // Optional [B, Tk], any integer or bool dtype: 0 marks a padding key nobody attends to (the
  // Hugging Face attention_mask).
  Tensor key_mask;
  // Optional contiguous F32 [Hq, Tq, Tk], shared by the batch: added to the scaled scores before
  // softmax (T5's relative position bias).
  Tensor bias;
};
// softmax(q k^T * scale + bias + mask) v per head. q [B, Tq, Hq, D], k and v [B, Tk, Hkv, D]
// (Tk >= Tq when causal), Hq a multiple of Hkv (query head h reads kv head h / (Hq / Hkv)): F32
// rows of unit stride, or F16 k and v (a KV cache; q and the softmax weights then round to F16
// for their products, as in ggml). Returns [B, Tq, Hq, D] F32; a query seeing no key gets zeros.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                 float scale);
// attention into a caller-owned contiguous F32 buffer of B * Tq * Hq * D elements.
void attention_into(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                    float scale, Tensor& out);
// Packed variable-length sequences, no padding anywhere: q [N, Hq, D], k and v [N, Hkv, D], and
// rows [seq_offsets[s], seq_offsets[s + 1]) form sequence s, which attends only within itself
// (causally if asked). bias, if defined, is a contiguous F32 [Hq, S, S] with S at least the
// longest sequence: each sequence adds its top-left block to its scores, as if it alone were
// attention's batch (T5's relative position bias). Returns [N, Hq, D] F32.
Tensor attention_packed(const Tensor& q, const Tensor& k, const Tensor& v,
                        std::span<const int64_t> seq_offsets, bool causal, float scale,
                        const Tensor& bias = Tensor());

// ---- neural-network ops
Tensor softmax(const Tensor& x, int64_t axis = -1);
// Normalizes over the last axis. weight/bias are [D] or undefined (identity).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);
// Into a caller-owned buffer: x and out contiguous F32 with the same element count.
void layer_norm_into(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     Tensor& out);
void rms_norm_into(const Tensor& x, const Tensor& weight, double eps, Tensor& out);
// weight [V, D], ids I64/I32 of any shape -> [ids..., D] in weight's dtype (block-quantized
// tables: F32, widened through dtype_traits).
// Every id must be in [0, V); otherwise ember::Error naming the first bad id.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// embedding widened to F32 into a caller-owned contiguous buffer of ids.numel() * D elements.
void embedding_into(const Tensor& weight, const Tensor& ids, Tensor& out);
// All tensors: same dtype and rank, equal dims except `axis`.
Tensor concat(std::span<const Tensor> tensors, int64_t axis);
Tensor concat(std::initializer_list<Tensor> tensors, int64_t axis);

struct TopK {
  Tensor values;   // [..., k], input dtype, sorted descending
  Tensor indices;  // [..., k], I64; ties keep the lower index first; NaN ranks highest
};
TopK topk(const Tensor& x, int64_t k);  // along the last axis

}  // namespace ember::ops
