#pragma once
// The post-norm transformer encoder layer of BERT and its descendants (RoBERTa, XLM-R,
// DistilBERT, ELECTRA): self-attention, residual, LayerNorm, MLP, residual, LayerNorm. Runs on
// packed sequences (no padding): rows [offsets[s], offsets[s + 1]) are sequence s.
#include <span>

#include "ember/core/tensor.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

struct PostNormEncoderLayer {
  Linear qkv;  // query, key and value projections fused: [3 * hidden, hidden]
  Linear attention_out;
  LayerNorm attention_norm;
  Linear mlp_up;
  Linear mlp_down;
  LayerNorm output_norm;
  Activation activation = Activation::Gelu;
  int64_t heads = 1;
  int64_t head_dim = 1;

  // x: [N, hidden] F32 -> [N, hidden].
  Tensor operator()(const Tensor& x, std::span<const int64_t> offsets) const;
  // The rest of the layer after attention, for models whose attention differs (DeBERTa's
  // disentangled one): context [N, hidden] (the heads' outputs) and the layer's input x.
  Tensor after_attention(const Tensor& context, const Tensor& x) const;
};

// a += b for contiguous F32 tensors of equal size.
void add_(Tensor& a, const Tensor& b);

}  // namespace ember::nn
