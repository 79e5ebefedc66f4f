#include "ember/models/gguf_tokenizer.hpp"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "ember/base/error.hpp"

namespace ember::models {
namespace {

using json = nlohmann::json;

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int64_t kControl = 3;
constexpr int64_t kUserDefined = 4;

[[noreturn]] void fail(const std::string& message) {
  throw Error("gguf tokenizer: " + message);
}

const GgufValue::Array& array_of(const GgufFile& f, const char* key, GgufType element) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) fail(std::string("missing ") + key);
  if (v->type() != GgufType::Array || v->element_type() != element) {
    fail(std::string(key) + " is not an array of " + std::string(gguf_type_name(element)));
  }
  return *v->as_array();
}

std::string string_of(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr || v->as_string() == nullptr) fail(std::string("missing string ") + key);
  return *v->as_string();
}

std::optional<int64_t> optional_id(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  const auto id = v->as_i64();
  if (!id || v->type() == GgufType::Bool || v->type() == GgufType::Array) {
    fail(std::string(key) + " is not an integer");
  }
  return *id;
}

bool optional_bool(const GgufFile& f, const char* key, bool fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (!v->as_bool()) fail(std::string(key) + " is not a bool");
  return *v->as_bool();
}

json byte_level(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", trim_offsets},
          {"use_regex", use_regex}};
}

json split(const char* regex) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", regex}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

// The splitting regexes of the original tokenizer.json files (Llama 3: digits in runs of up to
// three; Qwen2: each digit alone).
constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreTokenizer {
  json normalizer;
  json pre_tokenizer;
  bool add_bos;        // llama.cpp's default when tokenizer.ggml.add_bos_token is absent
  bool ignore_merges;  // Llama 3 looks whole words up in the vocabulary before merging
};

PreTokenizer pre_tokenizer_for(const std::string& pre) {
  if (pre == "smollm") {
    // Every digit on its own, then GPT-2's byte-level split.
    return {nullptr,
            {{"type", "Sequence"},
             {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}},
                                            byte_level(false, true, true)})}},
            false,
            false};
  }
  if (pre == "gpt-2" || pre == "default")
    return {nullptr, byte_level(false, true, true), false, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return {nullptr,
            {{"type", "Sequence"},
             {"pretokenizers", json::array({split(kLlama3Regex), byte_level(false, true, false)})}},
            true,
            true};
  }
  if (pre == "qwen2") {
    return {{{"type", "NFC"}},
            {{"type", "Sequence"},
             {"pretokenizers", json::array({split(kQwen2Regex), byte_level(false, false, false)})}},
            false,
            false};
  }
  fail("unsupported tokenizer.ggml.pre '" + pre + "' (smollm, gpt-2, llama-bpe, qwen2)");
}

json special_piece(const std::string& token) {
  return {{"SpecialToken", {{"id", token}, {"type_id", 0}}}};
}

}  // namespace

std::optional<std::string> gguf_pre_of(const json& tokenizer) {
  if (!tokenizer.is_object()) return std::nullopt;
  const json none;
  const json& normalizer = tokenizer.contains("normalizer") ? tokenizer["normalizer"] : none;
  const json& pre = tokenizer.contains("pre_tokenizer") ? tokenizer["pre_tokenizer"] : none;
  for (const char* name : {"smollm", "gpt-2", "llama-bpe", "qwen2"}) {
    const PreTokenizer p = pre_tokenizer_for(name);
    if (normalizer == p.normalizer && pre == p.pre_tokenizer) return std::string(name);
  }
  return std::nullopt;
}

json gguf_tokenizer_json(const GgufFile& file) {
  const std::string model = string_of(file, "tokenizer.ggml.model");
  if (model != "gpt2") {
    fail("unsupported tokenizer.ggml.model '" + model + "' (gpt2; 'llama' vocabularies are read " +
         "by gguf_sentencepiece_vocab)");
  }
  const std::string pre = file.find("tokenizer.ggml.pre") ? string_of(file, "tokenizer.ggml.pre")
                                                          : std::string("default");
  const PreTokenizer p = pre_tokenizer_for(pre);
  const GgufValue::Array& tokens = array_of(file, "tokenizer.ggml.tokens", GgufType::String);
  const GgufValue::Array& merges = array_of(file, "tokenizer.ggml.merges", GgufType::String);
  const GgufValue* types_value = file.find("tokenizer.ggml.token_type");
  const GgufValue::Array* types = types_value ? types_value->as_array() : nullptr;
  if (types != nullptr && types->size() != tokens.size()) {
    fail("tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length");
  }

  json vocab = json::object();
  json added = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& token = *tokens[id].as_string();
    if (vocab.contains(token)) fail("token " + quote_name(token) + " appears twice");
    vocab[token] = id;
    const auto type = types ? (*types)[id].as_i64() : std::optional<int64_t>(1);
    if (!type) fail("tokenizer.ggml.token_type holds a non-integer");
    if (*type == kControl || *type == kUserDefined) {
      added.push_back({{"id", id},
                       {"content", token},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", *type != kControl},
                       {"special", *type == kControl}});
    }
  }
  json merge_list = json::array();
  for (const GgufValue& m : merges) {
    const std::string& merge = *m.as_string();
    const size_t space = merge.find(' ');
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos ||
        !vocab.contains(merge.substr(0, space)) || !vocab.contains(merge.substr(space + 1))) {
      fail("merge " + quote_name(merge) + " does not name two tokens of the vocabulary");
    }
    merge_list.push_back(merge);
  }

  const auto token_text = [&](const char* key) -> std::optional<std::string> {
    const auto id = optional_id(file, key);
    if (!id) return std::nullopt;
    if (*id < 0 || static_cast<size_t>(*id) >= tokens.size()) {
      fail(std::string(key) + " " + std::to_string(*id) + " is not a token id");
    }
    return *tokens[static_cast<size_t>(*id)].as_string();
  };
  const bool add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token", p.add_bos);
  const bool add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token", false);
  const std::optional<std::string> bos =
      add_bos ? token_text("tokenizer.ggml.bos_token_id") : std::nullopt;
  const std::optional<std::string> eos =
      add_eos ? token_text("tokenizer.ggml.eos_token_id") : std::nullopt;
  if (add_bos && !bos) fail("add_bos_token without tokenizer.ggml.bos_token_id");
  if (add_eos && !eos) fail("add_eos_token without tokenizer.ggml.eos_token_id");

  json post = byte_level(true, false, true);
  if (bos || eos) {
    const auto wrap = [&](const char* sequence) {
      json pieces = json::array();
      if (bos) pieces.push_back(special_piece(*bos));
      pieces.push_back({{"Sequence", {{"id", sequence}, {"type_id", 0}}}});
      if (eos) pieces.push_back(special_piece(*eos));
      return pieces;
    };
    json specials = json::object();
    for (const auto& text : {bos, eos}) {
      if (text) specials[*text] = {{"id", *text}, {"ids", {vocab[*text]}}, {"tokens", {*text}}};
    }
    json pair = wrap("A");
    for (const json& piece : wrap("B")) pair.push_back(piece);
    post = {{"type", "Sequence"},
            {"processors", json::array({post,
                                        {{"type", "TemplateProcessing"},
                                         {"single", wrap("A")},
                                         {"pair", pair},
                                         {"special_tokens", specials}}})}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", p.normalizer},
          {"pre_tokenizer", p.pre_tokenizer},
          {"post_processor", post},
          {"decoder", byte_level(true, true, true)},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", p.ignore_merges},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

tokenizers::SentencePieceVocab gguf_sentencepiece_vocab(const GgufFile& file) {
  const std::string model = string_of(file, "tokenizer.ggml.model");
  if (model != "llama") fail("tokenizer.ggml.model '" + model + "' is not a SentencePiece 'llama'");
  tokenizers::SentencePieceVocab v;
  const GgufValue::Array& tokens = array_of(file, "tokenizer.ggml.tokens", GgufType::String);
  for (const GgufValue& t : tokens) v.pieces.push_back(*t.as_string());
  const size_t n = v.pieces.size();
  v.scores.assign(n, 0.0f);
  if (file.find("tokenizer.ggml.scores") != nullptr) {
    const GgufValue::Array& scores = array_of(file, "tokenizer.ggml.scores", GgufType::F32);
    if (scores.size() != n)
      fail("tokenizer.ggml.scores and tokenizer.ggml.tokens differ in length");
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(*scores[i].as_f64());
  }
  v.types.assign(n, 1);
  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    const GgufValue::Array& types = array_of(file, "tokenizer.ggml.token_type", GgufType::I32);
    if (types.size() != n) {
      fail("tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length");
    }
    for (size_t i = 0; i < n; ++i) v.types[i] = static_cast<int32_t>(*types[i].as_i64());
  }
  const auto id = [&](const char* key, int64_t fallback) {
    const int64_t value = optional_id(file, key).value_or(fallback);
    if (value < 0 || static_cast<size_t>(value) >= n) {
      fail(std::string(key) + " " + std::to_string(value) + " is not a token id");
    }
    return static_cast<uint32_t>(value);
  };
  v.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  if (optional_bool(file, "tokenizer.ggml.add_bos_token", true))
    v.bos_id = id("tokenizer.ggml.bos_token_id", 1);
  if (optional_bool(file, "tokenizer.ggml.add_eos_token", false))
    v.eos_id = id("tokenizer.ggml.eos_token_id", 2);
  v.add_space_prefix = optional_bool(file, "tokenizer.ggml.add_space_prefix", true);
  return v;
}

std::vector<int64_t> gguf_eos_ids(const GgufFile& file) {
  std::vector<int64_t> out;
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (const auto id = optional_id(file, key)) out.push_back(*id);
  }
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  const GgufValue* types = file.find("tokenizer.ggml.token_type");
  if (tokens && tokens->as_array() && types && types->as_array() &&
      types->as_array()->size() == tokens->as_array()->size()) {
    static const std::unordered_set<std::string> kEndTexts = {
        "<|eot_id|>",    "<|im_end|>", "<|end|>",    "<end_of_turn>",
        "<|endoftext|>", "<EOT>",      "_<EOT>",     "<|end_of_text|>",
        "<|fim_pad|>",   "<fim-pad>",  "<fim_pad>",  "<|fim_repo|>",
        "<|repo_name|>", "<fim-repo>", "<reponame>", "<|file_sep|>"};
    for (size_t id = 0; id < tokens->as_array()->size(); ++id) {
      const std::string* text = (*tokens->as_array())[id].as_string();
      const auto type = (*types->as_array())[id].as_i64();
      if (text && type && (*type == kControl || *type == kUserDefined) && kEndTexts.count(*text)) {
        out.push_back(static_cast<int64_t>(id));
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace ember::models
