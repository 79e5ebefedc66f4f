// Fuzzes training: the first input byte picks the trainer and its vocabulary size, the rest is
// the corpus (lines, often invalid UTF-8). A trained tokenizer must write tokenizer.json that
// loads back and encodes the corpus.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ember/tokenizers/tokenizer.hpp"

namespace {
namespace tk = ember::tokenizers;

constexpr const char* kTemplates[] = {
    R"({"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","vocab":{},"merges":[]}})",
    R"({"normalizer":{"type":"BertNormalizer","lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{}}})",
    R"({"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"WordLevel","unk_token":"<unk>","vocab":{}}})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned kind = data[0] % 3;
  const size_t vocab = 8 + (data[0] >> 2) * 8;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  tk::Trainer trainer;
  if (kind == 0) {
    tk::BpeTrainer t;
    t.vocab_size = vocab + 256;
    t.max_token_length = data[0] % 7;
    t.end_of_word_suffix = "</w>";
    trainer = t;
  } else if (kind == 1) {
    tk::WordPieceTrainer t;
    t.bpe.vocab_size = vocab;
    t.bpe.limit_alphabet = 4;
    t.bpe.special_tokens = {"[UNK]"};
    trainer = t;
  } else {
    trainer = tk::WordLevelTrainer{vocab, 1, {"<unk>"}};
  }
  try {
    tk::Tokenizer tok = tk::Tokenizer::from_json(kTemplates[kind]);
    size_t pos = 0;
    tk::TrainOptions options;
    options.skip_invalid_utf8 = (data[0] & 1) != 0;
    tok.train_from_iterator(
        trainer,
        [&](std::string& line) {
          if (pos >= text.size()) return false;
          size_t nl = text.find('\n', pos);
          nl = nl == std::string_view::npos ? text.size() : nl + 1;
          line.assign(text.substr(pos, nl - pos));
          pos = nl;
          return true;
        },
        options);
    tk::Tokenizer back = tk::Tokenizer::from_json(tok.to_json(false));
    if (back.encode_ids(text, false) != tok.encode_ids(text, false)) __builtin_trap();
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
