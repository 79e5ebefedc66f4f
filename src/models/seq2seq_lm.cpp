#include "ember/models/seq2seq_lm.hpp"

#include <string>
#include <vector>

#include "ember/base/error.hpp"

namespace ember::models {

void select_rows(Seq2SeqCache& cache, std::span<const int64_t> rows) {
  for (auto* layers : {&cache.self.layers, &cache.cross.layers}) {
    for (nn::LayerCache& l : *layers) {
      nn::select_rows(l.keys, rows);
      nn::select_rows(l.values, rows);
    }
  }
  // The mask is an integer tensor, which embedding (a float gather) does not take.
  const int64_t n = cache.cross.mask.dim(0), keys = cache.cross.mask.dim(1);
  const std::vector<double> old = cache.cross.mask.to_f64_vector();
  std::vector<int64_t> mask;
  mask.reserve(rows.size() * static_cast<size_t>(keys));
  for (int64_t r : rows) {
    if (r < 0 || r >= n) throw Error("select_rows: row " + std::to_string(r) + " out of range");
    for (int64_t k = 0; k < keys; ++k)
      mask.push_back(static_cast<int64_t>(old[static_cast<size_t>(r * keys + k)]));
  }
  cache.cross.mask = Tensor::from_values<int64_t>(
      DType::I64, {static_cast<int64_t>(rows.size()), keys}, std::span<const int64_t>(mask));
}

void check_decode_input(std::string_view model, const Tensor& ids, const Seq2SeqCache& cache,
                        size_t layers) {
  const std::string name(model);
  if (ids.rank() != 2)
    throw Error(name + " decode: ids must be [batch, tokens], got " + shape_to_string(ids.shape()));
  if (cache.self.layers.size() != layers || ids.dim(0) != cache.rows()) {
    throw Error(name + " decode: the cache does not match the model or the " +
                std::to_string(ids.dim(0)) + " rows of ids");
  }
}

Seq2SeqCache new_decoder_cache(std::span<const nn::Seq2SeqDecoderLayer> decoder,
                               const Tensor& encoded, const Tensor& mask, int64_t capacity) {
  Seq2SeqCache cache;
  const int64_t batch = encoded.dim(0);
  for (const nn::Seq2SeqDecoderLayer& l : decoder) {
    const Shape rows{batch, capacity, l.shape.heads, l.shape.head_dim};
    cache.self.layers.push_back({Tensor::zeros(DType::F32, rows), Tensor::zeros(DType::F32, rows)});
    cache.cross.layers.push_back(l.cross_cache(encoded));
  }
  cache.cross.mask = mask;
  return cache;
}

}  // namespace ember::models
