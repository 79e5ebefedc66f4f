#pragma once
// The reusable layers models are built from. Each holds its weights (zero-copy views into the
// checkpoint, in the checkpoint's dtype for matrices; F32 for small vectors) and applies one op.
#include <string>
#include <string_view>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/nn/weights.hpp"

namespace ember::nn {

enum class Activation : uint8_t { Gelu, GeluTanh, Relu, Silu, Tanh, Identity };
// Hugging Face's names: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh,
// linear. Throws ember::Error naming an unknown one and `what` (the config field).
Activation parse_activation(std::string_view name, std::string_view what);
// y = act(x), in place on a contiguous F32 tensor.
void activate_(Tensor& x, Activation act);
// act(gate) * up for the rows of a fused [gate | up] projection [..., 2I], contiguous F32 (the
// gated MLPs: SwiGLU, T5 v1.1's gated GELU), in place: returns the [..., I] result, a contiguous
// view of the first half of gate_up's storage (its contents are overwritten), so the MLP needs
// no second buffer.
Tensor gated_activation_(Tensor& gate_up, Activation act);

struct Linear {
  Tensor weight;  // [out, in], any dtype linear dispatches on
  Tensor bias;    // [out] F32, or undefined
  // F32 weights only: ops::pack_linear_weight(weight), made at load for the few-row (batch-1)
  // kernel; as large again as the weight.
  Tensor packed;
  // Set by fuse for weights other than F32: each part runs its own dtype's kernel into its
  // columns of the output, and weight, bias and packed stay undefined. Concatenating them would
  // copy the mapped weights into memory of their own, and quantization mixtures (llama.cpp's
  // Q4_K_M stores attn_v in more bits than attn_q) would have to widen to F32, reading 4-8x the
  // bytes per decoded token.
  std::vector<Linear> parts;

  // Hugging Face's nn.Linear layout: `name`.weight [out, in], `name`.bias [out].
  static Linear load(const Weights& w, std::string_view name, int64_t in, int64_t out,
                     bool with_bias);
  // GPT-2's Conv1D layout ([in, out]), transposed once here.
  static Linear load_transposed(const Weights& w, std::string_view name, int64_t in, int64_t out);
  // One Linear computing the given ones side by side (fused q/k/v): F32 weights are concatenated
  // once (and packed), others kept as `parts`.
  static Linear fuse(const std::vector<Linear>& parts);

  int64_t in_features() const;
  int64_t out_features() const;
  Tensor operator()(const Tensor& x) const;
  // Into a caller-owned contiguous F32 buffer of rows * out_features() elements (ops::linear_into).
  void into(const Tensor& x, Tensor& out) const;
};

struct Embedding {
  Tensor weight;  // [V, D]
  static Embedding load(const Weights& w, std::string_view name, int64_t vocab, int64_t dim);
  // [ids..., D] in F32.
  Tensor operator()(const Tensor& ids) const;
  // The same rows into a caller-owned contiguous F32 buffer of ids.numel() * D elements.
  void into(const Tensor& ids, Tensor& out) const;
};

struct LayerNorm {
  Tensor weight, bias;  // [D] F32; bias may be undefined
  float eps = 1e-5f;
  static LayerNorm load(const Weights& w, std::string_view name, int64_t dim, double eps,
                        bool with_bias = true);
  Tensor operator()(const Tensor& x) const;
};

struct RmsNorm {
  Tensor weight;  // [D] F32
  float eps = 1e-6f;
  static RmsNorm load(const Weights& w, std::string_view name, int64_t dim, double eps);
  Tensor operator()(const Tensor& x) const;
};

}  // namespace ember::nn
