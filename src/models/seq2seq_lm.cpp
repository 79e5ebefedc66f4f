#include "ember/models/seq2seq_lm.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "ember/base/error.hpp"

namespace ember::models {

void select_rows(Seq2SeqCache& cache, std::span<const int64_t> rows) {
  const int64_t old_rows = cache.rows(), inputs = cache.cross.mask.dim(0);
  const int64_t group = old_rows / std::max<int64_t>(1, inputs);
  for (int64_t r : rows)
    if (r < 0 || r >= old_rows)
      throw Error("select_rows: row " + std::to_string(r) + " out of range");
  // New rows in equal runs, each reading one input (beams reordered within their input, inputs
  // expanded to beams or dropped), keep one cross row per run; any other order gets one cross
  // row per decoder row.
  std::vector<int64_t> runs;  // the input each run reads
  std::vector<int64_t> run_starts;
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t input = rows[r] / group;
    if (runs.empty() || runs.back() != input) {
      runs.push_back(input);
      run_starts.push_back(static_cast<int64_t>(r));
    }
  }
  const int64_t run = runs.empty() ? 1 : static_cast<int64_t>(rows.size() / runs.size());
  bool even = rows.size() == runs.size() * static_cast<size_t>(run);
  for (size_t i = 0; even && i < run_starts.size(); ++i)
    even = run_starts[i] == static_cast<int64_t>(i) * run;
  std::vector<int64_t> cross_rows;
  if (even) {
    cross_rows = runs;
  } else {
    for (int64_t r : rows) cross_rows.push_back(r / group);
  }
  std::vector<int64_t> same(static_cast<size_t>(inputs));
  std::iota(same.begin(), same.end(), 0);
  if (cross_rows != same) {
    for (nn::LayerCache& l : cache.cross.layers) {
      nn::select_rows(l.keys, cross_rows, l.keys.dim(1));
      nn::select_rows(l.values, cross_rows, l.values.dim(1));
    }
    // The mask is an integer tensor: gathered here.
    const int64_t keys = cache.cross.mask.dim(1);
    const std::vector<double> old = cache.cross.mask.to_f64_vector();
    std::vector<int64_t> mask;
    mask.reserve(cross_rows.size() * static_cast<size_t>(keys));
    for (int64_t r : cross_rows)
      for (int64_t k = 0; k < keys; ++k)
        mask.push_back(static_cast<int64_t>(old[static_cast<size_t>(r * keys + k)]));
    cache.cross.mask =
        Tensor::from_values<int64_t>(DType::I64, {static_cast<int64_t>(cross_rows.size()), keys},
                                     std::span<const int64_t>(mask));
  }
  for (nn::LayerCache& l : cache.self.layers) {
    nn::select_rows(l.keys, rows, cache.self.length);
    nn::select_rows(l.values, rows, cache.self.length);
  }
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

nn::PackedTokens pack_encoder_input(std::string_view model, const Tensor& ids, const Tensor& mask) {
  const std::string name(model);
  if (ids.rank() != 2)
    throw Error(name + " encode: ids must be [batch, tokens], got " + shape_to_string(ids.shape()));
  if (mask.shape() != ids.shape()) {
    throw Error(name + " encode: the attention mask " + shape_to_string(mask.shape()) +
                " does not match ids " + shape_to_string(ids.shape()));
  }
  return nn::pack_tokens(mask);
}

Seq2SeqCache new_decoder_cache(std::span<const nn::Seq2SeqDecoderLayer> decoder,
                               const Tensor& encoded, const Tensor& mask, int64_t capacity) {
  Seq2SeqCache cache;
  const int64_t batch = encoded.dim(0);
  // The cross keys and values of padding are never attended to: only the tokens are projected.
  const nn::PackedTokens tokens = nn::pack_tokens(mask);
  const Tensor packed = nn::gather_tokens(encoded, tokens);
  for (const nn::Seq2SeqDecoderLayer& l : decoder) {
    const Shape rows{batch, capacity, l.shape.heads, l.shape.head_dim};
    cache.self.layers.push_back({Tensor::zeros(DType::F32, rows), Tensor::zeros(DType::F32, rows)});
    cache.cross.layers.push_back(l.cross_cache(packed, tokens));
  }
  cache.cross.mask = mask;
  return cache;
}

}  // namespace ember::models
