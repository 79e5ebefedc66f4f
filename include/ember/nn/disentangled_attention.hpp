#pragma once
// DeBERTa's disentangled attention: besides content-to-content scores q.k, each query also scores
// the embedding of its relative distance to the key (content-to-position, c2p) and each key scores
// the embedding of its distance to the query (position-to-content, p2c). The extra terms are an
// additive bias per sequence and head, so the attention itself stays ops::attention.
#include <cstdint>
#include <span>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::nn {

// transformers' make_log_bucket_position: distances under buckets / 2 stay exact, longer ones
// share logarithmic buckets up to max_position. Computed in F32 as the reference does, so that
// ceil lands on the same bucket.
int64_t log_bucket_position(int64_t relative, int64_t buckets, int64_t max_position);

struct RelativeSpan {
  int64_t span = 1;          // the relative embedding table has 2 * span rows
  int64_t buckets = 0;       // position_buckets; 0: distances are not bucketed
  int64_t max_position = 0;  // max_relative_positions

  // The table row of query position minus key position `relative`.
  int64_t row(int64_t relative) const;
  // row(d) for d = -(length - 1) ... length - 1.
  std::vector<int64_t> rows(int64_t length) const;
};

// bias [H, L, L] (contiguous F32) = scale * (c2p + p2c) for one sequence of L tokens, with
// r = rows[i - j + L - 1]:
//   c2p[h, i, j] = q[i, h] . pos_key[r, h]    (skipped when pos_key is undefined)
//   p2c[h, i, j] = k[j, h] . pos_query[r, h]  (skipped when pos_query is undefined)
// q and k are [L, H, D] F32 views with unit stride in D; pos_key and pos_query are the projected
// relative embeddings [2 * span, H * D], contiguous F32.
void disentangled_bias_into(const Tensor& q, const Tensor& k, const Tensor& pos_key,
                            const Tensor& pos_query, std::span<const int64_t> rows, float scale,
                            Tensor& bias);

}  // namespace ember::nn
