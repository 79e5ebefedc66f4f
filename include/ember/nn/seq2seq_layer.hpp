#pragma once
// The layers of encoder-decoder transformers: an encoder layer (bidirectional self-attention,
// then an MLP) and a decoder layer that adds cross-attention over the encoder output between the
// two, each sublayer with a residual. Pre-norm (T5, mBART, M2M100) normalizes a sublayer's input;
// post-norm (BART, Marian) normalizes the residual sum instead. Cross-attention keys
// and values are computed once per input (CrossCache) and reused at every decode step.
// Attention scores take an optional additive bias: T5's relative position bias.
#include <cstdint>
#include <span>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/nn/decoder_layer.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

// T5's bucket of relative position `relative` (key position - query position): exact buckets
// for small distances, logarithmic ones up to max_distance, one bucket beyond. Bidirectional
// (encoder) buckets split by sign; causal (decoder) ones map every later key to bucket 0.
int64_t relative_position_bucket(int64_t relative, bool bidirectional, int64_t buckets,
                                 int64_t max_distance);

struct RelativePositionBias {
  Tensor table;  // [buckets, heads] F32
  bool bidirectional = true;
  int64_t max_distance = 128;
  // [heads, queries, keys] F32 for queries at positions first_query... and keys at 0...
  Tensor operator()(int64_t queries, int64_t keys, int64_t first_query) const;
};

// The position-wise MLP: down(act(up x)), or gated down(act(gate x) * (up x)) with `up` the
// fused [gate; up] projection (T5 v1.1's wi_0 and wi_1).
struct FeedForward {
  Linear up, down;
  bool gated = false;
  Activation activation = Activation::Relu;
  Tensor operator()(const Tensor& x) const;  // [..., hidden] F32
};

struct AttentionShape {
  int64_t heads = 1, head_dim = 1;
  float scale = 1.0f;  // applied to q k^T (T5: 1; BART: head_dim^-0.5)
};

// The tokens of a [B, S] padding mask (0 = padding), packed back to back: packed row i is row
// rows[i] of the flattened [B * S], and input b's tokens are packed rows [offsets[b],
// offsets[b + 1]). The encoder runs on these rows only, so padding costs no compute.
struct PackedTokens {
  std::vector<int64_t> rows;
  std::vector<int64_t> offsets;   // B + 1 entries, from 0
  int64_t batch = 0, length = 0;  // B and S
  bool contiguous = true;         // each input's tokens are adjacent (right or left padding)
};
PackedTokens pack_tokens(const Tensor& mask);
// The packed rows of x [B, S, ...]: [N, ...] F32.
Tensor gather_tokens(const Tensor& x, const PackedTokens& tokens);
// packed [N, C] (F32, unit stride along C) back to [B, S, C], zeros at padding.
Tensor scatter_tokens(const Tensor& packed, const PackedTokens& tokens);

struct Seq2SeqEncoderLayer {
  Norm attention_norm;
  Linear qkv;  // fused [q; k; v]
  Linear attention_out;
  Norm mlp_norm;
  FeedForward mlp;
  AttentionShape shape;
  bool post_norm = false;  // norm(x + f(x)) instead of x + f(norm(x))
  // x [N, hidden]: packed sequences, rows [offsets[s], offsets[s + 1]) are sequence s -> [N,
  // hidden]. bias [H, S, S] with S at least the longest sequence (each reads its top-left
  // block), or undefined.
  Tensor operator()(const Tensor& x, std::span<const int64_t> offsets, const Tensor& bias) const;
};

// Keys and values of the encoder output for every decoder layer, and its padding mask. One row
// serves a group of consecutive decoder rows (the beams of one input): decoder row r reads cross
// row r / (decoder rows / cross rows), so beams neither copy nor reorder it.
struct CrossCache {
  std::vector<LayerCache> layers;  // [B, S, heads, head_dim] each
  Tensor mask;                     // [B, S] I64
};

struct Seq2SeqDecoderLayer {
  Norm self_norm;
  Linear qkv;
  Linear self_out;
  Norm cross_norm;
  Linear cross_query;
  Linear cross_kv;  // fused [k; v], applied once to the encoder output
  Linear cross_out;
  Norm mlp_norm;
  FeedForward mlp;
  AttentionShape shape;
  bool post_norm = false;

  // This layer's cross keys and values [B, S, heads, head_dim] of the encoder output's tokens
  // `packed` [N, hidden] (zeros at padding, which the cross mask hides).
  LayerCache cross_cache(const Tensor& packed, const PackedTokens& tokens) const;
  // x [B, T, hidden]: T new tokens after `past` cached ones; writes their keys and values into
  // `self` and returns the layer's output. self_bias [H, T, past + T] or undefined. `cross` has
  // B or a divisor of B rows (see CrossCache).
  Tensor operator()(const Tensor& x, const Tensor& self_bias, LayerCache& self, int64_t past,
                    const LayerCache& cross, const Tensor& cross_mask) const;
};

// Row r of t [N, L, ...] (contiguous F32) becomes old row rows[r] (rows may repeat or drop rows):
// beam search keeps, duplicates and drops beams, and expands each input to its beams. Only the
// first `used` entries of dim 1 move (a KV cache row past its length is unwritten capacity), and
// when the row count stays, only the rows that change.
void select_rows(Tensor& t, std::span<const int64_t> rows, int64_t used);

}  // namespace ember::nn
