#pragma once
// Bulk conversions between F32 and the 16-bit float formats (F16, BF16).
//
// The raw-pointer functions are SIMD (Highway, run-time dispatch) and single-threaded; they
// give exactly the results of the scalar functions in half.hpp on every element (round to nearest
// even, subnormals kept, +-inf kept, NaN -> quiet NaN), which the tests check bit for bit.
// The Tensor functions accept any layout and split large conversions across the thread pool.
#include <cstddef>
#include <cstdint>

#include "ember/core/tensor.hpp"

namespace ember {

void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n);
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n);
void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n);
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n);

// Scalar references (loops over half.hpp), used by tests and benchmarks.
namespace ref {
void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n);
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n);
void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n);
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n);
}  // namespace ref

// Contiguous F32 copy of any tensor; returns `x` itself when it already is contiguous F32 (no
// copy). F16/BF16 go through the SIMD converters, block-quantized dtypes through their dtype
// traits (dequantize), other dtypes through Tensor::to.
Tensor to_f32(const Tensor& x);
// Contiguous tensor of `dtype` with x's values (quantizing when `dtype` is a block type, whose
// rows must then be whole blocks). F32 -> F16/BF16 uses the SIMD converters;
// same dtype and contiguous returns `x` itself (shared storage, unlike Tensor::to).
Tensor convert_to(const Tensor& x, DType dtype);

}  // namespace ember
