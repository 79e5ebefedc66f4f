#include "ember/models/causal_lm.hpp"

#include <numeric>
#include <string>
#include <vector>

#include "ember/base/error.hpp"

namespace ember::models {

void CausalLM::discard_tokens(KvCache& cache, int64_t start, int64_t count,
                              std::span<const int64_t> tokens) {
  if (cache.layers.empty() || cache.layers[0].keys.dim(0) != 1) {
    throw Error("context shift: the KV cache must hold exactly one sequence");
  }
  if (static_cast<int64_t>(tokens.size()) != cache.length) {
    throw Error("context shift: " + std::to_string(tokens.size()) +
                " tokens given for a cache of " + std::to_string(cache.length));
  }
  if (start < 0 || count < 1 || start + count > cache.length) {
    throw Error("context shift: cannot discard tokens [" + std::to_string(start) + ", " +
                std::to_string(start + count) + ") of " + std::to_string(cache.length));
  }
  move_tokens(cache, start, count, tokens);
}

void CausalLM::set_kv_cache_dtype(DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16) {
    throw Error("KV cache: the dtype must be F32 or F16, got " + std::string(dtype_name(dtype)));
  }
  kv_cache_dtype_ = dtype;
}

void CausalLM::move_tokens(KvCache& cache, int64_t start, int64_t count,
                           std::span<const int64_t> tokens) {
  // A learned position is added to the embedding before the first layer, so every layer's keys
  // and values of a moved token change: run the moved tokens again at their new positions.
  const int64_t moved = cache.length - start - count;
  cache.length = start;
  if (moved == 0) return;
  const std::vector<int64_t> ids(tokens.begin() + start + count, tokens.end());
  std::vector<int64_t> positions(ids.size());
  std::iota(positions.begin(), positions.end(), start);
  forward(Tensor::from_values<int64_t>(DType::I64, {1, moved}, ids), positions, Tensor(), cache,
          false);
}

}  // namespace ember::models
