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
    // GGML block layouts (ggml-common.h): scales are F16 unless said otherwise.
    {DType::Q4_0, "Q4_0", DTypeKind::Quantized, 32, 18},  // d, 16 bytes of nibbles
    {DType::Q4_1, "Q4_1", DTypeKind::Quantized, 32, 20},  // d, m, 16 bytes of nibbles
    {DType::Q5_0, "Q5_0", DTypeKind::Quantized, 32, 22},  // d, 4 bytes of high bits, nibbles
    {DType::Q5_1, "Q5_1", DTypeKind::Quantized, 32, 24},  // d, m, high bits, nibbles
    {DType::Q8_0, "Q8_0", DTypeKind::Quantized, 32, 34},  // d, 32 int8
    {DType::Q8_1, "Q8_1", DTypeKind::Quantized, 32, 36},  // d, d * sum, 32 int8
    {DType::Q2_K, "Q2_K", DTypeKind::Quantized, 256, 84},
    {DType::Q3_K, "Q3_K", DTypeKind::Quantized, 256, 110},
    {DType::Q4_K, "Q4_K", DTypeKind::Quantized, 256, 144},
    {DType::Q5_K, "Q5_K", DTypeKind::Quantized, 256, 176},
    {DType::Q6_K, "Q6_K", DTypeKind::Quantized, 256, 210},
    {DType::Q8_K, "Q8_K", DTypeKind::Quantized, 256, 292},  // F32 d, 256 int8, 16 int16 sums
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
