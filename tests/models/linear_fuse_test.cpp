// nn::Linear::fuse: F32 parts become one weight; others (quantized, F16, and the mixtures of
// llama.cpp's Q4_K_M) stay separate views and each runs its own kernel, so the fused layer gives
// exactly what the parts give one by one. And the gated MLPs' activation of a fused [gate | up].
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "../test_env.hpp"
#include "ember/core/ops.hpp"
#include "ember/nn/layers.hpp"

namespace ember {
namespace {

Tensor random_f32(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 0.5F);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (float& v : values) v = normal(rng);
  return Tensor::from_f32(std::move(shape), values);
}

nn::Linear part(DType dtype, int64_t out, int64_t in, uint32_t seed) {
  nn::Linear l;
  l.weight = random_f32({out, in}, seed).to(dtype);
  l.bias = random_f32({out}, seed + 100);
  l.packed = ops::pack_linear_weight(l.weight);
  return l;
}

// The parts' outputs side by side, each computed on its own.
Tensor separately(const std::vector<nn::Linear>& parts, const Tensor& x) {
  std::vector<Tensor> outputs;
  outputs.reserve(parts.size());
  for (const nn::Linear& p : parts) outputs.push_back(p(x));
  return ops::concat(outputs, -1);
}

TEST(LinearFuse, MixedDtypesKeepEachPartAndGiveTheSameNumbers) {
  const std::vector<nn::Linear> parts = {part(DType::Q4_0, 64, 64, 1), part(DType::Q8_0, 32, 64, 2),
                                         part(DType::F16, 32, 64, 3)};
  const nn::Linear fused = nn::Linear::fuse(parts);
  ASSERT_EQ(fused.parts.size(), 3U);
  EXPECT_FALSE(fused.weight.defined());  // no widened F32 copy
  EXPECT_EQ(fused.in_features(), 64);
  EXPECT_EQ(fused.out_features(), 128);
  // One row is the decode step; more rows go through the prompt path. Either way each part writes
  // its columns of the output in place. Same kernels on the same bytes, so the results are
  // equal, not close.
  for (int64_t rows : {1, 3, 20}) {
    const Tensor x = random_f32({rows, 64}, 10 + static_cast<uint32_t>(rows));
    const Tensor want = separately(parts, x);
    const Tensor got = fused(x);
    ASSERT_EQ(got.shape(), (Shape{rows, 128}));
    EXPECT_EQ(got.to_f32_vector(), want.to_f32_vector()) << rows << " rows";
    Tensor buffer = Tensor::empty(DType::F32, {rows * 128});
    fused.into(x, buffer);
    EXPECT_EQ(buffer.to_f32_vector(), want.to_f32_vector()) << rows << " rows, into";
  }
  Tensor wrong = Tensor::empty(DType::F32, {127});
  EXPECT_NE(test::error_of([&] {
              fused.into(random_f32({1, 64}, 5), wrong);
            }).find("128"),
            std::string::npos);
}

TEST(LinearFuse, QuantizedPartsOfOneDtypeStayViewsOfTheirWeights) {
  const std::vector<nn::Linear> parts = {part(DType::Q8_0, 64, 64, 4),
                                         part(DType::Q8_0, 32, 64, 5)};
  const nn::Linear fused = nn::Linear::fuse(parts);
  ASSERT_EQ(fused.parts.size(), 2U);
  EXPECT_EQ(fused.parts[0].weight.data(), parts[0].weight.data());
  const Tensor x = random_f32({5, 64}, 6);
  EXPECT_EQ(fused(x).to_f32_vector(), separately(parts, x).to_f32_vector());
}

TEST(LinearFuse, F32PartsBecomeOneWeight) {
  const std::vector<nn::Linear> parts = {part(DType::F32, 64, 64, 7), part(DType::F32, 32, 64, 8)};
  const nn::Linear fused = nn::Linear::fuse(parts);
  EXPECT_TRUE(fused.parts.empty());
  ASSERT_EQ(fused.weight.shape(), (Shape{96, 64}));
  // One weight and its packed copy: the kernels may sum in another order than the parts' own
  // calls, so this compares within F32 rounding of 64-term dot products of magnitude ~2.
  const Tensor x = random_f32({5, 64}, 9);
  const std::vector<float> got = fused(x).to_f32_vector();
  const std::vector<float> want = separately(parts, x).to_f32_vector();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4F) << i;
}

// gated_activation_ turns a fused [gate | up] projection into act(gate) * up in place: the
// result views the first half of the same storage, row after row. The SIMD SiLU is within a few
// ulps of x / (1 + e^-x), hence the bound of 2e-6 relative.
TEST(GatedActivation, InPlaceInTheFirstHalfOfTheStorage) {
  constexpr int64_t kInner = 40, kRows = 6;
  Tensor gate_up = random_f32({3, 2, 2 * kInner}, 11);
  const std::vector<float> before = gate_up.to_f32_vector();
  const std::byte* storage = gate_up.data();
  const Tensor out = nn::gated_activation_(gate_up, nn::Activation::Silu);
  ASSERT_EQ(out.shape(), (Shape{3, 2, kInner}));
  EXPECT_EQ(out.data(), storage);
  const std::vector<float> got = out.to_f32_vector();
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t i = 0; i < kInner; ++i) {
      const double gate = before[static_cast<size_t>(r * 2 * kInner + i)];
      const double up = before[static_cast<size_t>(r * 2 * kInner + kInner + i)];
      const double want = gate / (1.0 + std::exp(-gate)) * up;
      EXPECT_NEAR(got[static_cast<size_t>(r * kInner + i)], want, 2e-6 * (1.0 + std::fabs(want)))
          << "row " << r << ", column " << i;
    }
  }
  Tensor odd = random_f32({2, 5}, 12);
  EXPECT_NE(test::error_of([&] {
              (void)nn::gated_activation_(odd, nn::Activation::Silu);
            }).find("[2, 5]"),
            std::string::npos);
}

}  // namespace
}  // namespace ember
