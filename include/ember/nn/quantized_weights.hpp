#pragma once
// A checkpoint's matrices quantized once, at load, to a block type (ember translate --quantize
// Q8_0): the way to run a float checkpoint (safetensors) with the quantized kernels, as
// CTranslate2's int8 compute type does, without writing a converted copy. The model code does not
// change: a quantized weight is a tensor dtype and linear dispatches on it.
#include <string_view>

#include "ember/core/dtype.hpp"
#include "ember/nn/weights.hpp"

namespace ember::nn {

// `weights`' checkpoint with every 2-D F32/F16/BF16 tensor named `*.weight` whose rows are whole
// blocks of `dtype` quantized to it (the linear layers, the token embeddings and an untied LM
// head), and everything else as it was: vectors, position tables (names containing "position" or
// "relative_attention_bias", which are looked up, not multiplied) and matrices of another width.
// `dtype` must be a weight block type with a quantizer (Q4_0 ... Q6_K, Q8_0), else ember::Error.
// Quantizing happens here, in the thread pool; the result holds the quantized copies in memory.
Weights quantize_matrices(const Weights& weights, DType dtype);

// The weight block type named `name`, in any case ("q8_0", "Q4_K"); ember::Error naming it when it
// is not one quantize_matrices takes.
DType weight_block_type(std::string_view name);

}  // namespace ember::nn
