#include "ember/nn/quantized_weights.hpp"

#include <cctype>
#include <iterator>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/dtype_traits.hpp"

namespace ember::nn {
namespace {

bool is_position_table(std::string_view name) {
  return name.find("position") != std::string_view::npos ||
         name.find("relative_attention_bias") != std::string_view::npos;
}

class QuantizedSource final : public WeightSource {
 public:
  QuantizedSource(Weights weights, DType dtype) : weights_(std::move(weights)) {
    const WeightSource& source = weights_.source();
    const int64_t block = static_cast<int64_t>(dtype_info(dtype).block_elems);
    // Each picked matrix with its mapped tensor, replaced below by its quantized copy.
    std::vector<std::pair<std::string, Tensor>> matrices;
    for (const std::string& name : source.names()) {
      if (!name.ends_with(".weight") || is_position_table(name)) continue;
      Tensor t = source.tensor(name);
      const bool matrix_of_floats =
          t.rank() == 2 &&
          (t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16);
      if (matrix_of_floats && t.dim(1) % block == 0) matrices.emplace_back(name, std::move(t));
    }
    // One tensor per pool thread at a time: the quantizers are serial.
    parallel_for_each(static_cast<int64_t>(matrices.size()), [&](int64_t i) {
      Tensor& matrix = matrices[static_cast<size_t>(i)].second;
      const Tensor original = matrix;
      matrix = to_f32(original).to(dtype);
      // The copy replaces the mapped matrix: give its pages back, so that the process holds a
      // quarter of F32's bytes (Q8_0) rather than both.
      const Storage& storage = *original.storage();
      storage.release_pages(static_cast<size_t>(original.data() - storage.data()),
                            original.nbytes());
    });
    quantized_.insert(std::make_move_iterator(matrices.begin()),
                      std::make_move_iterator(matrices.end()));
  }

  const std::vector<std::string>& names() const override { return weights_.source().names(); }
  bool contains(std::string_view name) const override { return weights_.source().contains(name); }
  Tensor tensor(std::string_view name) const override {
    const auto it = quantized_.find(std::string(name));
    return it != quantized_.end() ? it->second : weights_.source().tensor(name);
  }
  std::string description() const override { return weights_.source().description(); }
  ops::RopeLayout rope_layout() const override { return weights_.source().rope_layout(); }

 private:
  Weights weights_;  // keeps the checkpoint (and its mapping) alive
  std::unordered_map<std::string, Tensor> quantized_;
};

// Q8_1 and Q8_K are the activation formats of the dot products, not weight types.
bool is_weight_block_type(DType dtype) {
  const DTypeTraits& traits = dtype_traits(dtype);
  return is_quantized(dtype) && dtype != DType::Q8_1 && dtype != DType::Q8_K &&
         traits.from_f32 != nullptr && traits.vec_dot != nullptr;
}

const char* const kWeightBlockTypes = "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

}  // namespace

Weights quantize_matrices(const Weights& weights, DType dtype) {
  if (!is_weight_block_type(dtype)) {
    throw Error("quantize: " + std::string(dtype_name(dtype)) +
                " is not a weight block type with a quantizer (" + kWeightBlockTypes + ")");
  }
  return Weights(std::make_shared<QuantizedSource>(weights, dtype));
}

DType weight_block_type(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::optional<DType> dtype = dtype_from_name(upper);
  if (!dtype || !is_weight_block_type(*dtype)) {
    throw Error("quantize: '" + std::string(name) + "' is not a weight block type (" +
                kWeightBlockTypes + ")");
  }
  return *dtype;
}

}  // namespace ember::nn
