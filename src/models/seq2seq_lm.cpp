#include "ember/models/seq2seq_lm.hpp"

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

}  // namespace ember::models
