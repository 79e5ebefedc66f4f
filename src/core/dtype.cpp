#include "ember/core/dtype.hpp"

#include <array>

namespace ember {
namespace {

constexpr std::array<DTypeInfo, kDTypeCount> kInfos = {{
    {DType::F64, "F64", DTypeKind::Float, 1, 8},
    {DType::F32, "F32", DTypeKind::Float, 1, 4},
    {DType::F16, "F16", DTypeKind::Float, 1, 2},
    {DType::BF16, "BF16", DTypeKind::Float, 1, 2},
    {DType::F8_E4M3, "F8_E4M3", DTypeKind::Float, 1, 1},
    {DType::F8_E5M2, "F8_E5M2", DTypeKind::Float, 1, 1},
    {DType::I64, "I64", DTypeKind::SignedInt, 1, 8},
    {DType::I32, "I32", DTypeKind::SignedInt, 1, 4},
    {DType::I16, "I16", DTypeKind::SignedInt, 1, 2},
    {DType::I8, "I8", DTypeKind::SignedInt, 1, 1},
    {DType::U64, "U64", DTypeKind::UnsignedInt, 1, 8},
    {DType::U32, "U32", DTypeKind::UnsignedInt, 1, 4},
    {DType::U16, "U16", DTypeKind::UnsignedInt, 1, 2},
    {DType::U8, "U8", DTypeKind::UnsignedInt, 1, 1},
    {DType::Bool, "BOOL", DTypeKind::Bool, 1, 1},
}};

}  // namespace

const DTypeInfo& dtype_info(DType dtype) {
  return kInfos[static_cast<size_t>(dtype)];
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kInfos) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

std::optional<uint64_t> dtype_bytes(DType dtype, uint64_t elems) {
  const DTypeInfo& info = dtype_info(dtype);
  if (elems % info.block_elems != 0) return std::nullopt;
  const uint64_t blocks = elems / info.block_elems;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(info.block_bytes), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace ember
