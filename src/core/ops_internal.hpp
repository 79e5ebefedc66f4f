#pragma once
// Helpers shared by the ops_*.cpp files (not installed API).
#include <string>

#include "ember/base/error.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/tensor.hpp"

namespace ember::ops::detail {

inline std::string dtype_str(DType dtype) {
  return std::string(dtype_name(dtype));
}

inline int64_t normalize_axis(const char* op, int64_t axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw Error(std::string(op) + ": axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(rank));
  }
  return a;
}

inline void require_defined(const char* op, const Tensor& t, const char* what) {
  if (!t.defined()) throw Error(std::string(op) + ": " + what + " is an undefined tensor");
}

inline bool is_float_compute_dtype(DType d) {
  return d == DType::F32 || d == DType::F64 || d == DType::F16 || d == DType::BF16;
}

// Throws unless x is a defined F32/F64/F16/BF16 tensor.
inline void require_float(const char* op, const Tensor& x, const char* what = "input") {
  require_defined(op, x, what);
  if (!is_float_compute_dtype(x.dtype())) {
    throw Error(std::string(op) + ": " + what + " dtype " + dtype_str(x.dtype()) + " (shape " +
                shape_to_string(x.shape()) + ") is not supported; expected F32, F64, F16 or BF16");
  }
}

// Rows [0, rows) (rows <= kernels::kGemmPanel; k floats each, `stride` floats apart) into one
// panel of kernels::gemm_panels_f32's layout: panel[kk * kGemmPanel + j] = row j's kk. The slots
// of later rows are left as they are (zero in a zeroed panel).
inline void pack_panel_rows(const float* src, int64_t stride, int64_t rows, int64_t k,
                            float* panel) {
  const auto width = static_cast<int64_t>(kernels::kGemmPanel);
  for (int64_t j = 0; j < rows; ++j) {
    const float* row = src + j * stride;
    for (int64_t kk = 0; kk < k; ++kk) panel[kk * width + j] = row[kk];
  }
}

}  // namespace ember::ops::detail
