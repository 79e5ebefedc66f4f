// matmul / linear on OpenBLAS, with the per-weight-dtype linear-kernel table.
//
// Threading: OpenBLAS (pthreads build) threads a GEMM on its own once m*n*k exceeds 262144
// (kBlasSingleThreadWork) and runs smaller ones on the calling thread. A single product is
// therefore handed to BLAS from the thread that called the op; a batch of small products (the
// attention shapes) runs on ember::parallel_for instead, cut into row blocks that each stay under
// that threshold, so BLAS never starts threads of its own on top of the pool's.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/dtype_traits.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"
#include "ops_internal.hpp"

namespace ember::ops {
namespace {

using detail::dtype_str;

constexpr int64_t kBlasSingleThreadWork = 262144;

int blas_int(const char* op, int64_t v) {
  if (v > INT_MAX)
    throw Error(std::string(op) + ": dimension " + std::to_string(v) + " exceeds BLAS int range");
  return static_cast<int>(v);
}

// y[m, n] = x[m, k] @ w[n, k]^T, all row-major F32. One row (the decode step of an LLM) goes
// to sgemv: OpenBLAS's sgemm is several times slower than its gemv for m == 1.
void sgemm_xwt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, int64_t ldy,
               float* y) {
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blas_int("linear", n), blas_int("linear", k), 1.0f, w,
                static_cast<int>(k), x, 1, 0.0f, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blas_int("linear", m), blas_int("linear", n),
              blas_int("linear", k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), 0.0f, y,
              blas_int("linear", ldy));
}

// Below this many activation rows, F16/BF16 and quantized weights go through the dtype's dot
// product, reading each weight byte once (the decode step); from it on, GEMM's arithmetic
// dominates: the weights are widened, a strip at a time, into Ember's packed F32 GEMM panels
// (or, with EMBER_QUANT_TILES=1, quantized ones go through their tile kernel).
constexpr int64_t kPackedGemmRows = 16;

// Activations as vec_dot wants them: x itself for F32, else each row converted once (not once
// per weight row), the rows spread over the pool.
struct VecDotActivations {
  std::vector<std::byte> converted;
  const std::byte* data = nullptr;
  uint64_t row_bytes = 0;
};

VecDotActivations vec_dot_activations(const float* x, int64_t m, int64_t k, DType vec_dot_type) {
  VecDotActivations a;
  if (vec_dot_type == DType::F32) {
    a.data = reinterpret_cast<const std::byte*>(x);
    a.row_bytes = static_cast<uint64_t>(k) * sizeof(float);
    return a;
  }
  const DTypeTraits& act = dtype_traits(vec_dot_type);
  a.row_bytes = *dtype_bytes(vec_dot_type, static_cast<uint64_t>(k));
  a.converted.resize(static_cast<size_t>(a.row_bytes * static_cast<uint64_t>(m)));
  parallel_for(
      0, m, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k)), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          act.from_f32(x + i * k, a.converted.data() + i * a.row_bytes, static_cast<size_t>(k));
        }
      });
  a.data = a.converted.data();
  return a;
}

// y[m, n] = x[m, k] @ w[n, k]^T via the dtype's vec_dot (its multi-row vec_dot_rows where it
// has one: the same numbers), threaded over weight rows. Here and below, y's rows are ldy floats
// apart.
void linear_vec_dot(const float* x, int64_t m, int64_t k, const std::byte* w, DType w_dtype,
                    int64_t n, float* y, int64_t ldy) {
  const DTypeTraits& traits = dtype_traits(w_dtype);
  const uint64_t w_row_bytes = *dtype_bytes(w_dtype, static_cast<uint64_t>(k));
  const VecDotActivations xq = vec_dot_activations(x, m, k, traits.vec_dot_type);
  // Each weight row is read once and dotted with every activation row.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k * m));
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
    if (traits.vec_dot_rows != nullptr) {
      // One token: the whole range in one call (the kernel prefetches ahead within it). More:
      // a few rows at a time (a few KB: they stay in L1 for the next activation rows).
      const int64_t rows = m == 1 ? hi - lo : 8;
      for (int64_t j0 = lo; j0 < hi; j0 += rows) {
        for (int64_t i = 0; i < m; ++i) {
          traits.vec_dot_rows(w + static_cast<uint64_t>(j0) * w_row_bytes, w_row_bytes,
                              static_cast<size_t>(std::min(rows, hi - j0)),
                              xq.data + static_cast<uint64_t>(i) * xq.row_bytes,
                              static_cast<size_t>(k), y + i * ldy + j0);
        }
      }
      return;
    }
    for (int64_t j = lo; j < hi; ++j) {
      const std::byte* wj = w + static_cast<uint64_t>(j) * w_row_bytes;
      for (int64_t i = 0; i < m; ++i) {
        y[i * ldy + j] = traits.vec_dot(wj, xq.data + static_cast<uint64_t>(i) * xq.row_bytes,
                                        static_cast<size_t>(k));
      }
    }
  });
}

// y[m, n] = x[m, k] @ w[n, k]^T for many rows with vec_dot's arithmetic (llama.cpp's for
// quantized weights: 8-bit activations, integer block products) at GEMM speed: the dtype's
// tile kernel decodes a panel of weight rows once and dots it with all activation rows.
// Panels are threaded over the pool; one panel's decoded rows (about 1.25 bytes a weight for
// 32-element blocks, 2.2 for super-blocks) stay in L2 while the activations stream past.
void linear_vec_dot_tiles(const float* x, int64_t m, int64_t k, const std::byte* w, DType w_dtype,
                          int64_t n, float* y, int64_t ldy) {
  const DTypeTraits& traits = dtype_traits(w_dtype);
  const uint64_t w_row_bytes = *dtype_bytes(w_dtype, static_cast<uint64_t>(k));
  const VecDotActivations xq = vec_dot_activations(x, m, k, traits.vec_dot_type);
  constexpr int64_t kPanelRows = 32;
  const int64_t panels = (n + kPanelRows - 1) / kPanelRows;
  parallel_for(0, panels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const int64_t j0 = p * kPanelRows;
      traits.vec_dot_tile(w + static_cast<uint64_t>(j0) * w_row_bytes, w_row_bytes,
                          static_cast<size_t>(std::min(kPanelRows, n - j0)), xq.data, xq.row_bytes,
                          static_cast<size_t>(m), static_cast<size_t>(k), y + j0,
                          static_cast<size_t>(ldy));
    }
  });
}

// Weight rows of a strip dequantized in one go: kGemmPanel rows of this many elements (whole
// blocks of every type: 32 or 256) stay in L1 until they are transposed into the panel.
constexpr int64_t kDequantChunk = 256;

// Weight rows [j0, j0 + cols) (cols <= kGemmPanel) widened with to_f32 into one panel of
// kernels::gemm_panels_f32's layout: panel[kk * kGemmPanel + j] = w[j0 + j][kk], zero for
// j >= cols. The values are exactly to_f32's; only their order in memory changes.
void dequantize_panel(const std::byte* w, uint64_t w_row_bytes, const DTypeTraits& traits,
                      DType w_dtype, int64_t k, int64_t cols, float* rows, float* panel) {
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  for (int64_t k0 = 0; k0 < k; k0 += kDequantChunk) {
    const int64_t len = std::min(kDequantChunk, k - k0);
    const uint64_t offset = *dtype_bytes(w_dtype, static_cast<uint64_t>(k0));
    for (int64_t j = 0; j < cols; ++j) {
      traits.to_f32(w + static_cast<uint64_t>(j) * w_row_bytes + offset, rows + j * kDequantChunk,
                    static_cast<size_t>(len));
    }
    float* out = panel + k0 * width;
    for (int64_t kk = 0; kk < len; ++kk) {
      for (int64_t j = 0; j < width; ++j) {
        out[kk * width + j] = j < cols ? rows[j * kDequantChunk + kk] : 0.0f;
      }
    }
  }
}

// y[m, n] = x[m, k] @ w[n, k]^T for many rows of a non-F32 weight. Each task widens a strip of
// kStripPanels panels (weight rows) straight into gemm_panels_f32's packed layout and runs
// that kernel over all m rows, so the strip, 2 * 16 columns x k floats (256 KB at k = 2048),
// is written once and then read from L2 by every row block while x streams past. Strips are
// threaded over the pool. Only summation order separates the result from an F32 GEMM of the
// to_f32 weights.
void linear_dequant_panels(const float* x, int64_t m, int64_t k, const std::byte* w, DType w_dtype,
                           int64_t n, float* y, int64_t ldy) {
  const DTypeTraits& traits = dtype_traits(w_dtype);
  const uint64_t w_row_bytes = *dtype_bytes(w_dtype, static_cast<uint64_t>(k));
  // Two panels: the AVX-512 register block's width (the narrower targets take one at a time).
  constexpr int64_t kStripPanels = 2;
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t strip_cols = kStripPanels * width;
  const int64_t strips = (n + strip_cols - 1) / strip_cols;
  parallel_for(0, strips, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> rows(static_cast<size_t>(width * kDequantChunk));
    std::vector<float> panels(static_cast<size_t>(kStripPanels * width * k));
    for (int64_t s = lo; s < hi; ++s) {
      const int64_t c0 = s * strip_cols;
      const int64_t cols = std::min(strip_cols, n - c0);
      const int64_t used = (cols + width - 1) / width;
      for (int64_t p = 0; p < used; ++p) {
        const int64_t j0 = c0 + p * width;
        dequantize_panel(w + static_cast<uint64_t>(j0) * w_row_bytes, w_row_bytes, traits, w_dtype,
                         k, std::min(width, n - j0), rows.data(), panels.data() + p * width * k);
      }
      kernels::gemm_panels_f32(x, static_cast<size_t>(k), static_cast<size_t>(m),
                               static_cast<size_t>(k), panels.data(), 0, static_cast<size_t>(used),
                               static_cast<size_t>(cols), y + c0, static_cast<size_t>(ldy));
    }
  });
}

std::atomic<QuantizedPrompts> g_quantized_prompts{QuantizedPrompts::Widened};

// Many rows of a quantized weight widen strips of it into F32 GEMM panels, unless
// set_quantized_prompts or EMBER_QUANT_TILES=1 asks for the dtype's tile kernel: vec_dot's exact
// arithmetic (activations quantized to 8 bits, as llama.cpp does), so prompt rows get the numbers
// single tokens get.
// Measured on SmolLM2 (docs/llm_agreement.md): the tiles bring the Q4_1 perplexity within 0.5% of
// llama.cpp's (+0.43% against -0.82%), but the teacher-forced KL against llama.cpp leaves its bar
// on the Q8_0 file, and on AVX2 on the Q4_K_M file (activations with outliers re-quantize
// differently after any change of summation order); tiles for the K-quants alone flip one clear
// top-1 of the Q4_K_M file on AVX-512 VNNI. The widened path stays within every bar on every SIMD
// target. Speed: the K-quant tiles are an int8 GEMM on x86, faster than the widened panels (a
// prompt linear in bench_quant, one thread: 1.6-2.4x on AVX-512 VNNI, 1.7-2.1x on AVX2); the
// other tiles decode to int16 and are slower than the panels. Read
// per call (a getenv beside a GEMM of 16 rows or more), so a test or caller can switch it.
bool prompt_uses_tiles(DType dtype) {
  if (dtype_traits(dtype).vec_dot_tile == nullptr) return false;
  if (g_quantized_prompts.load(std::memory_order_relaxed) == QuantizedPrompts::Int8Activations) {
    return true;
  }
  const char* tiles = std::getenv("EMBER_QUANT_TILES");
  return tiles != nullptr && std::string_view(tiles) == "1";
}

// BLAS description of a 2-D strided view [rows, cols]: transpose flag and leading dimension,
// or false when neither dim has unit stride (the caller then copies).
bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, CBLAS_TRANSPOSE* trans,
                 int64_t* ld) {
  if ((cols == 1 || cs == 1) && (rows == 1 || rs >= std::max<int64_t>(1, cols))) {
    *trans = CblasNoTrans;
    *ld = rows == 1 ? std::max<int64_t>(1, cols) : rs;
    return true;
  }
  if ((rows == 1 || rs == 1) && (cols == 1 || cs >= std::max<int64_t>(1, rows))) {
    *trans = CblasTrans;
    *ld = cols == 1 ? std::max<int64_t>(1, rows) : cs;
    return true;
  }
  return false;
}

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}

// a: [..., M, K], b: [..., K, N] (rank >= 2, dtype T); out: contiguous [batch..., M, N].
template <typename T>
void batched_gemm(Tensor a, Tensor b, const Shape& batch, Tensor& out) {
  const int64_t m = a.dim(-2);
  const int64_t k = a.dim(-1);
  const int64_t n = b.dim(-1);
  CBLAS_TRANSPOSE ta{};
  CBLAS_TRANSPOSE tb{};
  int64_t lda = 0;
  int64_t ldb = 0;
  if (!blas_layout(m, k, a.strides()[a.strides().size() - 2], a.strides().back(), &ta, &lda)) {
    a = a.contiguous();
    blas_layout(m, k, a.strides()[a.strides().size() - 2], a.strides().back(), &ta, &lda);
  }
  if (!blas_layout(k, n, b.strides()[b.strides().size() - 2], b.strides().back(), &tb, &ldb)) {
    b = b.contiguous();
    blas_layout(k, n, b.strides()[b.strides().size() - 2], b.strides().back(), &tb, &ldb);
  }
  // Batch strides of a and b over the broadcast batch shape (0 where broadcast).
  const size_t rank = batch.size();
  auto batch_strides = [&](const Tensor& t) {
    Shape s(rank, 0);
    const size_t t_batch = t.shape().size() - 2;
    const size_t lead = rank - t_batch;
    for (size_t i = 0; i < t_batch; ++i) s[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
    return s;
  };
  const Shape sa = batch_strides(a);
  const Shape sb = batch_strides(b);
  const int64_t batches = shape_numel(batch);
  const T* pa = a.data_as<T>();
  const T* pb = b.data_as<T>();
  T* pc = out.mutable_data_as<T>();
  const char* op = "matmul";
  blas_int(op, m);  // range check; products get row counts up to m
  const int in = blas_int(op, n), ik = blas_int(op, k);
  const int ilda = blas_int(op, lda), ildb = blas_int(op, ldb),
            ildc = blas_int(op, std::max<int64_t>(1, n));
  auto product = [&](int64_t bi, int64_t row0, int64_t rows) {
    int64_t off_a = 0;
    int64_t off_b = 0;
    int64_t rest = bi;
    for (size_t d = rank; d-- > 0;) {
      const int64_t i = rest % batch[d];
      rest /= batch[d];
      off_a += i * sa[d];
      off_b += i * sb[d];
    }
    // Row row0 of op(A) starts row0 rows down (A as stored) or row0 columns across (A^T).
    off_a += ta == CblasNoTrans ? row0 * lda : row0;
    gemm(ta, tb, static_cast<int>(rows), in, ik, pa + off_a, ilda, pb + off_b, ildb,
         pc + bi * m * n + row0 * n, ildc);
  };
  const int64_t rows_per_block =
      std::max<int64_t>(1, kBlasSingleThreadWork / std::max<int64_t>(1, n * k));
  if (batches == 1 || m * n * k > 64 * kBlasSingleThreadWork) {
    // One product, or products big enough for BLAS's own threads to pay off.
    for (int64_t bi = 0; bi < batches; ++bi) product(bi, 0, m);
    return;
  }
  const int64_t blocks_per_product = (m + rows_per_block - 1) / rows_per_block;
  parallel_for(0, batches * blocks_per_product, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; ++u) {
      const int64_t row0 = (u % blocks_per_product) * rows_per_block;
      product(u / blocks_per_product, row0, std::min(rows_per_block, m - row0));
    }
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::require_float("matmul", a, "lhs");
  detail::require_float("matmul", b, "rhs");
  const auto shapes = [&] {
    return shape_to_string(a.shape()) + " @ " + shape_to_string(b.shape());
  };
  if (a.rank() == 0 || b.rank() == 0)
    throw Error("matmul: operands must have rank >= 1, got " + shapes());
  const Tensor a2 = a.rank() == 1 ? a.unsqueeze(0) : a;
  const Tensor b2 = b.rank() == 1 ? b.unsqueeze(1) : b;
  const int64_t m = a2.dim(-2);
  const int64_t k = a2.dim(-1);
  const int64_t n = b2.dim(-1);
  if (b2.dim(-2) != k) {
    throw Error("matmul: inner dimensions differ (" + std::to_string(k) + " vs " +
                std::to_string(b2.dim(-2)) + ") in " + shapes());
  }
  const Shape a_batch(a2.shape().begin(), a2.shape().end() - 2);
  const Shape b_batch(b2.shape().begin(), b2.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(a_batch, b_batch);
  } catch (const Error&) {
    throw Error("matmul: batch dimensions do not broadcast in " + shapes());
  }
  Shape out_shape = batch;
  if (a.rank() > 1) out_shape.push_back(m);
  if (b.rank() > 1) out_shape.push_back(n);
  const bool f64 = a.dtype() == DType::F64 || b.dtype() == DType::F64;
  const DType dtype = f64 ? DType::F64 : DType::F32;
  Shape full_shape = batch;
  full_shape.push_back(m);
  full_shape.push_back(n);
  Tensor out = Tensor::zeros(dtype, full_shape);
  if (out.numel() > 0 && k > 0) {
    if (f64) {
      batched_gemm<double>(a2.dtype() == DType::F64 ? a2 : a2.to(DType::F64),
                           b2.dtype() == DType::F64 ? b2 : b2.to(DType::F64), batch, out);
    } else {
      batched_gemm<float>(a2.dtype() == DType::F32 ? a2 : to_f32(a2),
                          b2.dtype() == DType::F32 ? b2 : to_f32(b2), batch, out);
    }
  }
  return out.reshape(out_shape);
}

namespace {

// Shape checks shared by linear and linear_into; returns m (the number of input rows).
int64_t check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::require_float("linear", x, "input");
  detail::require_defined("linear", weight, "weight");
  const auto shapes = [&] {
    return "input " + shape_to_string(x.shape()) + ", weight " + shape_to_string(weight.shape()) +
           (bias.defined() ? ", bias " + shape_to_string(bias.shape()) : std::string());
  };
  if (x.rank() < 1 || weight.rank() != 2) {
    throw Error("linear: expected input [..., K] and weight [N, K], got " + shapes());
  }
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  if (x.dim(-1) != k) throw Error("linear: input features differ from weight [N, K]: " + shapes());
  if (bias.defined()) {
    detail::require_float("linear", bias, "bias");
    if (bias.rank() != 1 || bias.dim(0) != n) throw Error("linear: bias must be [N]: " + shapes());
  }
  if (weight.dtype() != DType::F64 && weight.dtype() != DType::F32 &&
      dtype_traits(weight.dtype()).vec_dot == nullptr) {
    throw Error("linear: no kernel for weight dtype " + dtype_str(weight.dtype()) + " (" +
                shapes() + ")");
  }
  if (!dtype_bytes(weight.dtype(), static_cast<uint64_t>(k))) {
    throw Error("linear: K = " + std::to_string(k) + " is not a whole number of " +
                dtype_str(weight.dtype()) + " blocks (" + shapes() + ")");
  }
  return k > 0 ? x.numel() / k : shape_numel(std::span(x.shape()).first(x.shape().size() - 1));
}

// y[m, n] = x[m, k] @ w^T from the packed panels. The work is cut into tiles of a block of x
// rows by a group of panels, and the pool's threads take runs of consecutive tiles. The kernel
// walks k in blocks (kernels::kGemmKBlock) and, within one, every panel of the group over every
// row of the tile, so:
// - a row block's share of one k block (at most kRowBlockBytes) stays in L2 while the group's
//   panels pass it, and each panel's k block (16-32 KiB) stays in L1 for every row of the tile:
//   weights come from L3 once per row block (rows / 2 FLOPs per weight byte), x once per tile;
// - the tile's y (rows x group columns, at most kRowBlockBytes) stays in L2 between k blocks.
// Groups are as wide as that allows (fewer passes over x), narrowed so that each thread gets a
// few tiles. A few rows make one row block, and the tiles are then a split over panels.
void linear_packed(const float* x, int64_t m, int64_t k, const Tensor& packed, int64_t n, float* y,
                   int64_t ldy) {
  constexpr int64_t kRowBlockBytes = int64_t{256} << 10;
  constexpr auto kBytes = int64_t{sizeof(float)};
  const auto panel = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t panels = (n + panel - 1) / panel;
  const int64_t k_block = std::min(k, static_cast<int64_t>(kernels::kGemmKBlock));
  // Multiples of 8 rows: whole register blocks of the AVX-512 kernel (and of 4 elsewhere).
  const int64_t fit = std::max<int64_t>(8, kRowBlockBytes / (k_block * kBytes) / 8 * 8);
  const int64_t row_blocks = (m + fit - 1) / fit;
  const int64_t rows = (m + row_blocks - 1) / row_blocks;
  // At least about 32768 multiply-adds per tile, so that it amortizes the pool's per-chunk cost;
  // an even count, so AVX-512's panel pairs stay whole.
  const int64_t least = std::max<int64_t>(2, 32768 / std::max<int64_t>(1, rows * k * panel));
  const int64_t most = std::max<int64_t>(2, kRowBlockBytes / (rows * panel * kBytes));
  const int64_t tiles_wanted = 4 * int64_t{default_thread_pool().num_threads()};
  const int64_t split = (tiles_wanted + row_blocks - 1) / row_blocks;
  const int64_t balanced = (panels + split - 1) / split;
  const int64_t group =
      std::min(panels, (std::clamp(balanced, least, std::max(least, most)) + 1) / 2 * 2);
  const int64_t groups = (panels + group - 1) / group;
  const float* pw = packed.data_as<float>();
  parallel_for(0, row_blocks * groups, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t r0 = (t / groups) * rows;
      const int64_t p0 = (t % groups) * group;
      kernels::gemm_panels_f32(x + r0 * k, static_cast<size_t>(k),
                               static_cast<size_t>(std::min(rows, m - r0)), static_cast<size_t>(k),
                               pw, static_cast<size_t>(p0),
                               static_cast<size_t>(std::min(panels, p0 + group)),
                               static_cast<size_t>(n), y + r0 * ldy, static_cast<size_t>(ldy));
    }
  });
}

bool usable_packing(const Tensor& packed, const Tensor& weight) {
  if (!packed.defined()) return false;
  const auto panel = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  if (weight.dtype() != DType::F32 || packed.dtype() != DType::F32 || !packed.is_contiguous() ||
      packed.shape() != Shape{(n + panel - 1) / panel, k, panel}) {
    throw Error("linear: packed weight " + shape_to_string(packed.shape()) + " " +
                dtype_str(packed.dtype()) + " does not come from pack_linear_weight of an F32 " +
                shape_to_string(weight.shape()) + " weight");
  }
  return true;
}

// linear's F32 path once the operands are checked: y = x @ weight^T + bias into `out`, m rows
// of n floats, ldy floats apart.
void linear_checked_into(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& packed, int64_t m, float* py, int64_t ldy) {
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t r = 0; r < m; ++r) std::fill(py + r * ldy, py + r * ldy + n, 0.0f);
  } else {
    const Tensor w = weight.contiguous();
    const Tensor x32 = to_f32(x);
    const float* px = x32.data_as<float>();
    if (usable_packing(packed, weight)) {
      linear_packed(px, m, k, packed, n, py, ldy);
    } else if (w.dtype() == DType::F32) {
      sgemm_xwt(px, m, k, w.data_as<float>(), n, ldy, py);
    } else if (m >= kPackedGemmRows && prompt_uses_tiles(w.dtype())) {
      linear_vec_dot_tiles(px, m, k, w.data(), w.dtype(), n, py, ldy);
    } else if (m >= kPackedGemmRows && dtype_traits(w.dtype()).to_f32 != nullptr) {
      linear_dequant_panels(px, m, k, w.data(), w.dtype(), n, py, ldy);
    } else {
      linear_vec_dot(px, m, k, w.data(), w.dtype(), n, py, ldy);
    }
  }
  if (bias.defined()) {
    const Tensor b32 = to_f32(bias);
    const float* pb = b32.data_as<float>();
    parallel_for(0, m, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) {
                     kernels::binary_f32(BinaryOp::Add, py + r * ldy, pb, py + r * ldy,
                                         static_cast<size_t>(n));
                   }
                 });
  }
}

}  // namespace

void linear_into(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out,
                 const Tensor& packed) {
  const int64_t m = check_linear(x, weight, bias);
  const int64_t n = weight.dim(0);
  // Contiguous, or [m, n] rows of unit stride at least n apart (columns of a wider table).
  const bool rows_view = out.rank() == 2 && out.dim(0) == m && out.dim(1) == n &&
                         (n <= 1 || out.strides()[1] == 1) && (m <= 1 || out.strides()[0] >= n);
  if (out.dtype() != DType::F32 || (!out.is_contiguous() && !rows_view) || out.numel() != m * n) {
    throw Error("linear_into: output must be a contiguous F32 tensor of " + std::to_string(m) +
                " x " + std::to_string(n) + " elements, or an F32 [" + std::to_string(m) + ", " +
                std::to_string(n) + "] view of unit column stride, got " + dtype_str(out.dtype()) +
                " " + shape_to_string(out.shape()));
  }
  if (x.dtype() == DType::F64 || weight.dtype() == DType::F64) {
    throw Error("linear_into: F64 operands are not supported; use linear");
  }
  linear_checked_into(x, weight, bias, packed, m, out.mutable_data_as<float>(),
                      out.is_contiguous() || m <= 1 ? n : out.strides()[0]);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& packed) {
  const int64_t m = check_linear(x, weight, bias);
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  Shape out_shape = x.shape();
  out_shape.back() = n;
  if (x.dtype() == DType::F64 || weight.dtype() == DType::F64) {
    if (!detail::is_float_compute_dtype(weight.dtype())) {
      throw Error("linear: F64 input needs a float weight, got " + dtype_str(weight.dtype()));
    }
    // dgemm via matmul's path: [M, K] @ [N, K]^T.
    Tensor y = matmul(x.reshape({m, k}), weight.transpose(0, 1));
    if (bias.defined()) y = add(y, bias);
    return y.reshape(out_shape);
  }
  Tensor y = Tensor::empty(DType::F32, out_shape);
  linear_checked_into(x, weight, bias, packed, m, y.mutable_data_as<float>(), n);
  return y;
}

void set_quantized_prompts(QuantizedPrompts path) {
  g_quantized_prompts.store(path, std::memory_order_relaxed);
}

Tensor pack_linear_weight(const Tensor& weight) {
  detail::require_defined("pack_linear_weight", weight, "weight");
  if (weight.dtype() != DType::F32) return Tensor();
  if (weight.rank() != 2) {
    throw Error("pack_linear_weight: expected weight [N, K], got " +
                shape_to_string(weight.shape()));
  }
  const auto panel = static_cast<int64_t>(kernels::kGemmPanel);
  const int64_t n = weight.dim(0);
  const int64_t k = weight.dim(1);
  const int64_t panels = (n + panel - 1) / panel;
  const Tensor w = weight.contiguous();
  Tensor packed = Tensor::zeros(DType::F32, {panels, k, panel});
  const float* src = w.data_as<float>();
  float* dst = packed.mutable_data_as<float>();
  // The panels serve every later call, so a weight that views a file mapping need not keep the
  // pages this pass faults in: each stretch of rows is released once packed, so the process
  // never holds the weight twice, not even at its peak during load (every packed weight, a tied
  // head included, stayed resident until the kernel reclaimed it: bart-base's 558 MB file
  // peaked at 1.28 GB). Whatever else reads the weight (the rows a tied embedding looks up)
  // faults just those pages back in. Stretches of about 4 MiB of rows.
  const int64_t row_bytes = k * int64_t{sizeof(float)};
  const int64_t stretch =
      std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(1, panel * row_bytes));
  const auto first_byte = static_cast<size_t>(w.offset() * int64_t{sizeof(float)});
  for (int64_t p0 = 0; p0 < panels; p0 += stretch) {
    const int64_t p1 = std::min(panels, p0 + stretch);
    parallel_for(p0, p1, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        detail::pack_panel_rows(src + p * panel * k, k, std::min(panel, n - p * panel), k,
                                dst + p * k * panel);
      }
    });
    w.storage()->release_pages(first_byte + static_cast<size_t>(p0 * panel * row_bytes),
                               static_cast<size_t>((p1 - p0) * panel * row_bytes));
  }
  // The pages that straddle two stretches, and those of a strided weight that contiguous() read.
  weight.storage()->release_pages();
  return packed;
}

}  // namespace ember::ops
