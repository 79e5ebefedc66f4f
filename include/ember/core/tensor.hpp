#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/storage.hpp"

namespace ember {

using Shape = std::vector<int64_t>;

std::string shape_to_string(std::span<const int64_t> shape);
// Product of dims; throws ember::Error on negative dims or overflow of int64.
int64_t shape_numel(std::span<const int64_t> shape);
// Row-major strides (in elements) for a shape.
Shape contiguous_strides(std::span<const int64_t> shape);

// A strided view over Storage. Strides and offset are in elements. Views (reshape, permute,
// narrow, broadcast) share storage; `contiguous()` copies only when the layout requires it.
// Quantized dtypes support only contiguous layouts with whole blocks per row.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape, Shape strides, int64_t offset, std::shared_ptr<Storage> storage);

  // New zero-filled contiguous tensor.
  static Tensor zeros(DType dtype, Shape shape);
  // New contiguous tensor with unspecified contents, for outputs written in full.
  static Tensor empty(DType dtype, Shape shape);
  // New contiguous tensor copied from `values` (dtype must match T's size); for tests and setup.
  static Tensor from_f32(Shape shape, std::span<const float> values);
  template <typename T>
  static Tensor from_values(DType dtype, Shape shape, std::span<const T> values);
  // Zero-copy view over borrowed bytes (e.g. a memory-mapped file region; then `pages` is the
  // mapping, see Storage::borrow).
  static Tensor borrow(DType dtype, Shape shape, const std::byte* data, size_t bytes,
                       std::shared_ptr<const void> keepalive, const PageReleaser* pages = nullptr);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const;  // bytes of the logical elements (numel * element size, or blocks)
  bool defined() const { return storage_ != nullptr; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Pointer to element 0 of the view. `mutable_data` throws on borrowed (read-only) storage.
  const std::byte* data() const;
  std::byte* mutable_data();
  template <typename T>
  const T* data_as() const {
    return reinterpret_cast<const T*>(data());
  }
  template <typename T>
  T* mutable_data_as() {
    return reinterpret_cast<T*>(mutable_data());
  }

  // Views.
  Tensor reshape(Shape shape) const;  // one dim may be -1; copies if not viewable
  Tensor view(Shape shape) const;     // like reshape but throws instead of copying
  Tensor permute(std::span<const int64_t> axes) const;
  Tensor permute(std::initializer_list<int64_t> axes) const {
    return permute(std::span<const int64_t>(axes.begin(), axes.size()));
  }
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t axis, int64_t start, int64_t length) const;
  Tensor select(int64_t axis, int64_t index) const;  // drops the axis
  Tensor unsqueeze(int64_t axis) const;
  Tensor squeeze(int64_t axis) const;
  Tensor broadcast_to(Shape shape) const;  // stride-0 view

  // Copies.
  Tensor contiguous() const;  // returns *this when already contiguous
  Tensor clone() const;       // always a fresh owned contiguous copy
  // Converts through F32/F64/I64 as needed; same dtype -> clone. Block-quantized dtypes
  // (de)quantize through their dtype traits; quantizing needs rows of whole blocks.
  Tensor to(DType dtype) const;

  // Reads every element as double, in row-major order; for tests and small tensors.
  std::vector<double> to_f64_vector() const;
  std::vector<float> to_f32_vector() const;

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  std::shared_ptr<Storage> storage_;
};

template <typename T>
Tensor Tensor::from_values(DType dtype, Shape shape, std::span<const T> values) {
  Tensor t = zeros(dtype, std::move(shape));
  if (static_cast<size_t>(t.numel()) != values.size() || sizeof(T) != dtype_size(dtype)) {
    throw Error("Tensor::from_values: value count or element size does not match");
  }
  std::copy(values.begin(), values.end(), t.mutable_data_as<T>());
  return t;
}

}  // namespace ember
