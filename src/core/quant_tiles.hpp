#pragma once
// Tile kernels of the GGML block types (kernels_quant_simd.cpp), served through
// DTypeTraits::vec_dot_tile, and the other multi-row kernels of that file. Internal to core: only
// dtype_traits.cpp wires them in.
//
// Each computes, for a panel of nw weight rows (w_stride bytes apart) and nx activation rows in
// the type's 8-bit format (x_stride bytes apart), out[i * ldo + j] = the matching
// kernels::dot_*(w row j, x row i, n), with the dot's integer products and per-block scales;
// only the order of float sums differs.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::kernels {

void tile_q4_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q4_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q5_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q5_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q8_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q2_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q3_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q4_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q5_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);
void tile_q6_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo);

// Decode's multi-row dot, served through DTypeTraits::vec_dot_rows: out[j] = the matching
// kernels::dot_*(w row j, x, n) bit for bit, for nw weight rows w_stride bytes apart and one
// activation row x in the type's 8-bit format.
void dot_rows_q4_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q4_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q5_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q5_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q8_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q2_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q3_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q4_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q5_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);
void dot_rows_q6_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out);

// SIMD dequantization of the block types linear widens for prompts, served through
// DTypeTraits::to_f32: every value bit-identical to quant::reference(type).to_f32's.
void dequant_q4_0(const void* src, float* dst, size_t n);
void dequant_q4_1(const void* src, float* dst, size_t n);
void dequant_q5_0(const void* src, float* dst, size_t n);
void dequant_q5_1(const void* src, float* dst, size_t n);
void dequant_q8_0(const void* src, float* dst, size_t n);
void dequant_q2_k(const void* src, float* dst, size_t n);
void dequant_q3_k(const void* src, float* dst, size_t n);
void dequant_q4_k(const void* src, float* dst, size_t n);
void dequant_q5_k(const void* src, float* dst, size_t n);
void dequant_q6_k(const void* src, float* dst, size_t n);

// SIMD quantization of activations to Q8_0 and Q8_1, served through DTypeTraits::from_f32:
// every byte identical to quant::reference(type).from_f32's.
void quantize_q8_0(const float* x, void* dst, size_t n);
void quantize_q8_1(const float* x, void* dst, size_t n);

// The SIMD targets kernels_quant_simd.cpp is built for that the CPU supports, best first: every
// target of kernels_simd.cpp and AVX3_DL (AVX-512 VNNI), which only that file builds. And the
// name of the one its dispatch picks now, the best that simd_targets() and any forcing allow.
std::vector<int64_t> quant_simd_targets();
const char* quant_active_target();

}  // namespace ember::kernels
