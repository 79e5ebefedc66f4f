#include "ember/nn/weights.hpp"

#include <algorithm>
#include <unordered_map>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/formats/pytorch.hpp"
#include "ember/formats/safetensors.hpp"

namespace ember::nn {
namespace {

// Any checkpoint type with the ShardedSafeTensors interface.
template <typename Checkpoint>
class CheckpointSource final : public WeightSource {
 public:
  explicit CheckpointSource(Checkpoint file) : file_(std::move(file)) {}
  const std::vector<std::string>& names() const override { return file_.names(); }
  bool contains(std::string_view name) const override { return file_.contains(name); }
  Tensor tensor(std::string_view name) const override { return file_.tensor(name); }
  std::string description() const override { return file_.path().string(); }

 private:
  Checkpoint file_;
};

struct GgufNameRule {
  std::string_view gguf;  // the name without its ".weight" / ".bias" suffix, "blk.N." removed
  std::string_view hf;
  bool conv1d = false;  // presented transposed ([in, out]), as GPT-2's Conv1D stores it
};

struct GgufArchitecture {
  std::string_view name;
  std::string_view prefix;        // before every Hugging Face name
  std::string_view layer_prefix;  // "layers." or "h."
  ops::RopeLayout rope_layout;
  std::vector<GgufNameRule> globals;
  std::vector<GgufNameRule> layer;
};

// llama.cpp's tensor names (gguf-py's tensor_mapping) and the Hugging Face names of the same
// weights. llama.cpp's converter permutes llama's q/k rows for GGML's interleaved rotary pairs
// and leaves qwen2's (GGML's NEOX mode, the half-split pairs) as they are.
const std::vector<GgufArchitecture>& gguf_architectures() {
  static const std::vector<GgufNameRule> llama_globals = {{"token_embd", "embed_tokens"},
                                                          {"output_norm", "norm"}};
  static const std::vector<GgufNameRule> llama_layer = {
      {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  static const std::vector<GgufArchitecture> archs = {
      {"llama", "model.", "layers.", ops::RopeLayout::Interleaved, llama_globals, llama_layer},
      {"qwen2", "model.", "layers.", ops::RopeLayout::HalfSplit, llama_globals, llama_layer},
      {"gpt2",
       "",
       "h.",
       ops::RopeLayout::HalfSplit,
       {{"token_embd", "wte"}, {"position_embd", "wpe"}, {"output_norm", "ln_f"}},
       {{"attn_norm", "ln_1"},
        {"attn_qkv", "attn.c_attn", true},
        {"attn_output", "attn.c_proj", true},
        {"ffn_norm", "ln_2"},
        {"ffn_up", "mlp.c_fc", true},
        {"ffn_down", "mlp.c_proj", true}}},
  };
  return archs;
}

struct GgufName {
  std::string hf;
  bool transposed = false;
};

// The Hugging Face name of one GGUF tensor name; the name itself when no rule matches.
GgufName hf_name(const GgufArchitecture& arch, std::string_view name) {
  std::string_view suffix;
  for (std::string_view s : {".weight", ".bias"}) {
    if (name.ends_with(s)) suffix = s;
  }
  if (suffix.empty()) return {std::string(name)};
  std::string_view stem = name.substr(0, name.size() - suffix.size());
  const bool weight = suffix == ".weight";
  if (stem == "output") return {"lm_head" + std::string(suffix)};
  for (const GgufNameRule& r : arch.globals) {
    if (stem == r.gguf) return {std::string(arch.prefix) + std::string(r.hf) + std::string(suffix)};
  }
  if (!stem.starts_with("blk.")) return {std::string(name)};
  stem.remove_prefix(4);
  const size_t dot = stem.find('.');
  const std::string_view layer = stem.substr(0, dot);
  if (dot == std::string_view::npos || layer.empty() ||
      !std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return {std::string(name)};
  }
  stem.remove_prefix(dot + 1);
  for (const GgufNameRule& r : arch.layer) {
    if (stem == r.gguf) {
      return {std::string(arch.prefix) + std::string(arch.layer_prefix) + std::string(layer) + "." +
                  std::string(r.hf) + std::string(suffix),
              r.conv1d && weight};
    }
  }
  return {std::string(name)};
}

class GgufSource final : public WeightSource {
 public:
  explicit GgufSource(GgufFile file) : file_(std::move(file)) {
    const GgufValue* arch_value = file_.find("general.architecture");
    const std::string* arch_name = arch_value ? arch_value->as_string() : nullptr;
    if (arch_name == nullptr) {
      throw Error(description() + ": no general.architecture string in the metadata");
    }
    const auto& archs = gguf_architectures();
    const auto arch = std::find_if(archs.begin(), archs.end(),
                                   [&](const GgufArchitecture& a) { return a.name == *arch_name; });
    if (arch == archs.end()) {
      throw Error(description() + ": GGUF architecture " + quote_name(*arch_name) +
                  " is not supported (llama, qwen2, gpt2)");
    }
    layout_ = arch->rope_layout;
    for (const GgufTensorInfo& t : file_.tensors()) {
      GgufName n = hf_name(*arch, t.name);
      if (!index_.emplace(n.hf, Entry{t.name, n.transposed}).second) {
        throw Error(description() + ": two tensors map to " + quote_name(n.hf));
      }
      names_.push_back(std::move(n.hf));
    }
  }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(std::string_view name) const override {
    return index_.count(std::string(name)) != 0;
  }
  Tensor tensor(std::string_view name) const override {
    const auto it = index_.find(std::string(name));
    if (it == index_.end())
      throw Error("missing weight " + quote_name(name) + " in " + description());
    Tensor t = file_.tensor(it->second.gguf);
    if (!it->second.transposed) return t;
    if (is_quantized(t.dtype()) || t.rank() != 2) {
      throw Error("weight " + quote_name(name) + " in " + description() + " is " +
                  std::string(dtype_name(t.dtype())) +
                  "; GPT-2's transposed linear weights need a 2-D non-block dtype");
    }
    return t.transpose(0, 1);
  }
  std::string description() const override {
    return file_.mapped_file() ? file_.mapped_file()->path().string() : std::string("GGUF bytes");
  }
  ops::RopeLayout rope_layout() const override { return layout_; }

 private:
  struct Entry {
    std::string gguf;
    bool transposed;
  };
  GgufFile file_;
  ops::RopeLayout layout_ = ops::RopeLayout::HalfSplit;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Entry> index_;
};

bool is_pytorch_path(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  const std::string ext = path.extension().string();
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || name.ends_with(".bin.index.json");
}

}  // namespace

std::optional<std::string> gguf_tensor_name(std::string_view arch_name, std::string_view name) {
  const auto& archs = gguf_architectures();
  const auto arch = std::find_if(archs.begin(), archs.end(),
                                 [&](const GgufArchitecture& a) { return a.name == arch_name; });
  if (arch == archs.end()) return std::nullopt;
  std::string_view suffix;
  for (std::string_view s : {".weight", ".bias"}) {
    if (name.ends_with(s)) suffix = s;
  }
  if (suffix.empty()) return std::nullopt;
  std::string_view stem = name.substr(0, name.size() - suffix.size());
  if (stem == "lm_head") return "output" + std::string(suffix);
  if (!stem.starts_with(arch->prefix)) return std::nullopt;
  stem.remove_prefix(arch->prefix.size());
  for (const GgufNameRule& r : arch->globals) {
    if (stem == r.hf) return std::string(r.gguf) + std::string(suffix);
  }
  if (!stem.starts_with(arch->layer_prefix)) return std::nullopt;
  stem.remove_prefix(arch->layer_prefix.size());
  const size_t dot = stem.find('.');
  const std::string_view layer = stem.substr(0, dot);
  if (dot == std::string_view::npos || layer.empty() ||
      !std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  stem.remove_prefix(dot + 1);
  for (const GgufNameRule& r : arch->layer) {
    if (stem == r.hf) {
      return "blk." + std::string(layer) + "." + std::string(r.gguf) + std::string(suffix);
    }
  }
  return std::nullopt;
}

std::shared_ptr<const WeightSource> gguf_weight_source(GgufFile file) {
  return std::make_shared<GgufSource>(std::move(file));
}

Weights Weights::open(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec) && looks_like_gguf(path)) {
    return Weights(gguf_weight_source(GgufFile::open(path)));
  }
  bool pytorch = is_pytorch_path(path);
  if (std::filesystem::is_directory(path, ec)) {
    // safetensors first, as transformers prefers it when a folder has both.
    pytorch = !std::filesystem::exists(path / "model.safetensors.index.json", ec) &&
              !std::filesystem::exists(path / "model.safetensors", ec) &&
              (std::filesystem::exists(path / "pytorch_model.bin.index.json", ec) ||
               std::filesystem::exists(path / "pytorch_model.bin", ec));
  }
  if (pytorch) {
    return Weights(std::make_shared<CheckpointSource<ShardedPyTorchCheckpoint>>(
        ShardedPyTorchCheckpoint::open(path)));
  }
  return Weights(
      std::make_shared<CheckpointSource<ShardedSafeTensors>>(ShardedSafeTensors::open(path)));
}

Weights::Weights(std::shared_ptr<const WeightSource> source, std::string prefix)
    : source_(std::move(source)), prefix_(std::move(prefix)) {}

Weights Weights::with_prefix(std::string_view prefix) const {
  return Weights(source_, prefix_ + std::string(prefix));
}

std::optional<std::string> Weights::find_prefix(std::string_view probe,
                                                const std::vector<std::string>& prefixes) const {
  for (const std::string& p : prefixes) {
    if (source_->contains(prefix_ + p + std::string(probe))) return p;
  }
  return std::nullopt;
}

bool Weights::contains(std::string_view name) const {
  return source_->contains(prefix_ + std::string(name));
}

Tensor Weights::get(std::string_view name, const Shape& shape) const {
  const std::string full = prefix_ + std::string(name);
  if (!source_->contains(full)) {
    throw Error("missing weight '" + full + "' (expected shape " + shape_to_string(shape) +
                ") in " + source_->description());
  }
  Tensor t = source_->tensor(full);
  if (t.shape() != shape) {
    throw Error("weight '" + full + "' in " + source_->description() + " has shape " +
                shape_to_string(t.shape()) + ", expected " + shape_to_string(shape));
  }
  if (!is_float(t.dtype()) && !is_quantized(t.dtype())) {
    throw Error("weight '" + full + "' in " + source_->description() + " has dtype " +
                std::string(dtype_name(t.dtype())) + ", expected a float type");
  }
  if (t.dtype() == DType::F8_E4M3 || t.dtype() == DType::F8_E5M2 || t.dtype() == DType::F64) {
    throw Error("weight '" + full + "' in " + source_->description() + ": dtype " +
                std::string(dtype_name(t.dtype())) + " is not supported for model weights");
  }
  return t;
}

Tensor Weights::get_optional(std::string_view name, const Shape& shape) const {
  return contains(name) ? get(name, shape) : Tensor();
}

Tensor Weights::get_f32(std::string_view name, const Shape& shape) const {
  return to_f32(get(name, shape));
}

Tensor Weights::get_optional_f32(std::string_view name, const Shape& shape) const {
  return contains(name) ? get_f32(name, shape) : Tensor();
}

}  // namespace ember::nn
