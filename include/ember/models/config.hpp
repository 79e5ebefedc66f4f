#pragma once
// config.json with typed, checked access: a missing or mistyped field is an ember::Error that
// names the field and the file.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "ember/formats/gguf.hpp"

namespace ember::models {

class Config {
 public:
  // `folder`/config.json.
  static Config load(const std::filesystem::path& folder);
  Config(nlohmann::json json, std::string source);
  // The config.json of the same model, from a GGUF file's metadata ({arch}.embedding_length,
  // block_count, attention.head_count(_kv), rope.freq_base, rope.scaling.*, ...) for llama,
  // qwen2 and gpt2; tie_word_embeddings when the file has no output.weight. `source` names the
  // file in messages.
  static Config from_gguf(const GgufFile& file, const std::string& source);

  bool has(std::string_view key) const;  // present and not null
  int64_t integer(std::string_view key) const;
  int64_t integer(std::string_view key, int64_t fallback) const;
  // A required integer >= 1.
  int64_t positive(std::string_view key) const;
  double number(std::string_view key) const;
  double number(std::string_view key, double fallback) const;
  std::string string(std::string_view key) const;
  std::string string(std::string_view key, std::string_view fallback) const;
  bool boolean(std::string_view key, bool fallback) const;
  const nlohmann::json& json() const { return json_; }
  const std::string& source() const { return source_; }
  std::string model_type() const { return string("model_type"); }

  [[noreturn]] void fail(const std::string& message) const;

 private:
  const nlohmann::json& field(std::string_view key) const;
  nlohmann::json json_;
  std::string source_;
};

}  // namespace ember::models
