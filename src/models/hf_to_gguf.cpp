#include "ember/models/hf_to_gguf.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/models/config.hpp"
#include "ember/models/gguf_tokenizer.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int32_t kNormal = 1;
constexpr int32_t kControl = 3;
constexpr int32_t kUserDefined = 4;
constexpr int32_t kUnused = 5;

[[noreturn]] void fail(const fs::path& where, const std::string& message) {
  throw Error("quantize: " + where.string() + ": " + message);
}

GgufValue u32(int64_t v) {
  return GgufValue::unsigned_int(GgufType::U32, static_cast<uint64_t>(v));
}
GgufValue f32(double v) {
  return GgufValue::floating(GgufType::F32, v);
}

// gguf-py's Metadata.id_to_title for a name with no organization, size or version parts:
// dashes become spaces and all-lowercase words get Python's str.title().
std::string id_to_title(const std::string& id) {
  std::string out;
  size_t i = 0;
  while (i < id.size()) {
    while (i < id.size() && (id[i] == '-' || id[i] == ' ')) ++i;
    size_t end = i;
    while (end < id.size() && id[end] != '-' && id[end] != ' ') ++end;
    if (end == i) break;
    std::string word = id.substr(i, end - i);
    const bool has_upper = std::any_of(word.begin(), word.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c));
    });
    const bool has_lower = std::any_of(word.begin(), word.end(), [](char c) {
      return std::islower(static_cast<unsigned char>(c));
    });
    const bool version =
        (word[0] == 'v' && word.size() > 1 && std::isdigit(static_cast<unsigned char>(word[1]))) ||
        std::isdigit(static_cast<unsigned char>(word[0]));
    if (has_lower && !has_upper && !version) {
      bool after_letter = false;
      for (char& c : word) {
        const bool letter = std::isalpha(static_cast<unsigned char>(c)) != 0;
        if (letter && !after_letter)
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        after_letter = letter;
      }
    }
    out += (out.empty() ? "" : " ") + word;
    i = end;
  }
  return out;
}

// gguf-py's size_label: the parameter count with two significant digits and K/M/B/T.
std::string size_label(uint64_t params) {
  const auto n = static_cast<double>(params);
  double scaled = n * 1e-3;
  const char* suffix = "K";
  if (n > 1e12) {
    scaled = n * 1e-12, suffix = "T";
  } else if (n > 1e9) {
    scaled = n * 1e-9, suffix = "B";
  } else if (n > 1e6) {
    scaled = n * 1e-6, suffix = "M";
  }
  std::string whole = std::to_string(static_cast<long long>(std::nearbyint(scaled)));
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size()));
  const int fix = std::max(2 - static_cast<int>(whole.size()), 0);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f%s", fix, scaled, suffix);
  return buffer;
}

struct Folder {
  fs::path dir;
  fs::path weights;  // the folder, or one .safetensors file
};

Folder locate(const fs::path& in) {
  std::error_code ec;
  if (fs::is_directory(in, ec)) return {in, in};
  if (in.extension() != ".safetensors") {
    throw Error("quantize: " + in.string() +
                " is neither a GGUF file, a .safetensors file nor a model folder");
  }
  return {in.parent_path().empty() ? fs::path(".") : in.parent_path(), in};
}

std::optional<json> optional_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  return read_json_file(path);
}

// The content of a tokenizer_config.json special-token entry (a string or {"content": ...}).
std::optional<std::string> token_content(const json& entry) {
  if (entry.is_string()) return entry.get<std::string>();
  if (entry.is_object() && entry.contains("content") && entry["content"].is_string())
    return entry["content"].get<std::string>();
  return std::nullopt;
}

// tokenizer.ggml.* from tokenizer.json, tokenizer_config.json and config.json, as llama.cpp's
// converter (_set_vocab_gpt2 and gguf-py's SpecialVocab) writes them.
void add_tokenizer(const Folder& f, const Config& config, int64_t vocab_size,
                   std::vector<GgufKeyValue>& md) {
  const fs::path tokenizer_path = f.dir / "tokenizer.json";
  std::error_code ec;
  if (fs::exists(f.dir / "tokenizer.model", ec)) {
    fail(f.dir,
         "SentencePiece tokenizers (tokenizer.model; GGUF tokenizer.ggml.model 'llama') "
         "are not supported yet");
  }
  const std::optional<json> tokenizer = optional_json(tokenizer_path);
  if (!tokenizer) fail(f.dir, "no tokenizer.json (a GGUF file carries its tokenizer)");
  const json config_tokens =
      optional_json(f.dir / "tokenizer_config.json").value_or(json::object());
  const json& model = tokenizer->value("model", json::object());
  if (model.value("type", "") != "BPE" || model.value("byte_fallback", false)) {
    fail(tokenizer_path, "only byte-level BPE tokenizers are supported (this one is " +
                             quote_name(model.value("type", std::string("?"))) +
                             (model.value("byte_fallback", false) ? " with byte fallback" : "") +
                             ")");
  }
  const std::optional<std::string> pre = gguf_pre_of(*tokenizer);
  if (!pre) {
    fail(tokenizer_path,
         "its normalizer and pre-tokenizer are none that Ember knows the "
         "llama.cpp name of (smollm, gpt-2, llama-bpe, qwen2)");
  }

  // Every id names one token; added tokens override the model's vocabulary.
  std::vector<std::optional<std::string>> tokens(static_cast<size_t>(vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), kUnused);
  auto place = [&](const std::string& token, const json& id_value) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() >= vocab_size) {
      fail(tokenizer_path, "token " + quote_name(token) + " has id " + id_value.dump() +
                               ", outside the model's vocab_size " + std::to_string(vocab_size));
    }
    const auto id = static_cast<size_t>(id_value.get<int64_t>());
    tokens[id] = token;
    types[id] = kNormal;
    return id;
  };
  const json& vocab = model.value("vocab", json::object());
  if (!vocab.is_object() || vocab.empty()) fail(tokenizer_path, "model.vocab is not a token map");
  for (const auto& [token, id] : vocab.items()) place(token, id);
  std::map<std::string, int64_t> added_ids;  // content -> id, first wins as in SpecialVocab
  for (const json& added : tokenizer->value("added_tokens", json::array())) {
    const std::optional<std::string> content = token_content(added);
    if (!content || !added.contains("id"))
      fail(tokenizer_path, "an added token lacks content or id");
    std::string token = *content;
    const size_t id = place(token, added["id"]);
    added_ids.emplace(token, static_cast<int64_t>(id));
    const bool looks_special = (token.starts_with("<|") && token.ends_with("|>")) ||
                               token == "<pad>" || token == "<mask>" || token == "<2mass>" ||
                               token == "[@BOS@]" ||
                               (token.starts_with("<unused") && token.ends_with(">"));
    if (added.value("special", false) || looks_special) {
      types[id] = kControl;
    } else {
      // User-defined tokens are matched before pre-tokenization: spaces as spaces.
      for (size_t at = 0; (at = token.find("\xe2\x96\x81", at)) != std::string::npos;)
        token.replace(at, 3, " ");
      tokens[id] = token;
      types[id] = kUserDefined;
    }
  }
  GgufValue::Array token_values;
  GgufValue::Array type_values;
  for (size_t id = 0; id < tokens.size(); ++id) {
    token_values.push_back(
        GgufValue::string(tokens[id].value_or("[PAD" + std::to_string(id) + "]")));
    type_values.push_back(GgufValue::signed_int(GgufType::I32, types[id]));
  }

  GgufValue::Array merges;
  for (const json& m : model.value("merges", json::array())) {
    if (m.is_string()) {
      merges.push_back(GgufValue::string(m.get<std::string>()));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      // The pair form may hold spaces; the string form writes them as U+0120, as GPT-2's bytes do.
      std::string merge;
      for (int part = 0; part < 2; ++part) {
        for (char c : m[part].get<std::string>())
          merge += c == ' ' ? std::string("\xc4\xa0") : std::string(1, c);
        if (part == 0) merge += ' ';
      }
      merges.push_back(GgufValue::string(std::move(merge)));
    } else {
      fail(tokenizer_path, "model.merges holds neither \"a b\" strings nor [a, b] pairs");
    }
  }
  if (merges.empty()) fail(tokenizer_path, "a byte-level BPE tokenizer without merges");

  md.push_back({"tokenizer.ggml.model", GgufValue::string("gpt2")});
  md.push_back({"tokenizer.ggml.pre", GgufValue::string(*pre)});
  md.push_back(
      {"tokenizer.ggml.tokens", GgufValue::array(GgufType::String, std::move(token_values))});
  md.push_back(
      {"tokenizer.ggml.token_type", GgufValue::array(GgufType::I32, std::move(type_values))});
  md.push_back({"tokenizer.ggml.merges", GgufValue::array(GgufType::String, std::move(merges))});

  // Special ids: tokenizer_config.json's tokens (looked up among the added tokens), then
  // config.json's *_token_id for the rest.
  const std::pair<const char*, const char*> kinds[] = {{"bos", "bos"},     {"eos", "eos"},
                                                       {"unk", "unknown"}, {"sep", "seperator"},
                                                       {"pad", "padding"}, {"mask", "mask"}};
  for (const auto& [kind, key] : kinds) {
    std::optional<int64_t> id;
    if (const auto content =
            token_content(config_tokens.value(std::string(kind) + "_token", json()))) {
      if (const auto it = added_ids.find(*content); it != added_ids.end()) id = it->second;
    }
    const json& from_config = config.json().value(std::string(kind) + "_token_id", json());
    if (!id && from_config.is_number_integer() && from_config.get<int64_t>() >= 0)
      id = from_config.get<int64_t>();
    if (id) md.push_back({std::string("tokenizer.ggml.") + key + "_token_id", u32(*id)});
  }

  // Whether BOS/EOS are added: the post-processor's template first, tokenizer_config.json next.
  std::map<std::string, bool> add;
  const json& post = tokenizer->value("post_processor", json());
  json processors = json::array();
  if (post.is_object()) processors = post.value("processors", json::array({post}));
  for (const json& p : processors) {
    const std::string type = p.value("type", "");
    if (type == "ByteLevel") {
      add.emplace("bos", false);
      add.emplace("eos", false);
    } else if (type == "TemplateProcessing") {
      const json& single = p.value("single", json::array());
      if (single.size() <= 1) continue;
      auto special_at = [&](const json& piece) -> std::optional<std::string> {
        if (!piece.contains("SpecialToken")) return std::nullopt;
        return piece["SpecialToken"].value("id", std::string());
      };
      const auto bos = token_content(config_tokens.value("bos_token", json()));
      const auto eos = token_content(config_tokens.value("eos_token", json()));
      if (const auto first = special_at(single.front())) add["bos"] = first == bos;
      if (const auto last = special_at(single.back())) {
        if (last != eos) {
          fail(tokenizer_path, "the post-processor ends with " + quote_name(*last) +
                                   ", not the EOS token; its template is not supported");
        }
        add["eos"] = true;
      }
    } else {
      fail(tokenizer_path, "unsupported post-processor " + quote_name(type));
    }
  }
  for (const char* kind : {"bos", "eos", "sep"}) {
    const json& entry = config_tokens.value(std::string("add_") + kind + "_token", json());
    if (entry.is_boolean()) add.emplace(kind, entry.get<bool>());
  }
  // llama.cpp's converter: Granite's small models (vocabulary 49152, as SmolLM's) add no BOS.
  if (vocab_size == 49152) add["bos"] = false;
  for (const auto& [kind, value] : add)
    md.push_back({"tokenizer.ggml.add_" + kind + "_token", GgufValue::boolean(value)});

  std::optional<std::string> chat_template;
  const json& inline_template = config_tokens.value("chat_template", json());
  if (inline_template.is_string()) {
    chat_template = inline_template.get<std::string>();
  } else if (!inline_template.is_null()) {
    fail(f.dir / "tokenizer_config.json",
         "chat_template is not a string (named templates are "
         "not supported)");
  } else if (fs::exists(f.dir / "chat_template.jinja", ec)) {
    const fs::path path = f.dir / "chat_template.jinja";
    if (fs::file_size(path, ec) > kJsonFileMaxBytes) fail(path, "too large for a chat template");
    FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) fail(path, "cannot be read");
    std::string text(fs::file_size(path), '\0');
    const size_t read = std::fread(text.data(), 1, text.size(), file);
    std::fclose(file);
    if (read != text.size()) fail(path, "cannot be read");
    chat_template = std::move(text);
  }
  if (chat_template) md.push_back({"tokenizer.chat_template", GgufValue::string(*chat_template)});
}

// The rotary parameters, from transformers 5's rope_parameters or the older rope_theta and
// rope_scaling.
json rope_of(const Config& c) {
  const json& j = c.json();
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    return j["rope_parameters"];
  json rope = j.value("rope_scaling", json::object());
  if (!rope.is_object()) rope = json::object();
  if (rope.contains("type") && !rope.contains("rope_type")) rope["rope_type"] = rope["type"];
  if (j.contains("rope_theta")) rope["rope_theta"] = j["rope_theta"];
  return rope;
}

struct Plan {
  std::vector<GgufKeyValue> metadata;
  std::vector<GgufTensorInfo> tensors;  // F32, as the bytes are handed over
  std::map<std::string, std::string> hf_name;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
};

Plan plan_conversion(const Folder& f, const Config& c, const nn::Weights& weights,
                     const QuantizeTarget& target) {
  const std::string model_type = c.string("model_type", "");
  if (model_type != "llama") {
    fail(f.dir, "architecture " + quote_name(model_type) +
                    " is not supported (GGUF conversion knows llama)");
  }
  Plan p;
  p.n_head = c.positive("num_attention_heads");
  p.n_head_kv = c.integer("num_key_value_heads", p.n_head);
  const int64_t hidden = c.positive("hidden_size");
  const int64_t vocab_size = c.positive("vocab_size");
  const int64_t head_dim = c.has("head_dim") ? c.positive("head_dim") : hidden / p.n_head;

  uint64_t params = 0;
  const nn::WeightSource& source = weights.source();
  std::vector<std::string> names = source.names();
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
    const std::optional<std::string> gguf = nn::gguf_tensor_name("llama", name);
    if (!gguf) fail(f.weights, "tensor " + quote_name(name) + " has no GGUF name for llama");
    const Tensor t = source.tensor(name);
    if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16) {
      fail(f.weights, "tensor " + quote_name(name) + " is " + std::string(dtype_name(t.dtype())) +
                          "; conversion takes F32, F16 or BF16 weights");
    }
    if (t.rank() < 1 || t.rank() > kGgufMaxDims) {
      fail(f.weights, "tensor " + quote_name(name) + " has rank " + std::to_string(t.rank()));
    }
    GgufTensorInfo info;
    info.name = *gguf;
    info.dtype = DType::F32;
    info.ggml_type = 0;
    info.shape = t.shape();
    info.nbytes = static_cast<uint64_t>(t.numel()) * 4;
    params += static_cast<uint64_t>(t.numel());
    p.hf_name[info.name] = name;
    p.tensors.push_back(std::move(info));
  }

  auto& md = p.metadata;
  md.push_back({"general.architecture", GgufValue::string("llama")});
  md.push_back({"general.type", GgufValue::string("model")});
  fs::path folder = fs::absolute(f.dir).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();  // "dir/" names "dir"
  md.push_back({"general.name", GgufValue::string(id_to_title(folder.filename().string()))});
  md.push_back({"general.size_label", GgufValue::string(size_label(params))});
  md.push_back({"llama.block_count", u32(c.positive("num_hidden_layers"))});
  if (c.has("max_position_embeddings"))
    md.push_back({"llama.context_length", u32(c.positive("max_position_embeddings"))});
  md.push_back({"llama.embedding_length", u32(hidden)});
  md.push_back({"llama.feed_forward_length", u32(c.positive("intermediate_size"))});
  md.push_back({"llama.attention.head_count", u32(p.n_head)});
  if (c.has("num_key_value_heads"))
    md.push_back({"llama.attention.head_count_kv", u32(p.n_head_kv)});
  const json rope = rope_of(c);
  const std::string rope_type = rope.value("rope_type", std::string("default"));
  if (rope_type == "linear" || rope_type == "yarn") {
    if (!rope.contains("factor") || !rope["factor"].is_number())
      fail(f.dir, "rope type " + quote_name(rope_type) + " without a numeric factor");
    md.push_back({"llama.rope.scaling.type", GgufValue::string(rope_type)});
    md.push_back({"llama.rope.scaling.factor", f32(rope["factor"].get<double>())});
    if (rope_type == "yarn") {
      if (!rope.contains("original_max_position_embeddings"))
        fail(f.dir, "yarn rope scaling without original_max_position_embeddings");
      md.push_back({"llama.rope.scaling.original_context_length",
                    u32(rope["original_max_position_embeddings"].get<int64_t>())});
      const std::pair<const char*, const char*> yarn[] = {
          {"extrapolation_factor", "yarn_ext_factor"},
          {"attention_factor", "yarn_attn_factor"},
          {"beta_fast", "yarn_beta_fast"},
          {"beta_slow", "yarn_beta_slow"}};
      for (const auto& [hf, key] : yarn) {
        if (rope.contains(hf) && rope[hf].is_number())
          md.push_back({std::string("llama.rope.scaling.") + key, f32(rope[hf].get<double>())});
      }
    }
  } else if (rope_type != "default") {
    // Llama 3's scaling becomes a rope_freqs tensor, which Ember's GGUF loader rejects.
    fail(f.dir, "rope type " + quote_name(rope_type) + " is not supported (default, linear, yarn)");
  }
  if (rope.contains("rope_theta") && rope["rope_theta"].is_number())
    md.push_back({"llama.rope.freq_base", f32(rope["rope_theta"].get<double>())});
  if (c.has("rms_norm_eps"))
    md.push_back({"llama.attention.layer_norm_rms_epsilon", f32(c.number("rms_norm_eps"))});
  if (c.has("head_dim")) {
    md.push_back({"llama.attention.key_length", u32(head_dim)});
    md.push_back({"llama.attention.value_length", u32(head_dim)});
  }
  md.push_back({"general.file_type", u32(target.file_type)});
  md.push_back({"llama.vocab_size", u32(vocab_size)});
  md.push_back({"llama.rope.dimension_count", u32(head_dim)});
  md.push_back({"general.quantization_version", u32(2)});
  add_tokenizer(f, c, vocab_size, md);
  return p;
}

// llama.cpp's converter stores the query and key rows of each head with the two halves of the
// rotary pairs interleaved (GGML's rope), where Hugging Face keeps them split in halves.
void interleave_rotary_rows(const float* src, float* dst, int64_t heads, int64_t rows,
                            int64_t cols) {
  const int64_t head_dim = rows / heads;
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < half; ++j) {
      for (int64_t t = 0; t < 2; ++t) {
        const float* from = src + (h * head_dim + t * half + j) * cols;
        std::copy(from, from + cols, dst + (h * head_dim + 2 * j + t) * cols);
      }
    }
  }
}

}  // namespace

bool looks_like_hf_model(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fs::exists(path / "config.json", ec);
  return path.extension() == ".safetensors";
}

QuantizeSummary convert_hf_to_gguf(const fs::path& in, const fs::path& out,
                                   const QuantizeTarget& target) {
  const Folder f = locate(in);
  const Config config = Config::load(f.dir);
  const nn::Weights weights = nn::Weights::open(f.weights);
  const Plan plan = plan_conversion(f, config, weights, target);

  std::vector<float> permuted;
  Tensor held;
  auto read = [&](const GgufTensorInfo& info) -> std::span<const std::byte> {
    held = to_f32(weights.source().tensor(plan.hf_name.at(info.name)));
    const int64_t heads = info.name.ends_with("attn_q.weight")   ? plan.n_head
                          : info.name.ends_with("attn_k.weight") ? plan.n_head_kv
                                                                 : 0;
    const auto bytes = std::span<const std::byte>(held.data(), held.nbytes());
    if (heads == 0) return bytes;
    const int64_t rows = info.shape.at(0);
    if (info.shape.size() != 2 || heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0) {
      fail(f.weights, "tensor " + quote_name(plan.hf_name.at(info.name)) + " does not split into " +
                          std::to_string(heads) + " heads of pairs");
    }
    permuted.resize(static_cast<size_t>(held.numel()));
    interleave_rotary_rows(held.data_as<float>(), permuted.data(), heads, rows, info.shape[1]);
    return std::as_bytes(std::span<const float>(permuted));
  };
  return quantize_tensors(plan.metadata, plan.tensors, read, out, target);
}

}  // namespace ember::models
