// Writes the sample checkpoint the README's first command inspects: a tiny two-layer model with
// several dtypes and metadata. Built and run at build time (apps/ember/CMakeLists.txt):
//   ember_make_sample OUT.safetensors
#include <cmath>
#include <cstdint>
#include <exception>
#include <iostream>
#include <vector>

#include "ember/core/half.hpp"
#include "ember/formats/safetensors.hpp"

namespace {

// Deterministic smooth values, so the file is the same on every build.
std::vector<float> wave(size_t n, float scale, float phase) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + phase);
  return v;
}

template <typename T, typename F>
std::vector<T> convert(const std::vector<float>& v, F f) {
  std::vector<T> out;
  out.reserve(v.size());
  for (float x : v) out.push_back(f(x));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ember_make_sample OUT.safetensors\n";
    return 2;
  }
  try {
    using ember::DType;
    using ember::Tensor;
    std::map<std::string, Tensor> tensors;
    tensors.emplace(
        "embed.weight",
        Tensor::from_values<uint16_t>(
            DType::BF16, {16, 8}, convert<uint16_t>(wave(128, 0.5f, 0.0f), ember::f32_to_bf16)));
    tensors.emplace("layer.0.weight", Tensor::from_f32({8, 8}, wave(64, 0.25f, 1.0f)));
    tensors.emplace("layer.0.bias", Tensor::from_values<uint16_t>(
                                        DType::F16, {8},
                                        convert<uint16_t>(wave(8, 0.1f, 2.0f), ember::f32_to_f16)));
    tensors.emplace("head.weight", Tensor::from_f32({4, 8}, wave(32, 0.3f, 3.0f)));
    tensors.emplace("head.scale", Tensor::from_f32({}, std::vector<float>{0.125f}));
    std::vector<int64_t> positions(8);
    for (int64_t i = 0; i < 8; ++i) positions[static_cast<size_t>(i)] = i;
    tensors.emplace("position_ids", Tensor::from_values<int64_t>(DType::I64, {1, 8}, positions));
    tensors.emplace("attention_mask",
                    Tensor::from_values<uint8_t>(DType::Bool, {8},
                                                 std::vector<uint8_t>{1, 1, 1, 1, 1, 1, 0, 0}));
    ember::write_safetensors(argv[1], tensors,
                             ember::SafeTensorsMetadata{{"format", "pt"},
                                                        {"model", "ember-sample"},
                                                        {"description", "tiny sample checkpoint"}});
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
