#include "ember/formats/gguf_quantize.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <span>
#include <tuple>
#include <unordered_map>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/dtype_traits.hpp"

namespace ember {
namespace {

// ggml's GGML_QNT_VERSION: the block layouts Ember writes.
constexpr uint32_t kQuantizationVersion = 2;

// llama.cpp's llama_ftype numbers of the mixtures that have rules of their own.
enum FileType : uint32_t {
  kQ2K = 10,
  kQ3KS = 11,
  kQ3KM = 12,
  kQ3KL = 13,
  kQ4KS = 14,
  kQ4KM = 15,
  kQ5KS = 16,
  kQ5KM = 17,
};

constexpr std::array<QuantizeTarget, 20> kTargets = {{
    {"F32", 0, DType::F32, true},
    {"F16", 1, DType::F16, true},
    {"BF16", 32, DType::BF16, true},
    {"Q4_0", 2, DType::Q4_0, true},
    {"Q4_1", 3, DType::Q4_1, true},
    {"Q5_0", 8, DType::Q5_0, true},
    {"Q5_1", 9, DType::Q5_1, true},
    {"Q8_0", 7, DType::Q8_0, true},
    {"Q2_K", kQ2K, DType::Q2_K, true},
    {"Q3_K_S", kQ3KS, DType::Q3_K, true},
    {"Q3_K_M", kQ3KM, DType::Q3_K, true},
    {"Q3_K_L", kQ3KL, DType::Q3_K, true},
    {"Q4_K_S", kQ4KS, DType::Q4_K, true},
    {"Q4_K_M", kQ4KM, DType::Q4_K, true},
    {"Q5_K_S", kQ5KS, DType::Q5_K, true},
    {"Q5_K_M", kQ5KM, DType::Q5_K, true},
    {"Q6_K", 18, DType::Q6_K, true},
    // Bare K-quant tensor types: every quantizable tensor gets the type (llama.cpp's --pure),
    // in a file labelled with the matching _S file type.
    {"Q3_K", kQ3KS, DType::Q3_K, false},
    {"Q4_K", kQ4KS, DType::Q4_K, false},
    {"Q5_K", kQ5KS, DType::Q5_K, false},
}};

// The roles llama.cpp's rules tell apart, found from the tensor's name.
enum class Role { TokenEmbd, Output, AttnQ, AttnK, AttnV, AttnOutput, FfnDown, Other };

Role role_of(const std::string& name) {
  if (name == "output.weight") return Role::Output;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Role::TokenEmbd;
  // A fused QKV or MLA's kv_b projection holds V, and is treated as attn_v.
  for (const char* v : {"attn_qkv.weight", "attn_kv_b.weight", "attn_v.weight"}) {
    if (name.find(v) != std::string::npos) return Role::AttnV;
  }
  if (name.find("attn_k.weight") != std::string::npos) return Role::AttnK;
  if (name.find("attn_q.weight") != std::string::npos) return Role::AttnQ;
  if (name.find("attn_output.weight") != std::string::npos) return Role::AttnOutput;
  if (name.find("ffn_down") != std::string::npos) return Role::FfnDown;
  return Role::Other;
}

// Tensors llama.cpp leaves in their type although they are 2-D weights: small, or read in ways
// that need full precision (routing, positions, convolutions, RWKV's mixing vectors, vision and
// audio towers' embeddings).
constexpr const char* kNeverQuantized[] = {
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
};

// ggml_n_dims: outer extents of 1 (the last of ne[]) do not count.
int ggml_dims(const Shape& shape) {
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] != 1) return static_cast<int>(shape.size() - i);
  }
  return 1;
}

bool allows_quantization(const GgufTensorInfo& info) {
  if (ggml_dims(info.shape) < 2 || !info.name.ends_with("weight")) return false;
  if (info.name == "position_embd.weight" || info.name == "token_types.weight") return false;
  return std::none_of(std::begin(kNeverQuantized), std::end(kNeverQuantized),
                      [&](const char* part) { return info.name.find(part) != std::string::npos; });
}

// "blk.N." -> N; -1 for tensors outside the blocks.
int block_of(const std::string& name) {
  if (!name.starts_with("blk.")) return -1;
  int n = 0;
  size_t i = 4;
  for (; i < name.size() && i < 12 && name[i] >= '0' && name[i] <= '9'; ++i)
    n = n * 10 + (name[i] - '0');
  return i > 4 ? n : -1;
}

// What the rules read from the model.
struct Model {
  std::string arch;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_expert = 0;
  bool tied_output = true;  // no output.weight: token_embd is also the output matrix
  int n_attn_v = 0;
  int n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
  bool falcon() const { return arch == "falcon"; }
  // llama.cpp's LLM_TYPE_70B: 80 llama layers with grouped-query attention.
  bool llama_70b() const { return arch == "llama" && n_layer == 80 && n_head != n_head_kv; }
};

const GgufValue* find_key(std::span<const GgufKeyValue> metadata, std::string_view key) {
  const auto it = std::find_if(metadata.begin(), metadata.end(),
                               [&](const GgufKeyValue& kv) { return kv.key == key; });
  return it == metadata.end() ? nullptr : &it->value;
}

int metadata_int(std::span<const GgufKeyValue> in, const std::string& key,
                 std::optional<int> fallback) {
  const GgufValue* v = find_key(in, key);
  if (v == nullptr) {
    if (fallback) return *fallback;
    throw Error("quantize: the GGUF metadata lacks " + quote_name(key));
  }
  // Per-layer hyperparameters are arrays; the rules read layer 0's, as llama.cpp does.
  const GgufValue* scalar = v;
  if (const auto* items = v->as_array(); items != nullptr && !items->empty())
    scalar = &items->front();
  const auto n = scalar->as_u64();
  if (!n || *n > (1u << 30)) throw Error("quantize: " + quote_name(key) + " is not a count");
  return static_cast<int>(*n);
}

Model read_model(std::span<const GgufKeyValue> in, std::span<const GgufTensorInfo> tensors) {
  Model m;
  const GgufValue* arch = find_key(in, "general.architecture");
  if (arch == nullptr || arch->as_string() == nullptr) {
    throw Error("quantize: the GGUF metadata lacks the string \"general.architecture\"");
  }
  m.arch = *arch->as_string();
  m.n_layer = metadata_int(in, m.arch + ".block_count", std::nullopt);
  m.n_head = metadata_int(in, m.arch + ".attention.head_count", 0);
  m.n_head_kv = metadata_int(in, m.arch + ".attention.head_count_kv", m.n_head);
  m.n_expert = metadata_int(in, m.arch + ".expert_count", 0);
  for (const GgufTensorInfo& info : tensors) {
    if (role_of(info.name) == Role::Output) m.tied_output = false;
    if (role_of(info.name) == Role::AttnV) ++m.n_attn_v;
  }
  return m;
}

// Layers where the mixtures spend more bits: the first and last eighth, and every third between.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct Counters {
  int attn_v = 0;
  int ffn_down = 0;
};

// llama_tensor_get_type_impl for the file types Ember writes (no IQ or ternary types).
DType mixture_type(const Model& m, Counters& seen, uint32_t ft, const std::string& name, Role role,
                   int64_t row, DType type) {
  if (role == Role::Output || (m.tied_output && role == Role::TokenEmbd)) {
    if (m.falcon() || row % dtype_info(type).block_elems != 0) return DType::Q8_0;
    return type == DType::Q8_0 ? type : DType::Q6_K;
  }
  switch (role) {
    case Role::AttnV: {
      const int i = seen.attn_v++;
      if (ft == kQ2K) type = m.n_gqa() >= 4 ? DType::Q4_K : DType::Q3_K;
      if (ft == kQ3KM) type = i < 2 ? DType::Q5_K : DType::Q4_K;
      if (ft == kQ3KL) type = DType::Q5_K;
      if ((ft == kQ4KM || ft == kQ5KM) && use_more_bits(i, m.n_attn_v)) type = DType::Q6_K;
      if (ft == kQ4KS && i < 4) type = DType::Q5_K;
      // A 70B's attn_v is 8x smaller than attn_q: more bits there cost little.
      if (m.llama_70b() && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
      if (m.n_expert == 8) type = DType::Q8_0;
      return type;
    }
    case Role::AttnK:
      return m.n_expert == 8 ? DType::Q8_0 : type;
    case Role::FfnDown: {
      int i = seen.ffn_down++;
      const int n = m.n_layer;
      if (m.n_expert > 1) {
        // Experts' tensors need not come in layer order: the layer is read from the name.
        i = block_of(name);
        if (i < 0 || i >= n) throw Error("quantize: no layer number in " + quote_name(name));
      }
      if (ft == kQ2K) return DType::Q3_K;
      if (ft == kQ3KM) {
        if (i < n / 16) return DType::Q5_K;
        return !m.falcon() || use_more_bits(i, n) ? DType::Q4_K : DType::Q3_K;
      }
      if (ft == kQ3KL) return m.falcon() ? DType::Q4_K : DType::Q5_K;
      if (ft == kQ4KM) {
        if (!m.falcon()) return use_more_bits(i, n) ? DType::Q6_K : type;
        if (i < n / 16) return DType::Q6_K;
        return use_more_bits(i, n) ? DType::Q5_K : DType::Q4_K;
      }
      if (ft == kQ5KM && use_more_bits(i, n)) return DType::Q6_K;
      if (ft == kQ4KS && !m.falcon() && i < n / 8) return DType::Q5_K;
      return type;
    }
    case Role::AttnOutput:
      if (m.falcon()) return ft == kQ3KL ? DType::Q4_K : type;
      if (m.n_expert == 8) {
        const bool raise = ft == kQ2K || ft == kQ3KS || ft == kQ3KM || ft == kQ4KS || ft == kQ4KM;
        return raise ? DType::Q5_K : type;
      }
      if (ft == kQ2K) return DType::Q3_K;
      if (ft == kQ3KM) return DType::Q4_K;
      if (ft == kQ3KL) return DType::Q5_K;
      return type;
    default:
      return type;
  }
}

uint64_t row_bytes(DType dtype, int64_t n) {
  const auto bytes = dtype_bytes(dtype, static_cast<uint64_t>(n));
  if (!bytes)
    throw Error("quantize: rows of " + std::to_string(n) + " cannot be " +
                std::string(dtype_name(dtype)));
  return *bytes;
}

// A row that is not whole blocks of `type` takes the nearest 32-element type, then F16.
DType fallback_type(const GgufTensorInfo& info, DType type) {
  const int64_t row = info.shape.back();
  if (row % dtype_info(type).block_elems == 0) return type;
  DType to = DType::F16;
  switch (type) {
    case DType::Q2_K:
    case DType::Q3_K:
      to = DType::Q4_0;
      break;
    case DType::Q4_K:
      to = DType::Q5_0;
      break;
    case DType::Q5_K:
      to = DType::Q5_1;
      break;
    case DType::Q6_K:
      to = DType::Q8_0;
      break;
    default:
      throw Error("quantize: tensor " + quote_name(info.name) + " has rows of " +
                  std::to_string(row) + " elements, not whole " + std::string(dtype_name(type)) +
                  " blocks of " + std::to_string(dtype_info(type).block_elems));
  }
  return row % dtype_info(to).block_elems == 0 ? to : DType::F16;
}

std::vector<GgufKeyValue> output_metadata(std::span<const GgufKeyValue> in,
                                          const QuantizeTarget& target) {
  std::vector<GgufKeyValue> out;
  for (const GgufKeyValue& kv : in) {
    // One output file: the input's split bookkeeping does not describe it.
    if (kv.key == "split.no" || kv.key == "split.count" || kv.key == "split.tensors.count")
      continue;
    out.push_back(kv);
  }
  // As gguf_set_val does: a key set again moves to the end.
  auto set = [&out](const std::string& key, uint32_t v) {
    std::erase_if(out, [&](const GgufKeyValue& kv) { return kv.key == key; });
    out.push_back({key, GgufValue::unsigned_int(GgufType::U32, v)});
  };
  set("general.quantization_version", kQuantizationVersion);
  set("general.file_type", target.file_type);
  return out;
}

}  // namespace

std::span<const QuantizeTarget> quantize_targets() {
  return kTargets;
}

const QuantizeTarget& quantize_target(std::string_view name) {
  std::string names;
  for (const QuantizeTarget& t : kTargets) {
    if (t.name == name) return t;
    names += (names.empty() ? "" : ", ") + std::string(t.name);
  }
  throw Error("quantize: unknown type " + quote_name(std::string(name)) + " (known: " + names +
              ")");
}

std::vector<QuantizedTensor> plan_quantization(const GgufFile& in, const QuantizeTarget& target) {
  return plan_quantization(in.metadata(), in.tensors(), target);
}

std::vector<QuantizedTensor> plan_quantization(std::span<const GgufKeyValue> metadata,
                                               std::span<const GgufTensorInfo> tensors,
                                               const QuantizeTarget& target) {
  const Model model = read_model(metadata, tensors);
  std::vector<const GgufTensorInfo*> order;
  for (const GgufTensorInfo& info : tensors) order.push_back(&info);
  // llama.cpp's weights map order; the per-layer counters in the rules depend on it.
  std::stable_sort(order.begin(), order.end(),
                   [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
                     return std::make_tuple(block_of(a->name), std::string_view(a->name)) <
                            std::make_tuple(block_of(b->name), std::string_view(b->name));
                   });
  Counters seen;
  std::vector<QuantizedTensor> plan;
  for (const GgufTensorInfo* info : order) {
    DType to = info->dtype;
    if (allows_quantization(*info)) {
      to = target.default_type;
      if (is_quantized(to)) {
        if (target.mixture) {
          to = mixture_type(model, seen, target.file_type, info->name, role_of(info->name),
                            info->shape.back(), to);
        }
        to = fallback_type(*info, to);
      }
    }
    if (to != info->dtype &&
        (dtype_traits(info->dtype).to_f32 == nullptr || dtype_traits(to).from_f32 == nullptr)) {
      throw Error("quantize: tensor " + quote_name(info->name) + " is " +
                  std::string(dtype_name(info->dtype)) + ", which cannot be converted to " +
                  std::string(dtype_name(to)));
    }
    plan.push_back({info->name, info->dtype, to, info->shape});
  }
  return plan;
}

QuantizeSummary quantize_gguf(const GgufFile& in, const std::filesystem::path& out,
                              const QuantizeTarget& target) {
  return quantize_tensors(
      in.metadata(), in.tensors(),
      [&in](const GgufTensorInfo& info) { return in.tensor_bytes(info.name); }, out, target);
}

QuantizeSummary quantize_tensors(std::span<const GgufKeyValue> metadata,
                                 std::span<const GgufTensorInfo> tensors,
                                 const QuantizeSource& read, const std::filesystem::path& out,
                                 const QuantizeTarget& target) {
  QuantizeSummary summary;
  summary.tensors = plan_quantization(metadata, tensors, target);
  std::unordered_map<std::string_view, const GgufTensorInfo*> by_name;
  for (const GgufTensorInfo& info : tensors) by_name.emplace(info.name, &info);
  std::vector<GgufTensorSpec> specs;
  for (const QuantizedTensor& t : summary.tensors) specs.push_back({t.name, t.to, t.shape});

  // One tensor at a time: its F32 values and its new bytes, reused from tensor to tensor.
  std::vector<float> wide;
  std::vector<std::byte> packed;
  auto bytes_of = [&](size_t index) -> std::span<const std::byte> {
    const QuantizedTensor& t = summary.tensors[index];
    const std::span<const std::byte> src = read(*by_name.at(t.name));
    summary.bytes_in += src.size();
    if (t.from == t.to) {
      // llama.cpp copies a tensor whose type stays rather than round-tripping it.
      summary.bytes_out += src.size();
      return src;
    }
    const int64_t row = t.shape.back();
    const int64_t rows = shape_numel(t.shape) / row;
    const uint64_t src_row_bytes = row_bytes(t.from, row);
    const uint64_t dst_row_bytes = row_bytes(t.to, row);
    wide.resize(static_cast<size_t>(rows * row));
    packed.resize(static_cast<size_t>(rows) * dst_row_bytes);
    const auto to_f32 = dtype_traits(t.from).to_f32;
    const auto from_f32 = dtype_traits(t.to).from_f32;
    // Chunks of about 16K elements: enough work per task to hide the pool's overhead.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / row);
    parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
      float* values = wide.data() + lo * row;
      const size_t n = static_cast<size_t>((hi - lo) * row);
      to_f32(src.data() + static_cast<size_t>(lo) * src_row_bytes, values, n);
      if (!std::all_of(values, values + n, [](float v) { return std::isfinite(v); })) {
        throw Error("quantize: tensor " + quote_name(t.name) + " has non-finite values");
      }
      from_f32(values, packed.data() + static_cast<size_t>(lo) * dst_row_bytes, n);
    });
    summary.bytes_out += packed.size();
    return packed;
  };
  write_gguf_streamed(out, output_metadata(metadata, target), specs, bytes_of);
  return summary;
}

}  // namespace ember
