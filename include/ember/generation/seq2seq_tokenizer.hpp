#pragma once
// The text side of encoder-decoder models: the folder's tokenizer.json, or Marian's files
// (source.spm for the source, target.spm for decoding, and vocab.json mapping their pieces to the
// model's ids, as transformers' MarianTokenizer does: a piece vocab.json lacks is <unk>, </s> is
// appended, a leading ">>lang<<" is one token). Plus the language codes of multilingual models.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/tokenizers/tokenizer.hpp"

namespace ember::generation {

class Seq2SeqTokenizer {
 public:
  // tokenizer.json when the folder has one, else source.spm + target.spm + vocab.json. Throws
  // ember::Error naming what is missing or malformed.
  static Seq2SeqTokenizer load(const std::filesystem::path& folder);

  // The model's ids of `text` with the special tokens the tokenizer adds (EOS), or none.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Special tokens (EOS, pad, language codes...) skipped.
  std::string decode(const std::vector<int64_t>& ids) const;
  std::optional<int64_t> token_id(std::string_view token) const;
  // Every token of the vocabulary, by id.
  std::vector<std::string> tokens() const;

 private:
  explicit Seq2SeqTokenizer(tokenizers::Tokenizer source) : source_(std::move(source)) {}

  tokenizers::Tokenizer source_;
  // Marian only: target.spm, vocab.json and its inverse, and the specials decode skips.
  std::optional<tokenizers::Tokenizer> target_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> pieces_;
  int64_t eos_ = -1, unk_ = -1, pad_ = -1;
};

// The token id of language `lang` in a multilingual vocabulary: the token itself (NLLB's
// "eng_Latn", mBART's "en_XX", Marian's ">>fra<<") or M2M100's "__lang__". Throws ember::Error
// naming `what` (the option) and listing some of the codes the vocabulary has.
int64_t language_code_id(const Seq2SeqTokenizer& tokenizer, std::string_view lang,
                         std::string_view what);

// How translation from `src` to `tgt` reaches a model of config.json's `model_type`: m2m_100
// (NLLB too) and mbart (mBART-50's form) start the source with its code ([src] text </s>) and
// force the target's code as the first generated id; marian starts the source with >>tgt<< when
// its vocabulary has such codes (a bilingual one, without them, takes the pair as given).
// Other types have no language codes: ember::Error.
struct LanguagePair {
  std::vector<int64_t> prefix;  // ids before the text's
  int64_t forced_bos = -1;      // -1: none
};
LanguagePair language_pair(const Seq2SeqTokenizer& tokenizer, std::string_view model_type,
                           std::string_view src, std::string_view tgt);

}  // namespace ember::generation
