#pragma once
// The text side of encoder-decoder models, from the files transformers' tokenizers read:
// - the folder's tokenizer.json when it has one;
// - Marian's: source.spm for the source, target.spm for decoding, and vocab.json mapping their
//   pieces to the model's ids (MarianTokenizer); with tokenizer_config.json's separate_vocabs,
//   target_vocab.json maps the target's. A leading ">>lang<<" is one token;
// - M2M100's: sentencepiece.bpe.model and vocab.json (fairseq's dictionary), the "__xx__"
//   language codes numbered after vocab.json (M2M100Tokenizer);
// - mBART-cc25's: sentencepiece.bpe.model alone, with fairseq's ids (<s> <pad> </s> <unk>, then
//   the model's pieces one id further on), its 25 language codes and <mask> after them
//   (MBartTokenizer);
// - T5's and Pegasus's: spiece.model alone, read as T5Tokenizer and PegasusTokenizer convert it
//   (tokenizer_config.json's extra_ids and offset; ember/tokenizers/spiece_conversion.hpp).
// Without tokenizer.json, a piece the vocabulary lacks is <unk> and encode appends </s>.
// Plus the language codes of multilingual models.
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
  // The folder's form, as above. Throws ember::Error naming what is missing or malformed.
  static Seq2SeqTokenizer load(const std::filesystem::path& folder);

  // The model's ids of `text` with the special tokens the tokenizer adds (EOS), or none.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // The decoder's ids to text; special tokens (EOS, pad, language codes...) skipped.
  std::string decode(const std::vector<int64_t>& ids) const;
  // The source side's id of `token`.
  std::optional<int64_t> token_id(std::string_view token) const;
  // Every token of the source side's vocabulary, by id ("" for an id without one).
  std::vector<std::string> tokens() const;
  // mBART-cc25's MBartTokenizer: the source's language code follows its text ("text </s>
  // en_XX") and the target's starts the decoder, where mBART-50's comes first.
  bool codes_follow_text() const { return codes_follow_text_; }

 private:
  explicit Seq2SeqTokenizer(tokenizers::Tokenizer source) : source_(std::move(source)) {}

  tokenizers::Tokenizer source_;
  // Marian's target.spm; the other sentencepiece forms decode with source_.
  std::optional<tokenizers::Tokenizer> target_;
  // Without tokenizer.json: ids through vocab_ (source pieces and language codes) and pieces_
  // (the decoder's ids).
  bool mapped_ = false;
  bool marian_ = false;
  bool codes_follow_text_ = false;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> pieces_;
  int64_t eos_ = -1, unk_ = -1;
};

// The token id of language `lang` in a multilingual vocabulary: the token itself (NLLB's
// "eng_Latn", mBART's "en_XX", Marian's ">>fra<<") or M2M100's "__lang__". Throws ember::Error
// naming `what` (the option) and listing some of the codes the vocabulary has.
int64_t language_code_id(const Seq2SeqTokenizer& tokenizer, std::string_view lang,
                         std::string_view what);

// How translation from `src` to `tgt` reaches a model of config.json's `model_type`, the input
// being prefix + the text's ids + suffix:
// - m2m_100 (NLLB too) and mBART-50: [src] text </s>, the target's code forced as the first
//   generated id;
// - mBART-cc25 (codes_follow_text): text </s> [src], the decoder started by the target's code;
// - marian: >>tgt<< text </s> when its vocabulary has such codes (a bilingual one, without them,
//   takes the pair as given).
// Other types have no language codes: ember::Error.
struct LanguagePair {
  std::vector<int64_t> prefix, suffix;
  int64_t forced_bos = -1;     // -1: none
  int64_t decoder_start = -1;  // -1: the model's
};
LanguagePair language_pair(const Seq2SeqTokenizer& tokenizer, std::string_view model_type,
                           std::string_view src, std::string_view tgt);

}  // namespace ember::generation
