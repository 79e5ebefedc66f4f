#include "ember/core/dtype_traits.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "ember/core/convert.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/quant.hpp"
#include "quant_tiles.hpp"

namespace ember {
namespace {

const auto* as_f32(const std::byte* p) {
  return reinterpret_cast<const float*>(p);
}
const auto* as_u16(const std::byte* p) {
  return reinterpret_cast<const uint16_t*>(p);
}

// A kernels::dot_rows_* (untyped bytes) as DTypeTraits::vec_dot_rows.
template <void (*kDotRows)(const void*, size_t, size_t, const void*, size_t, float*)>
void dot_rows(const std::byte* w, size_t w_stride, size_t nw, const std::byte* x, size_t n,
              float* out) {
  kDotRows(w, w_stride, nw, x, n, out);
}

std::array<DTypeTraits, kDTypeCount> make_table() {
  std::array<DTypeTraits, kDTypeCount> table{};
  DTypeTraits& f32 = table[static_cast<size_t>(DType::F32)];
  f32.to_f32 = [](const std::byte* src, float* dst, size_t n) {
    std::copy(as_f32(src), as_f32(src) + n, dst);
  };
  f32.from_f32 = [](const float* src, std::byte* dst, size_t n) {
    std::copy(src, src + n, reinterpret_cast<float*>(dst));
  };
  f32.vec_dot = [](const std::byte* w, const std::byte* x, size_t n) {
    return kernels::dot_f32(w, as_f32(x), n);
  };
  DTypeTraits& f16 = table[static_cast<size_t>(DType::F16)];
  f16.to_f32 = [](const std::byte* src, float* dst, size_t n) {
    convert_f16_to_f32(as_u16(src), dst, n);
  };
  f16.from_f32 = [](const float* src, std::byte* dst, size_t n) {
    convert_f32_to_f16(src, reinterpret_cast<uint16_t*>(dst), n);
  };
  f16.vec_dot = [](const std::byte* w, const std::byte* x, size_t n) {
    return kernels::dot_f16(w, as_f32(x), n);
  };
  DTypeTraits& bf16 = table[static_cast<size_t>(DType::BF16)];
  bf16.to_f32 = [](const std::byte* src, float* dst, size_t n) {
    convert_bf16_to_f32(as_u16(src), dst, n);
  };
  bf16.from_f32 = [](const float* src, std::byte* dst, size_t n) {
    convert_f32_to_bf16(src, reinterpret_cast<uint16_t*>(dst), n);
  };
  bf16.vec_dot = [](const std::byte* w, const std::byte* x, size_t n) {
    return kernels::dot_bf16(w, as_f32(x), n);
  };
  for (int i = 0; i < kDTypeCount; ++i) {
    const auto dtype = static_cast<DType>(i);
    if (!is_quantized(dtype)) continue;
    const quant::BlockKernels& ref = quant::reference(dtype);
    table[static_cast<size_t>(i)] = {ref.to_f32,  ref.from_f32, ref.vec_dot_type,
                                     ref.vec_dot, nullptr,      nullptr};
  }
  // Every weight block type has a SIMD dot product and tile (Q8_1 and Q8_K, activation
  // formats, keep the reference dot and no tile); the references define their expected results.
  using Dot = float (*)(const std::byte*, const std::byte*, size_t);
  using Tile = void (*)(const std::byte*, size_t, size_t, const std::byte*, size_t, size_t, size_t,
                        float*, size_t);
  auto simd = [&table](DType dtype, Dot dot, Tile tile) {
    table[static_cast<size_t>(dtype)].vec_dot = dot;
    table[static_cast<size_t>(dtype)].vec_dot_tile = tile;
  };
  simd(
      DType::Q4_0,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q4_0_q8_0(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q4_0_q8_0(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q4_1,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q4_1_q8_1(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q4_1_q8_1(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q5_0,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q5_0_q8_0(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q5_0_q8_0(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q5_1,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q5_1_q8_1(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q5_1_q8_1(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q8_0,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q8_0_q8_0(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q8_0_q8_0(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q2_K,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q2_k_q8_k(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q2_k_q8_k(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q3_K,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q3_k_q8_k(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q3_k_q8_k(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q4_K,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q4_k_q8_k(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q4_k_q8_k(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q5_K,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q5_k_q8_k(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q5_k_q8_k(w, ws, nw, x, xs, nx, n, out, ldo); });
  simd(
      DType::Q6_K,
      [](const std::byte* w, const std::byte* x, size_t n) {
        return kernels::dot_q6_k_q8_k(w, x, n);
      },
      [](const std::byte* w, size_t ws, size_t nw, const std::byte* x, size_t xs, size_t nx,
         size_t n, float* out,
         size_t ldo) { kernels::tile_q6_k_q8_k(w, ws, nw, x, xs, nx, n, out, ldo); });
  // SIMD widening (bit-identical to the references) for every weight block type: prompts run
  // linear on widened weights.
  using Widen = void (*)(const std::byte*, float*, size_t);
  auto widen = [&table](DType dtype, Widen to_f32) {
    table[static_cast<size_t>(dtype)].to_f32 = to_f32;
  };
  widen(DType::Q4_0,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q4_0(src, dst, n); });
  widen(DType::Q4_1,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q4_1(src, dst, n); });
  widen(DType::Q5_0,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q5_0(src, dst, n); });
  widen(DType::Q5_1,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q5_1(src, dst, n); });
  widen(DType::Q8_0,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q8_0(src, dst, n); });
  widen(DType::Q2_K,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q2_k(src, dst, n); });
  widen(DType::Q3_K,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q3_k(src, dst, n); });
  widen(DType::Q4_K,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q4_k(src, dst, n); });
  widen(DType::Q5_K,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q5_k(src, dst, n); });
  widen(DType::Q6_K,
        [](const std::byte* src, float* dst, size_t n) { kernels::dequant_q6_k(src, dst, n); });
  // Multi-row dots for decoding, for the types GGUF files hold their large weights in.
  table[static_cast<size_t>(DType::Q4_0)].vec_dot_rows = dot_rows<kernels::dot_rows_q4_0_q8_0>;
  table[static_cast<size_t>(DType::Q4_1)].vec_dot_rows = dot_rows<kernels::dot_rows_q4_1_q8_1>;
  table[static_cast<size_t>(DType::Q5_0)].vec_dot_rows = dot_rows<kernels::dot_rows_q5_0_q8_0>;
  table[static_cast<size_t>(DType::Q5_1)].vec_dot_rows = dot_rows<kernels::dot_rows_q5_1_q8_1>;
  table[static_cast<size_t>(DType::Q8_0)].vec_dot_rows = dot_rows<kernels::dot_rows_q8_0_q8_0>;
  table[static_cast<size_t>(DType::Q2_K)].vec_dot_rows = dot_rows<kernels::dot_rows_q2_k_q8_k>;
  table[static_cast<size_t>(DType::Q3_K)].vec_dot_rows = dot_rows<kernels::dot_rows_q3_k_q8_k>;
  table[static_cast<size_t>(DType::Q4_K)].vec_dot_rows = dot_rows<kernels::dot_rows_q4_k_q8_k>;
  table[static_cast<size_t>(DType::Q5_K)].vec_dot_rows = dot_rows<kernels::dot_rows_q5_k_q8_k>;
  table[static_cast<size_t>(DType::Q6_K)].vec_dot_rows = dot_rows<kernels::dot_rows_q6_k_q8_k>;
  // SIMD quantization (byte-identical to the references) of the activations most dots take.
  table[static_cast<size_t>(DType::Q8_0)].from_f32 =
      [](const float* src, std::byte* dst, size_t n) { kernels::quantize_q8_0(src, dst, n); };
  table[static_cast<size_t>(DType::Q8_1)].from_f32 =
      [](const float* src, std::byte* dst, size_t n) { kernels::quantize_q8_1(src, dst, n); };
  return table;
}

}  // namespace

const DTypeTraits& dtype_traits(DType dtype) {
  static const std::array<DTypeTraits, kDTypeCount> table = make_table();
  return table[static_cast<size_t>(dtype)];
}

}  // namespace ember
