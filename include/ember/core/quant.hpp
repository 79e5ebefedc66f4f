#pragma once
// Scalar reference kernels for the GGML block types (Q4_0 ... Q8_K): dequantize a row to F32,
// quantize F32 to a row, and the dot product of a weight row with an activation row in the
// format ggml pairs it with. Dequantize and quantize are bit-exact with ggml's
// dequantize_row_* and quantize_row_*_ref (same float operations in the same order), so rows
// written here load in llama.cpp and GGUF weights widen to the floats ggml computes.
// dtype_traits() serves these for to_f32/from_f32; vec_dot goes through the SIMD kernels in
// kernels.hpp where a type has one, and these scalar versions define their expected results.
#include <array>
#include <cstddef>
#include <cstdint>

#include "ember/core/dtype.hpp"

namespace ember::quant {

struct BlockKernels {
  void (*to_f32)(const std::byte* src, float* dst, size_t n) = nullptr;
  void (*from_f32)(const float* src, std::byte* dst, size_t n) = nullptr;
  // Activations of vec_dot: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants.
  DType vec_dot_type = DType::F32;
  // sum_i w[i] * x[i], w a row of the block type, x a row of vec_dot_type (n a whole number of
  // blocks). Integer products within a block, one float scale per block, float accumulation.
  float (*vec_dot)(const std::byte* w, const std::byte* x, size_t n) = nullptr;
};

// The reference kernels of a quantized dtype; throws Error for a non-block dtype.
const BlockKernels& reference(DType dtype);

// The 6-bit scale and min of sub-block j (of 8) from the 12 scale bytes q of Q4_K / Q5_K.
// Inline: the SIMD dot products unpack them once per super-block, and a call there cost 14% of
// a Q4_K decoding step.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The eight 6-bit sub-block scales and mins packed into the 12 scale bytes of Q4_K / Q5_K.
inline void unpack_k4_scales(const std::byte* packed, uint8_t* scales, uint8_t* mins) {
  const auto* q = reinterpret_cast<const uint8_t*>(packed);
  for (int j = 0; j < 8; ++j) scale_min_k4(j, q, &scales[j], &mins[j]);
}

// The 16 signed 6-bit scales packed (stored + 32) into the 12 scale bytes of Q3_K.
std::array<int8_t, 16> q3_k_scales(const uint8_t* packed);

}  // namespace ember::quant
