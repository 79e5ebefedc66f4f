#include "ember/core/tensor.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ember/core/half.hpp"

namespace ember {
namespace {

Tensor iota_f32(Shape shape) {
  const int64_t n = shape_numel(shape);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  return Tensor::from_f32(std::move(shape), v);
}

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i < kDTypeCount; ++i) {
    const auto dtype = static_cast<DType>(i);
    EXPECT_EQ(dtype_from_name(dtype_name(dtype)), dtype);
  }
  EXPECT_FALSE(dtype_from_name("F31").has_value());
  EXPECT_EQ(dtype_bytes(DType::BF16, 3), 6u);
  EXPECT_FALSE(dtype_bytes(DType::F64, UINT64_MAX / 4).has_value());
}

TEST(Tensor, TransposeThenContiguousCopiesInRowMajorOrder) {
  Tensor t = iota_f32({2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_EQ(tt.contiguous().to_f32_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, NarrowSelectAndBroadcastShareStorage) {
  Tensor t = iota_f32({3, 4});
  Tensor row = t.select(0, 1);
  EXPECT_EQ(row.to_f32_vector(), (std::vector<float>{4, 5, 6, 7}));
  Tensor col = t.narrow(1, 2, 1);
  EXPECT_EQ(col.to_f32_vector(), (std::vector<float>{2, 6, 10}));
  EXPECT_EQ(col.storage(), t.storage());
  Tensor b = row.unsqueeze(0).broadcast_to({2, 4});
  EXPECT_EQ(b.to_f32_vector(), (std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7}));
  EXPECT_THROW(t.narrow(1, 3, 2), Error);
  EXPECT_THROW(t.broadcast_to({3, 5}), Error);
}

TEST(Tensor, ReshapeInfersAndCopiesWhenNeeded) {
  Tensor t = iota_f32({2, 6});
  EXPECT_EQ(t.reshape({3, -1}).shape(), (Shape{3, 4}));
  Tensor tt = t.transpose(0, 1);
  EXPECT_THROW(tt.view({12}), Error);
  EXPECT_EQ(tt.reshape({12}).to_f32_vector()[1], 6.0f);
  EXPECT_THROW(t.reshape({5, -1}), Error);
}

TEST(Tensor, DTypeConversions) {
  Tensor t = Tensor::from_f32({4}, std::vector<float>{1.5f, -2.0f, 65504.0f, 1e-8f});
  EXPECT_EQ(t.to(DType::F16).to_f32_vector(), (std::vector<float>{1.5f, -2.0f, 65504.0f, 0.0f}));
  EXPECT_EQ(t.to(DType::I8).to_f64_vector(), (std::vector<double>{1, -2, 127, 0}));
  Tensor big = Tensor::from_values<int64_t>(DType::I64, {1}, std::vector<int64_t>{(1LL << 60) + 1});
  EXPECT_EQ(big.to(DType::U64).to(DType::I64).data_as<int64_t>()[0], (1LL << 60) + 1);
}

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00u);         // rounds up to infinity
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00u);  // tie to even
}

TEST(Half, Bf16AndFp8) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80u);
  EXPECT_EQ(bf16_to_f32(0x4049u), 3.140625f);
  for (uint32_t v = 0; v < 256; ++v) {
    const float a = f8e4m3_to_f32(static_cast<uint8_t>(v));
    if (!std::isnan(a)) {
      EXPECT_EQ(f32_to_f8e4m3(a), v) << v;
    }
    const float b = f8e5m2_to_f32(static_cast<uint8_t>(v));
    if (!std::isnan(b)) {
      EXPECT_EQ(f32_to_f8e5m2(b), v) << v;
    }
  }
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f32_to_f8e4m3(1000.0f), 0x7eu);
  EXPECT_EQ(f8e5m2_to_f32(0x7b), 57344.0f);
}

}  // namespace
}  // namespace ember
