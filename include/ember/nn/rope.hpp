#pragma once
// Rotary position embeddings with the scaling variants a config.json can declare: default,
// linear, dynamic (NTK), llama3 and yarn, computed as the reference computes them (F32 inverse
// frequencies; dynamic recomputes them from the longest position of each forward call).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/core/ops.hpp"
#include "ember/core/tensor.hpp"

namespace ember::nn {

struct RopeParameters {
  std::string type = "default";  // default, linear, dynamic, llama3, yarn
  double theta = 10000.0;
  int64_t rotary_dim = 0;      // dims of each head that rotate (head_dim * partial_rotary_factor)
  int64_t max_positions = 0;   // max_position_embeddings
  double factor = 1.0;         // linear, dynamic, llama3, yarn
  double low_freq_factor = 1;  // llama3
  double high_freq_factor = 4;
  int64_t original_max_positions = 0;  // llama3, yarn
  double attention_factor = 0;         // yarn: 0 = derived from factor and mscale
  double mscale = 0, mscale_all_dim = 0;
  double beta_fast = 32, beta_slow = 1;
  bool truncate = true;
};

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(RopeParameters params, ops::RopeLayout layout);

  // Prepares one forward pass over `positions` (B * T or T values): the dynamic type picks its
  // frequencies from the largest position, keeping state across calls as the reference does,
  // and the cos/sin table that every layer's apply() then reads is computed once.
  void prepare(std::span<const int64_t> positions);
  // Rotates x [B, T, H, D] in place at the prepared positions.
  void apply(Tensor& x) const;

  // Whether rotate_by() moves a rotated vector to another position exactly: every type but
  // dynamic, whose frequencies depend on the sequence length.
  bool shifts_exactly() const { return params_.type != "dynamic"; }
  // Rotates x [B, T, H, D], already rotated at some positions, by `delta` positions more, so that
  // it equals (up to F32 rounding) x rotated at those positions + delta. Does not touch the
  // table prepare() made. Throws ember::Error unless shifts_exactly().
  void rotate_by(Tensor& x, int64_t delta) const;

  const std::vector<float>& inv_freq() const { return inv_freq_; }
  float attention_scale() const { return attention_scale_; }
  const RopeParameters& parameters() const { return params_; }

 private:
  RopeParameters params_;
  ops::RopeLayout layout_ = ops::RopeLayout::HalfSplit;
  std::vector<float> inv_freq_, original_inv_freq_;
  float attention_scale_ = 1.0f;
  int64_t cached_length_ = 0;  // dynamic: the sequence length inv_freq_ was computed for
  ops::RopeTable table_;       // of the last prepare()
};

// inv_freq and the cos/sin scale for `params` at sequence length seq_len (dynamic only).
std::vector<float> rope_inverse_frequencies(const RopeParameters& params, int64_t seq_len,
                                            float* attention_scale);

}  // namespace ember::nn
