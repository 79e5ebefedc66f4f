#pragma once
// Named weights of one checkpoint, whatever its file format, with the checks a model loader needs:
// every lookup names the tensor, the file and the expected shape when something is wrong.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/core/ops.hpp"
#include "ember/core/tensor.hpp"
#include "ember/formats/gguf.hpp"

namespace ember::nn {

// A file format's view of a checkpoint: tensor names and zero-copy tensors.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const std::vector<std::string>& names() const = 0;
  virtual bool contains(std::string_view name) const = 0;
  virtual Tensor tensor(std::string_view name) const = 0;
  virtual std::string description() const = 0;  // the file, for messages
  // The rotary layout of the query and key rows: Hugging Face's half-split pairs, or GGML's
  // interleaved ones where llama.cpp's converter permuted the rows (llama-architecture GGUF).
  virtual ops::RopeLayout rope_layout() const { return ops::RopeLayout::HalfSplit; }
};

// A GGUF file's tensors under the Hugging Face names the model files ask for, by
// general.architecture: llama and qwen2 (token_embd -> model.embed_tokens, blk.N.attn_q ->
// model.layers.N.self_attn.q_proj, ..., output_norm -> model.norm, output -> lm_head) and gpt2
// (token_embd -> wte, blk.N.attn_qkv -> h.N.attn.c_attn, ...; its four linear weights are
// presented transposed, in the Conv1D layout GPT-2 checkpoints use, which needs a non-block
// dtype). Tensors with no Hugging Face counterpart keep their GGUF names. Throws ember::Error
// for another architecture.
std::shared_ptr<const WeightSource> gguf_weight_source(GgufFile file);
// The other way: the GGUF name of the Hugging Face tensor `name` in a model of GGUF architecture
// `arch` (what llama.cpp's converter names it), or nullopt when no rule covers it.
std::optional<std::string> gguf_tensor_name(std::string_view arch, std::string_view name);

class Weights {
 public:
  // A model folder (model.safetensors or model.safetensors.index.json), or one weights file
  // (a .gguf file through gguf_weight_source).
  static Weights open(const std::filesystem::path& path);
  explicit Weights(std::shared_ptr<const WeightSource> source, std::string prefix = "");

  // The same checkpoint with `prefix` put before every name (e.g. "bert." for the encoder of a
  // BertForSequenceClassification checkpoint).
  Weights with_prefix(std::string_view prefix) const;
  // The first of `prefixes` under which `probe` exists, or nullopt.
  std::optional<std::string> find_prefix(std::string_view probe,
                                         const std::vector<std::string>& prefixes) const;

  bool contains(std::string_view name) const;
  // The float tensor `name` with exactly `shape`. Throws ember::Error naming the tensor and the
  // checkpoint when it is missing, has another shape, or is not a float (or quantized) dtype.
  Tensor get(std::string_view name, const Shape& shape) const;
  // Like get, or an undefined tensor when the checkpoint lacks it.
  Tensor get_optional(std::string_view name, const Shape& shape) const;
  // get, converted to contiguous F32 (for small tensors the kernels read as F32: norms, biases).
  Tensor get_f32(std::string_view name, const Shape& shape) const;
  Tensor get_optional_f32(std::string_view name, const Shape& shape) const;

  const WeightSource& source() const { return *source_; }

 private:
  std::shared_ptr<const WeightSource> source_;
  std::string prefix_;
};

}  // namespace ember::nn
