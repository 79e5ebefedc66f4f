#pragma once
// Strict accessors for tokenizer.json: every type mismatch names the offending field.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "internal.hpp"

namespace ember::tokenizers::detail {

using Json = nlohmann::json;

// serde_json's recursion limit, which the reference applies to tokenizer.json: deeper files
// (e.g. Sequence inside Sequence thousands of times) are refused before anything is built.
inline constexpr int kMaxJsonDepth = 128;

// Parses JSON with nesting bounded by kMaxJsonDepth; a failure names `what` (the file).
Json parse_json_bounded(std::string_view text, const std::string& what);

inline const Json* field(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline std::string get_string(const Json& obj, const char* name, const std::string& ctx,
                              const std::string& def = {}, bool required = false) {
  const Json* v = field(obj, name);
  if (!v) {
    if (required) fail(ctx + "." + name + ": missing required field");
    return def;
  }
  if (!v->is_string()) fail(ctx + "." + name + ": expected a string");
  return v->get<std::string>();
}

inline bool get_bool(const Json& obj, const char* name, const std::string& ctx, bool def) {
  const Json* v = field(obj, name);
  if (!v) return def;
  if (!v->is_boolean()) fail(ctx + "." + name + ": expected a boolean");
  return v->get<bool>();
}

inline uint64_t get_uint(const Json& obj, const char* name, const std::string& ctx, uint64_t def,
                         bool required = false, uint64_t max = UINT32_MAX) {
  const Json* v = field(obj, name);
  if (!v) {
    if (required) fail(ctx + "." + name + ": missing required field");
    return def;
  }
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
    fail(ctx + "." + name + ": expected a non-negative integer");
  uint64_t x = v->get<uint64_t>();
  if (x > max) fail(ctx + "." + name + ": value out of range");
  return x;
}

inline double get_double(const Json& obj, const char* name, const std::string& ctx, double def) {
  const Json* v = field(obj, name);
  if (!v) return def;
  if (!v->is_number()) fail(ctx + "." + name + ": expected a number");
  return v->get<double>();
}

inline const Json& get_array(const Json& obj, const char* name, const std::string& ctx) {
  const Json* v = field(obj, name);
  if (!v) fail(ctx + "." + name + ": missing required field");
  if (!v->is_array()) fail(ctx + "." + name + ": expected an array");
  return *v;
}

inline std::string type_of(const Json& obj, const std::string& ctx) {
  if (!obj.is_object()) fail(ctx + ": expected an object");
  return get_string(obj, "type", ctx, "", true);
}

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& ctx);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& ctx);
std::unique_ptr<Model> make_model(const Json& j, const std::string& ctx);
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& ctx);
std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& ctx);

// Pattern {"String": s} or {"Regex": r}.
std::unique_ptr<Regex> make_pattern(const Json& j, const std::string& ctx);

// Models built directly by the legacy loaders.
std::unique_ptr<Model> make_wordpiece(std::vector<std::string> vocab, const std::string& unk,
                                      const std::string& prefix, size_t max_chars);
struct BpeOptions {
  std::optional<std::string> unk_token, continuing_subword_prefix, end_of_word_suffix;
  double dropout = 0.0;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};
std::unique_ptr<Model> make_bpe(std::vector<std::pair<std::string, uint32_t>> vocab,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                const BpeOptions& opts);
std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab,
                                    std::optional<uint32_t> unk_id, bool byte_fallback);

}  // namespace ember::tokenizers::detail
