#include "ember/nn/layers.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"

namespace ember::nn {

Activation parse_activation(std::string_view name, std::string_view what) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return Activation::GeluTanh;
  if (name == "relu") return Activation::Relu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "tanh") return Activation::Tanh;
  if (name == "linear" || name == "identity") return Activation::Identity;
  throw Error(std::string(what) + ": unknown activation '" + std::string(name) + "'");
}

namespace {

// The activation's unary kernel; none for the identity.
std::optional<kernels::UnaryOp> unary_op(Activation act) {
  switch (act) {
    case Activation::Gelu:
      return kernels::UnaryOp::Gelu;
    case Activation::GeluTanh:
      return kernels::UnaryOp::GeluTanh;
    case Activation::Relu:
      return kernels::UnaryOp::Relu;
    case Activation::Silu:
      return kernels::UnaryOp::Silu;
    case Activation::Tanh:
      return kernels::UnaryOp::Tanh;
    case Activation::Identity:
      break;
  }
  return std::nullopt;
}

}  // namespace

void activate_(Tensor& x, Activation act) {
  const std::optional<kernels::UnaryOp> op = unary_op(act);
  if (!op) return;
  if (x.dtype() != DType::F32 || !x.is_contiguous()) {
    throw Error("activate_: expected a contiguous F32 tensor");
  }
  float* p = x.mutable_data_as<float>();
  parallel_for(0, x.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
    kernels::unary_f32(*op, p + lo, p + lo, static_cast<size_t>(hi - lo));
  });
}

Tensor gated_activation_(Tensor& gate_up, Activation act) {
  if (gate_up.dtype() != DType::F32 || !gate_up.is_contiguous() || gate_up.rank() == 0 ||
      gate_up.dim(-1) % 2 != 0) {
    throw Error("gated activation: expected a contiguous F32 [..., 2I] tensor, got " +
                std::string(dtype_name(gate_up.dtype())) + " " + shape_to_string(gate_up.shape()));
  }
  const int64_t inner = gate_up.dim(-1) / 2;
  const int64_t rows = gate_up.numel() / std::max<int64_t>(1, gate_up.dim(-1));
  float* gu = gate_up.mutable_data_as<float>();
  const std::optional<kernels::UnaryOp> op = unary_op(act);
  // Each row's gate half becomes act(gate) * up, the rows in parallel...
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) {
                   float* gate = gu + r * 2 * inner;
                   if (op) kernels::unary_f32(*op, gate, gate, static_cast<size_t>(inner));
                   kernels::binary_f32(kernels::BinaryOp::Mul, gate, gate + inner, gate,
                                       static_cast<size_t>(inner));
                 }
               });
  // ...then moves down to row r * I, in order: row r's destination ends before its own source
  // begins and overlaps only earlier rows' sources, already moved.
  for (int64_t r = 1; r < rows; ++r)
    std::memmove(gu + r * inner, gu + r * 2 * inner, sizeof(float) * static_cast<size_t>(inner));
  Shape shape = gate_up.shape();
  shape.back() = inner;
  return gate_up.view({-1}).narrow(0, 0, rows * inner).view(shape);
}

Linear Linear::load(const Weights& w, std::string_view name, int64_t in, int64_t out,
                    bool with_bias) {
  const std::string n(name);
  Linear l;
  l.weight = w.get(n + ".weight", {out, in});
  if (with_bias) l.bias = w.get_f32(n + ".bias", {out});
  l.packed = ops::pack_linear_weight(l.weight);
  return l;
}

Linear Linear::load_transposed(const Weights& w, std::string_view name, int64_t in, int64_t out) {
  const std::string n(name);
  Linear l;
  l.weight = w.get(n + ".weight", {in, out}).transpose(0, 1).contiguous();
  l.bias = w.get_f32(n + ".bias", {out});
  l.packed = ops::pack_linear_weight(l.weight);
  return l;
}

Linear Linear::fuse(const std::vector<Linear>& parts) {
  if (parts.empty()) throw Error("Linear::fuse: no parts");
  const bool with_bias = parts[0].bias.defined();
  bool mixed = false;
  for (const Linear& p : parts) {
    if (!p.parts.empty()) throw Error("Linear::fuse: a part is itself fused");
    if (p.in_features() != parts[0].in_features() || p.bias.defined() != with_bias) {
      throw Error("Linear::fuse: parts differ in input size or bias");
    }
    mixed = mixed || p.weight.dtype() != parts[0].weight.dtype();
  }
  Linear fused;
  if (mixed || parts[0].weight.dtype() != DType::F32) {
    fused.parts = parts;  // views of the mapped weights: no copy
    return fused;
  }
  std::vector<Tensor> weights, biases;
  for (const Linear& p : parts) {
    weights.push_back(p.weight);
    if (with_bias) biases.push_back(p.bias);
  }
  fused.weight = ops::concat(weights, 0);
  // The copy replaces the parts, whose mapped pages (if any) concat faulted in again.
  for (const Tensor& w : weights) w.storage()->release_pages();
  if (with_bias) fused.bias = ops::concat(biases, 0);
  fused.packed = ops::pack_linear_weight(fused.weight);
  return fused;
}

int64_t Linear::in_features() const {
  return parts.empty() ? weight.dim(1) : parts[0].in_features();
}

int64_t Linear::out_features() const {
  if (parts.empty()) return weight.dim(0);
  int64_t n = 0;
  for (const Linear& p : parts) n += p.out_features();
  return n;
}

Tensor Linear::operator()(const Tensor& x) const {
  if (parts.empty()) return ops::linear(x, weight, bias, packed);
  Shape shape = x.shape();
  if (shape.empty()) throw Error("linear: input must have at least one dimension");
  shape.back() = out_features();
  Tensor out = Tensor::empty(DType::F32, shape);
  into(x, out);
  return out;
}

void Linear::into(const Tensor& x, Tensor& out) const {
  if (parts.empty()) {
    ops::linear_into(x, weight, bias, out, packed);
    return;
  }
  const int64_t n = out_features();
  if (out.dtype() != DType::F32 || !out.is_contiguous() || out.numel() % n != 0) {
    throw Error("linear_into: output must be a contiguous F32 tensor of rows * " +
                std::to_string(n) + " elements");
  }
  const int64_t rows = out.numel() / n;
  const Tensor table = out.view({rows, n});
  int64_t column = 0;
  for (const Linear& p : parts) {
    const int64_t width = p.out_features();
    // Each part writes its columns of the table in place (linear_into takes strided rows).
    Tensor slice = table.narrow(1, column, width);
    p.into(x, slice);
    column += width;
  }
}

Embedding Embedding::load(const Weights& w, std::string_view name, int64_t vocab, int64_t dim) {
  return Embedding{w.get(std::string(name) + ".weight", {vocab, dim})};
}

Tensor Embedding::operator()(const Tensor& ids) const {
  return to_f32(ops::embedding(weight, ids));
}

void Embedding::into(const Tensor& ids, Tensor& out) const {
  ops::embedding_into(weight, ids, out);
}

LayerNorm LayerNorm::load(const Weights& w, std::string_view name, int64_t dim, double eps,
                          bool with_bias) {
  const std::string n(name);
  LayerNorm l;
  l.weight = w.get_f32(n + ".weight", {dim});
  if (with_bias) l.bias = w.get_f32(n + ".bias", {dim});
  l.eps = static_cast<float>(eps);
  return l;
}

Tensor LayerNorm::operator()(const Tensor& x) const {
  return ops::layer_norm(x, weight, bias, eps);
}

RmsNorm RmsNorm::load(const Weights& w, std::string_view name, int64_t dim, double eps) {
  return RmsNorm{w.get_f32(std::string(name) + ".weight", {dim}), static_cast<float>(eps)};
}

Tensor RmsNorm::operator()(const Tensor& x) const {
  return ops::rms_norm(x, weight, eps);
}

}  // namespace ember::nn
