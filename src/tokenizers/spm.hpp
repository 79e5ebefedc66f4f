#pragma once
// SentencePiece (.model) tokenizer with the sentencepiece library's own semantics: its
// normalizer (longest charsmap match, dummy prefix, whitespace collapsing), Unigram Viterbi or
// score-ordered BPE, merged unknown runs, byte fallback and its offsets and decoding rules.
#include <unordered_map>

#include "internal.hpp"

namespace ember::tokenizers::detail {

struct SpmPiece {
  std::string piece;
  float score = 0.0f;
  int type = 1;  // 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE
};

struct SpmConfig {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // 1 UNIGRAM, 2 BPE
  bool byte_fallback = false;
  int64_t unk_id = 0;
  std::string charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

class SpmTokenizer : public Model {
 public:
  explicit SpmTokenizer(SpmConfig config);
  Encoding encode(std::string_view text) const;
  std::string decode(const std::vector<uint32_t>& ids) const;

  void tokenize(std::string_view, std::vector<Token>&) const override {}
  std::optional<uint32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string_view> id_to_token(uint32_t id) const override;
  size_t vocab_size() const override { return cfg_.pieces.size(); }

 private:
  struct Normalized {
    std::string text;
    std::vector<size_t> n2o;  // size text.size() + 1
  };
  Normalized normalize(std::string_view input) const;
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
  size_t user_prefix(std::string_view s) const;
  void encode_unigram(std::string_view s, std::vector<std::pair<size_t, int64_t>>& out) const;
  void encode_bpe(std::string_view s, std::vector<std::pair<size_t, int64_t>>& out) const;
  int64_t piece_id(std::string_view p) const;  // -1 if absent

  SpmConfig cfg_;
  std::vector<uint32_t> trie_;  // charsmap double array
  std::string strings_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<uint64_t, uint32_t> edges_;  // unigram trie over normal/user/unused pieces
  std::vector<int64_t> node_piece_;
  std::vector<std::string> user_defined_;
  float min_score_ = 0.0f, max_score_ = 0.0f;
};

SpmConfig parse_sentencepiece_model(std::string_view data);

}  // namespace ember::tokenizers::detail
