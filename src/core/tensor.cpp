#include "ember/core/tensor.hpp"

#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

#include "ember/core/dtype_traits.hpp"
#include "ember/core/half.hpp"

namespace ember {

std::string shape_to_string(std::span<const int64_t> shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_to_string(shape));
    if (__builtin_mul_overflow(n, d, &n)) {
      throw Error("element count overflows in shape " + shape_to_string(shape));
    }
  }
  return n;
}

Shape contiguous_strides(std::span<const int64_t> shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

namespace {

int64_t normalize_axis(int64_t axis, int64_t rank, const char* op) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw Error(std::string(op) + ": axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(rank));
  }
  return a;
}

void require_scalar_dtype(DType dtype, const char* op) {
  if (is_quantized(dtype)) {
    throw Error(std::string(op) + ": not supported for quantized dtype " +
                std::string(dtype_name(dtype)));
  }
}

// Calls fn(element_offset) for every element of a strided view in row-major order.
template <typename Fn>
void for_each_offset(const Shape& shape, const Shape& strides, int64_t base, Fn&& fn) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const size_t rank = shape.size();
  if (rank == 0) {
    fn(base);
    return;
  }
  std::vector<int64_t> index(rank, 0);
  int64_t offset = base;
  const int64_t inner = shape[rank - 1];
  const int64_t inner_stride = strides[rank - 1];
  for (int64_t done = 0; done < n; done += inner) {
    for (int64_t i = 0; i < inner; ++i) fn(offset + i * inner_stride);
    // Advance the outer index (odometer).
    for (size_t d = rank - 1; d-- > 0;) {
      offset += strides[d];
      if (++index[d] < shape[d]) break;
      offset -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
}

double load_f64(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return f16_to_f32(v);
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bf16_to_f32(v);
    }
    case DType::F8_E4M3:
      return f8e4m3_to_f32(static_cast<uint8_t>(*p));
    case DType::F8_E5M2:
      return f8e5m2_to_f32(static_cast<uint8_t>(*p));
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::I16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::I8:
      return static_cast<int8_t>(*p);
    case DType::U64: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case DType::U32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::U16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::U8:
      return static_cast<uint8_t>(*p);
    case DType::Bool:
      return *p != std::byte{0} ? 1.0 : 0.0;
    default:  // block types have no single-element form: their rows go through dtype_traits
      break;
  }
  throw Error("load: unsupported dtype " + std::string(dtype_name(dtype)));
}

template <typename T>
void store_raw(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Float-to-integer conversion saturates and maps NaN to 0, so it is never undefined behaviour.
template <typename T>
T saturate_cast(double v) {
  if (std::isnan(v)) return 0;
  const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::lowest();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

void store_f64(DType dtype, std::byte* p, double v) {
  switch (dtype) {
    case DType::F64:
      store_raw(p, v);
      return;
    case DType::F32:
      store_raw(p, static_cast<float>(v));
      return;
    case DType::F16:
      store_raw(p, f32_to_f16(static_cast<float>(v)));
      return;
    case DType::BF16:
      store_raw(p, f32_to_bf16(static_cast<float>(v)));
      return;
    case DType::F8_E4M3:
      *p = std::byte{f32_to_f8e4m3(static_cast<float>(v))};
      return;
    case DType::F8_E5M2:
      *p = std::byte{f32_to_f8e5m2(static_cast<float>(v))};
      return;
    case DType::I64:
      store_raw(p, saturate_cast<int64_t>(v));
      return;
    case DType::I32:
      store_raw(p, saturate_cast<int32_t>(v));
      return;
    case DType::I16:
      store_raw(p, saturate_cast<int16_t>(v));
      return;
    case DType::I8:
      store_raw(p, saturate_cast<int8_t>(v));
      return;
    case DType::U64:
      store_raw(p, saturate_cast<uint64_t>(v));
      return;
    case DType::U32:
      store_raw(p, saturate_cast<uint32_t>(v));
      return;
    case DType::U16:
      store_raw(p, saturate_cast<uint16_t>(v));
      return;
    case DType::U8:
      store_raw(p, saturate_cast<uint8_t>(v));
      return;
    case DType::Bool:
      *p = std::byte{v != 0.0 ? uint8_t{1} : uint8_t{0}};
      return;
    default:  // block types: see load_f64
      break;
  }
  throw Error("store: unsupported dtype " + std::string(dtype_name(dtype)));
}

bool is_integer_kind(DType dtype) {
  const DTypeKind k = dtype_info(dtype).kind;
  return k == DTypeKind::SignedInt || k == DTypeKind::UnsignedInt || k == DTypeKind::Bool;
}

}  // namespace

Tensor::Tensor(DType dtype, Shape shape, Shape strides, int64_t offset,
               std::shared_ptr<Storage> storage)
    : dtype_(dtype),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      storage_(std::move(storage)) {
  if (shape_.size() != strides_.size()) throw Error("Tensor: shape and strides differ in rank");
  shape_numel(shape_);
}

namespace {

Tensor new_contiguous(DType dtype, Shape shape, bool zero_filled) {
  const int64_t n = shape_numel(shape);
  const auto bytes = dtype_bytes(dtype, static_cast<uint64_t>(n));
  if (!bytes)
    throw Error("new tensor: shape " + shape_to_string(shape) + " invalid for dtype " +
                std::string(dtype_name(dtype)));
  Shape strides = contiguous_strides(shape);
  return Tensor(dtype, std::move(shape), std::move(strides), 0,
                zero_filled ? Storage::allocate(*bytes) : Storage::allocate_uninitialized(*bytes));
}

}  // namespace

Tensor Tensor::zeros(DType dtype, Shape shape) {
  return new_contiguous(dtype, std::move(shape), true);
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  return new_contiguous(dtype, std::move(shape), false);
}

Tensor Tensor::from_f32(Shape shape, std::span<const float> values) {
  return from_values<float>(DType::F32, std::move(shape), values);
}

Tensor Tensor::borrow(DType dtype, Shape shape, const std::byte* data, size_t bytes,
                      std::shared_ptr<const void> keepalive, const PageReleaser* pages) {
  const auto need = dtype_bytes(dtype, static_cast<uint64_t>(shape_numel(shape)));
  if (!need || *need != bytes) {
    throw Error("Tensor::borrow: " + std::to_string(bytes) + " bytes do not hold shape " +
                shape_to_string(shape) + " of " + std::string(dtype_name(dtype)));
  }
  Shape strides = contiguous_strides(shape);
  return Tensor(dtype, std::move(shape), std::move(strides), 0,
                Storage::borrow(data, bytes, std::move(keepalive), pages));
}

int64_t Tensor::dim(int64_t axis) const {
  return shape_[normalize_axis(axis, rank(), "dim")];
}

int64_t Tensor::numel() const {
  return shape_numel(shape_);
}

size_t Tensor::nbytes() const {
  return *dtype_bytes(dtype_, static_cast<uint64_t>(numel()));
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

const std::byte* Tensor::data() const {
  if (!storage_) throw Error("Tensor: undefined tensor has no data");
  const DTypeInfo& info = dtype_info(dtype_);
  return storage_->data() + offset_ / info.block_elems * info.block_bytes;
}

std::byte* Tensor::mutable_data() {
  if (!storage_) throw Error("Tensor: undefined tensor has no data");
  const DTypeInfo& info = dtype_info(dtype_);
  return storage_->mutable_data() + offset_ / info.block_elems * info.block_bytes;
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw Error("reshape: more than one -1 in " + shape_to_string(shape));
      infer = static_cast<int64_t>(i);
    } else {
      if (shape[i] < 0) throw Error("reshape: negative dimension in " + shape_to_string(shape));
      if (__builtin_mul_overflow(known, shape[i], &known)) throw Error("reshape: overflow");
    }
  }
  const int64_t n = numel();
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      throw Error("reshape: cannot infer -1 for " + shape_to_string(shape_) + " -> " +
                  shape_to_string(shape));
    }
    shape[static_cast<size_t>(infer)] = n / known;
    known = n;
  }
  if (known != n) {
    throw Error("reshape: " + shape_to_string(shape_) + " has " + std::to_string(n) +
                " elements, " + shape_to_string(shape) + " needs " + std::to_string(known));
  }
  if (is_contiguous()) {
    Shape strides = contiguous_strides(shape);
    return Tensor(dtype_, std::move(shape), std::move(strides), offset_, storage_);
  }
  return contiguous().reshape(std::move(shape));
}

Tensor Tensor::view(Shape shape) const {
  if (!is_contiguous()) throw Error("view: tensor is not contiguous; use reshape or contiguous");
  return reshape(std::move(shape));
}

Tensor Tensor::permute(std::span<const int64_t> axes) const {
  if (static_cast<int64_t>(axes.size()) != rank()) throw Error("permute: wrong number of axes");
  require_scalar_dtype(dtype_, "permute");
  Shape shape(axes.size());
  Shape strides(axes.size());
  std::vector<bool> seen(axes.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = normalize_axis(axes[i], rank(), "permute");
    if (seen[static_cast<size_t>(a)]) throw Error("permute: repeated axis");
    seen[static_cast<size_t>(a)] = true;
    shape[i] = shape_[static_cast<size_t>(a)];
    strides[i] = strides_[static_cast<size_t>(a)];
  }
  return Tensor(dtype_, std::move(shape), std::move(strides), offset_, storage_);
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> axes(shape_.size());
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[static_cast<size_t>(normalize_axis(a, rank(), "transpose"))],
            axes[static_cast<size_t>(normalize_axis(b, rank(), "transpose"))]);
  return permute(axes);
}

Tensor Tensor::narrow(int64_t axis, int64_t start, int64_t length) const {
  const auto a = static_cast<size_t>(normalize_axis(axis, rank(), "narrow"));
  if (start < 0 || length < 0 || start > shape_[a] || length > shape_[a] - start) {
    throw Error("narrow: range [" + std::to_string(start) + ", +" + std::to_string(length) +
                ") out of bounds for dimension of size " + std::to_string(shape_[a]));
  }
  if (is_quantized(dtype_) && a + 1 == shape_.size()) {
    require_scalar_dtype(dtype_, "narrow on the last axis");
  }
  Shape shape = shape_;
  shape[a] = length;
  return Tensor(dtype_, std::move(shape), strides_, offset_ + start * strides_[a], storage_);
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  const int64_t a = normalize_axis(axis, rank(), "select");
  Tensor t = narrow(a, index, 1);
  return t.squeeze(a);
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  const int64_t a = normalize_axis(axis, rank() + 1, "unsqueeze");
  Shape shape = shape_;
  Shape strides = strides_;
  const int64_t stride =
      a < rank() ? strides_[static_cast<size_t>(a)] * shape_[static_cast<size_t>(a)] : 1;
  shape.insert(shape.begin() + a, 1);
  strides.insert(strides.begin() + a, stride);
  return Tensor(dtype_, std::move(shape), std::move(strides), offset_, storage_);
}

Tensor Tensor::squeeze(int64_t axis) const {
  const int64_t a = normalize_axis(axis, rank(), "squeeze");
  if (shape_[static_cast<size_t>(a)] != 1) throw Error("squeeze: dimension is not 1");
  Shape shape = shape_;
  Shape strides = strides_;
  shape.erase(shape.begin() + a);
  strides.erase(strides.begin() + a);
  return Tensor(dtype_, std::move(shape), std::move(strides), offset_, storage_);
}

Tensor Tensor::broadcast_to(Shape shape) const {
  require_scalar_dtype(dtype_, "broadcast_to");
  if (shape.size() < shape_.size()) throw Error("broadcast_to: target has lower rank");
  Shape strides(shape.size(), 0);
  const size_t lead = shape.size() - shape_.size();
  for (size_t i = 0; i < shape_.size(); ++i) {
    const int64_t from = shape_[i];
    const int64_t to = shape[lead + i];
    if (from == to) {
      strides[lead + i] = strides_[i];
    } else if (from != 1) {
      throw Error("broadcast_to: cannot broadcast " + shape_to_string(shape_) + " to " +
                  shape_to_string(shape));
    }
  }
  return Tensor(dtype_, std::move(shape), std::move(strides), offset_, storage_);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(dtype_, shape_);
  if (is_contiguous() || is_quantized(dtype_)) {
    if (!is_contiguous()) throw Error("clone: non-contiguous quantized tensor");
    std::memcpy(out.mutable_data(), data(), nbytes());
    return out;
  }
  const size_t elem = dtype_size(dtype_);
  const std::byte* base = storage_->data();
  std::byte* dst = out.mutable_data();
  for_each_offset(shape_, strides_, offset_, [&](int64_t off) {
    std::memcpy(dst, base + off * static_cast<int64_t>(elem), elem);
    dst += elem;
  });
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  if (is_quantized(dtype_)) {
    // Block types widen through their dtype traits; the F32 result then converts as usual.
    const Tensor src = contiguous();
    Tensor f32 = empty(DType::F32, shape_);
    dtype_traits(dtype_).to_f32(src.data(), f32.mutable_data_as<float>(),
                                static_cast<size_t>(numel()));
    return dtype == DType::F32 ? f32 : f32.to(dtype);
  }
  if (is_quantized(dtype)) {
    const auto from_f32 = dtype_traits(dtype).from_f32;
    const uint32_t block = dtype_info(dtype).block_elems;
    if (from_f32 == nullptr || rank() == 0 || shape_.back() % block != 0) {
      throw Error("to: cannot quantize shape " + shape_to_string(shape_) + " to " +
                  std::string(dtype_name(dtype)) + ": rows must be whole blocks of " +
                  std::to_string(block));
    }
    const Tensor f32 = dtype_ == DType::F32 ? contiguous() : to(DType::F32);
    // ggml's quantizers convert scaled values to integers, undefined for NaN and infinities.
    const float* values = f32.data_as<float>();
    for (int64_t i = 0; i < numel(); ++i) {
      if (!std::isfinite(values[i])) {
        throw Error("to: cannot quantize the non-finite value at flat index " + std::to_string(i) +
                    " to " + std::string(dtype_name(dtype)));
      }
    }
    Tensor out = empty(dtype, shape_);
    from_f32(f32.data_as<float>(), out.mutable_data(), static_cast<size_t>(numel()));
    return out;
  }
  require_scalar_dtype(dtype_, "to");
  require_scalar_dtype(dtype, "to");
  Tensor src = contiguous();
  Tensor out = empty(dtype, shape_);
  const size_t in_size = dtype_size(dtype_);
  const size_t out_size = dtype_size(dtype);
  const std::byte* in = src.data();
  std::byte* dst = out.mutable_data();
  const int64_t n = numel();
  // Integer-to-integer goes through 64-bit integers so large values keep every bit.
  if (is_integer_kind(dtype_) && is_integer_kind(dtype) && dtype != DType::Bool) {
    const bool src_unsigned = dtype_info(dtype_).kind != DTypeKind::SignedInt;
    for (int64_t i = 0; i < n; ++i) {
      const std::byte* p = in + i * static_cast<int64_t>(in_size);
      uint64_t raw = 0;
      std::memcpy(&raw, p, in_size);
      if (!src_unsigned && in_size < 8 && (raw >> (in_size * 8 - 1)) & 1u) {
        raw |= ~uint64_t{0} << (in_size * 8);  // sign-extend
      }
      std::memcpy(dst + i * static_cast<int64_t>(out_size), &raw, out_size);  // little endian
    }
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    store_f64(dtype, dst + i * static_cast<int64_t>(out_size),
              load_f64(dtype_, in + i * static_cast<int64_t>(in_size)));
  }
  return out;
}

std::vector<double> Tensor::to_f64_vector() const {
  require_scalar_dtype(dtype_, "to_f64_vector");
  std::vector<double> out;
  out.reserve(static_cast<size_t>(numel()));
  const size_t elem = dtype_size(dtype_);
  const std::byte* base = storage_->data();
  for_each_offset(shape_, strides_, offset_, [&](int64_t off) {
    out.push_back(load_f64(dtype_, base + off * static_cast<int64_t>(elem)));
  });
  return out;
}

std::vector<float> Tensor::to_f32_vector() const {
  std::vector<double> d = to_f64_vector();
  return std::vector<float>(d.begin(), d.end());
}

}  // namespace ember
