// models::Config from a GGUF file's metadata: the config.json a Hugging Face folder of the same
// model has, in the keys the architecture files already read, so GGUF models take the same path.
#include <nlohmann/json.hpp>

#include "ember/base/error.hpp"
#include "ember/models/config.hpp"

namespace ember::models {
namespace {

class Metadata {
 public:
  Metadata(const GgufFile& file, std::string source, std::string arch)
      : file_(file), source_(std::move(source)), arch_(std::move(arch)) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw Error(source_ + ": " + message);
  }
  const GgufValue* find(const std::string& key) const { return file_.find(arch_ + "." + key); }
  int64_t integer(const std::string& key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) fail("missing metadata key '" + arch_ + "." + key + "'");
    return integer_of(*v, arch_ + "." + key);
  }
  std::optional<int64_t> optional_integer(const std::string& key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    return integer_of(*v, arch_ + "." + key);
  }
  std::optional<double> optional_number(const std::string& key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    const auto d = v->as_f64();
    if (!d || v->type() == GgufType::Array)
      fail("metadata '" + arch_ + "." + key + "' is not a number");
    return *d;
  }
  std::optional<std::string> optional_string(const std::string& key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->as_string() == nullptr) fail("metadata '" + arch_ + "." + key + "' is not a string");
    return *v->as_string();
  }
  // A top-level key, not under the architecture's namespace.
  std::optional<int64_t> global_integer(const std::string& key) const {
    const GgufValue* v = file_.find(key);
    if (v == nullptr) return std::nullopt;
    return integer_of(*v, key);
  }

 private:
  int64_t integer_of(const GgufValue& v, const std::string& key) const {
    const auto i = v.as_i64();
    if (!i || v.type() == GgufType::Array || v.type() == GgufType::Bool) {
      fail("metadata '" + key + "' is not an integer");
    }
    return *i;
  }

  const GgufFile& file_;
  std::string source_;
  std::string arch_;
};

// The vocabulary size: {arch}.vocab_size, else the tokenizer's token list, else the rows of the
// embedding (what llama.cpp falls back to as well).
int64_t vocab_size(const GgufFile& file, const Metadata& m) {
  if (const auto n = m.optional_integer("vocab_size")) return *n;
  if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens"); tokens && tokens->as_array()) {
    return static_cast<int64_t>(tokens->as_array()->size());
  }
  if (file.contains("token_embd.weight")) return file.info("token_embd.weight").shape.at(0);
  m.fail("cannot tell the vocabulary size (no vocab_size, tokenizer.ggml.tokens or token_embd)");
}

}  // namespace

Config Config::from_gguf(const GgufFile& file, const std::string& source) {
  const GgufValue* arch_value = file.find("general.architecture");
  if (arch_value == nullptr || arch_value->as_string() == nullptr) {
    throw Error(source + ": no general.architecture string in the metadata");
  }
  const std::string arch = *arch_value->as_string();
  const Metadata m(file, source, arch);
  nlohmann::json c = nlohmann::json::object();
  c["model_type"] = arch;
  c["vocab_size"] = vocab_size(file, m);
  if (const auto bos = m.global_integer("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  if (const auto eos = m.global_integer("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
  if (arch == "gpt2") {
    c["n_embd"] = m.integer("embedding_length");
    c["n_head"] = m.integer("attention.head_count");
    c["n_layer"] = m.integer("block_count");
    c["n_positions"] = m.integer("context_length");
    if (const auto ff = m.optional_integer("feed_forward_length")) c["n_inner"] = *ff;
    if (const auto eps = m.optional_number("attention.layer_norm_epsilon")) {
      c["layer_norm_epsilon"] = *eps;
    }
    return Config(std::move(c), source);
  }
  if (arch != "llama" && arch != "qwen2") {
    m.fail("GGUF architecture '" + arch + "' is not supported (llama, qwen2, gpt2)");
  }
  const int64_t hidden = m.integer("embedding_length");
  const int64_t heads = m.integer("attention.head_count");
  c["hidden_size"] = hidden;
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = m.optional_integer("attention.head_count_kv").value_or(heads);
  c["num_hidden_layers"] = m.integer("block_count");
  c["intermediate_size"] = m.integer("feed_forward_length");
  c["max_position_embeddings"] = m.integer("context_length");
  if (const auto eps = m.optional_number("attention.layer_norm_rms_epsilon"))
    c["rms_norm_eps"] = *eps;
  const int64_t head_dim =
      m.optional_integer("attention.key_length").value_or(heads > 0 ? hidden / heads : 0);
  c["head_dim"] = head_dim;
  if (const auto rot = m.optional_integer("rope.dimension_count"); rot && *rot != head_dim) {
    m.fail("rope.dimension_count " + std::to_string(*rot) + " differs from the head size " +
           std::to_string(head_dim) + " (partial rotary embeddings are not supported)");
  }
  nlohmann::json rope = {{"rope_theta", m.optional_number("rope.freq_base").value_or(10000.0)},
                         {"rope_type", "default"}};
  const std::string scaling = m.optional_string("rope.scaling.type").value_or("none");
  if (scaling == "linear" || scaling == "yarn") {
    rope["rope_type"] = scaling;
    const auto factor = m.optional_number("rope.scaling.factor");
    if (!factor) m.fail("rope.scaling.type '" + scaling + "' without rope.scaling.factor");
    rope["factor"] = *factor;
    if (const auto orig = m.optional_integer("rope.scaling.original_context_length")) {
      rope["original_max_position_embeddings"] = *orig;
    }
  } else if (scaling != "none") {
    m.fail("unsupported rope.scaling.type '" + scaling + "' (none, linear, yarn)");
  }
  // Llama 3's frequency scaling reaches GGUF as a rope_freqs tensor of per-pair divisors, not
  // as parameters; Ember's rotary embedding takes only the parameters.
  if (file.contains("rope_freqs.weight")) {
    m.fail("rope_freqs.weight (Llama 3 rotary scaling) is not supported");
  }
  c["rope_parameters"] = std::move(rope);
  c["tie_word_embeddings"] = !file.contains("output.weight");
  return Config(std::move(c), source);
}

}  // namespace ember::models
