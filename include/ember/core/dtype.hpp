#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ember {

// Element types. The GGML block types at the end are stored in blocks (block_elems elements
// packed into block_bytes bytes), so a quantized weight is a tensor like any other and ops
// dispatch on its dtype. Q8_1 and Q8_K are the activation formats of quantized dot products.
enum class DType : uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,
  F8_E5M2,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  Bool,
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
};
inline constexpr int kDTypeCount = 27;

enum class DTypeKind : uint8_t { Float, SignedInt, UnsignedInt, Bool, Quantized };

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // safetensors / GGUF spelling, e.g. "F32", "BF16", "BOOL"
  DTypeKind kind;
  uint32_t block_elems;  // 1 for scalar types
  uint32_t block_bytes;  // bytes per block; the element size for scalar types
};

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) {
  return dtype_info(dtype).name;
}
// Parses the spelling of dtype_name ("F32", "BOOL", "Q4_K", ...). Returns nullopt if unknown.
// Formats that cannot hold block types (safetensors) must reject is_quantized results.
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes taken by `elems` elements, or nullopt if elems is not a whole number of blocks or the
// product overflows.
std::optional<uint64_t> dtype_bytes(DType dtype, uint64_t elems);
// Element size of a scalar dtype (block_elems == 1).
inline size_t dtype_size(DType dtype) {
  return dtype_info(dtype).block_bytes;
}
inline bool is_quantized(DType dtype) {
  return dtype_info(dtype).kind == DTypeKind::Quantized;
}
inline bool is_float(DType dtype) {
  return dtype_info(dtype).kind == DTypeKind::Float;
}

}  // namespace ember
