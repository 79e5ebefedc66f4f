#pragma once
// Per-dtype row kernels, one table entry per DType (the role of ggml's type_traits). Everything
// that turns stored weights into numbers goes through here: linear's driver, embedding's row
// gather and Tensor conversions. A new weight format (a GGML block type) is one entry: its
// row <-> F32 conversions and a dot product against activations in the format it asks for.
#include <cstddef>

#include "ember/core/dtype.hpp"

namespace ember {

struct DTypeTraits {
  // Widens n elements (a whole number of blocks) of this dtype to F32. Null for non-float dtypes.
  void (*to_f32)(const std::byte* src, float* dst, size_t n) = nullptr;
  // Narrows (or quantizes) n F32 values to this dtype. Null where unsupported.
  void (*from_f32)(const float* src, std::byte* dst, size_t n) = nullptr;
  // The format vec_dot wants its activations in: F32, or an 8-bit block type for quantized
  // weights (activations are then quantized once per linear call, not once per weight row).
  DType vec_dot_type = DType::F32;
  // sum_i w[i] * x[i] over n elements: w a row of this dtype, x a row of vec_dot_type.
  float (*vec_dot)(const std::byte* w, const std::byte* x, size_t n) = nullptr;
  // vec_dot of every row pair of a panel of nw weight rows (w_stride bytes apart) and nx
  // activation rows (x_stride bytes apart, vec_dot_type): out[i * ldo + j] = vec_dot(w row j,
  // x row i), with vec_dot's integer products and block scales (results differ only in the
  // order of float sums). Linear's path for prompts; null where it falls back to widened
  // weights and sgemm. The scalar reference is vec_dot's, pair by pair.
  void (*vec_dot_tile)(const std::byte* w, size_t w_stride, size_t nw, const std::byte* x,
                       size_t x_stride, size_t nx, size_t n, float* out, size_t ldo) = nullptr;
  // vec_dot of nw weight rows (w_stride bytes apart) with one activation row (vec_dot_type):
  // out[j] = vec_dot(w row j, x), bit for bit. Linear's path for decoding: the kernel walks
  // several rows per pass over x, sharing its loads and the rows' reductions. Null where linear
  // calls vec_dot row by row; the reference is that loop.
  void (*vec_dot_rows)(const std::byte* w, size_t w_stride, size_t nw, const std::byte* x, size_t n,
                       float* out) = nullptr;
};

const DTypeTraits& dtype_traits(DType dtype);

}  // namespace ember
