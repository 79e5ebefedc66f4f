#pragma once
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <memory>
#include <unordered_map>

#include "internal.hpp"

namespace ember::tokenizers {

struct AddedToken {
  uint32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// Added tokens are matched leftmost-longest, before (raw) or after (normalized) normalization.
struct AddedVocabulary {
  std::vector<AddedToken> tokens;
  std::vector<std::string> normalized_content;
  std::unordered_map<uint32_t, size_t> by_id;
  std::unordered_map<std::string, uint32_t> by_content;
  std::array<std::vector<size_t>, 256> by_first_raw, by_first_norm;

  void build(const detail::Normalizer* normalizer);
  bool any_raw() const {
    for (const auto& b : by_first_raw)
      if (!b.empty()) return true;
    return false;
  }
  bool any_normalized() const {
    for (const auto& b : by_first_norm)
      if (!b.empty()) return true;
    return false;
  }
  // (token index or -1, byte range) covering s.
  void find_matches(std::string_view s, bool normalized_pass,
                    std::vector<std::pair<int64_t, std::pair<size_t, size_t>>>& out) const;
};

enum class TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond };
struct Truncation {
  size_t max_length = 512, stride = 0;
  bool left = false;
  TruncationStrategy strategy = TruncationStrategy::LongestFirst;
};
struct Padding {
  bool fixed = false, left = false;
  size_t fixed_length = 0, multiple = 0;
  uint32_t pad_id = 0, pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

struct TokenizerImpl {
  std::unique_ptr<detail::Normalizer> normalizer;
  std::unique_ptr<detail::PreTokenizer> pre_tokenizer;
  std::unique_ptr<detail::Model> model;
  std::unique_ptr<detail::PostProcessor> post_processor;
  std::unique_ptr<detail::Decoder> decoder;
  std::optional<Truncation> truncation;
  std::optional<Padding> padding;
  AddedVocabulary added;
  // What training needs from tokenizer.json (null for the legacy formats): every section but the
  // model, and the model's options without its vocabulary and merges. Both are small, so loading
  // a large tokenizer does not keep a second copy of its vocabulary.
  std::shared_ptr<const nlohmann::json> spec, model_options;
  std::string trained_model;  // the model section (JSON) once trained; what to_json writes

  static std::unique_ptr<TokenizerImpl> from_json(std::string_view text);
  static std::unique_ptr<TokenizerImpl> from_json_value(const nlohmann::json& j);
  void add_token(AddedToken tok, const std::string& ctx);
  // with_offsets = false fills only `ids` (no tokens, offsets, word ids or per-token masks).
  Encoding encode_one(std::string_view text, uint32_t type_id, bool with_offsets = true) const;
  void truncate(Encoding& a, Encoding* b, bool add_special) const;
  Encoding post_process(Encoding a, std::optional<Encoding> b, bool add_special) const;
  Encoding encode(std::string_view a, std::optional<std::string_view> b, bool add_special) const;
  // Exactly encode(text).ids (truncation, special tokens and fixed padding included), without
  // computing token strings or offsets.
  std::vector<uint32_t> encode_ids(std::string_view text, bool add_special) const;
  // encode_one(text).ids on plain text: no alignments at any step. Needs a normalizer and a
  // pre-tokenizer that are text_only() (or none).
  bool has_text_path() const;
  std::vector<uint32_t> encode_text_ids(std::string_view text) const;
  std::string decode(const std::vector<uint32_t>& ids, bool skip_special) const;
  std::string decode_tokens(std::vector<std::string> tokens) const;
};

// The whole of a regular file (FIFOs and devices are refused without blocking), at most `limit`
// bytes. Core's read_regular_file does the same; this module does not depend on core.
std::string read_file_bounded(const std::string& path, size_t limit);

inline constexpr size_t kMaxTokenizerJsonBytes = size_t{1} << 30;
inline constexpr size_t kMaxVocabFileBytes = size_t{1} << 28;

// GPT-2 vocab.json (already parsed) + merges.txt.
std::unique_ptr<TokenizerImpl> gpt2_from_vocab(const nlohmann::json& vocab,
                                               const std::string& vocab_json,
                                               const std::string& merges_txt);

}  // namespace ember::tokenizers
