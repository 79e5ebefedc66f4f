// Fuzzes encoding and decoding with fixed tokenizers covering the main pipelines: the first
// input byte picks the tokenizer, the rest is the text (often invalid UTF-8).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/tokenizers/tokenizer.hpp"

namespace {
namespace tk = ember::tokenizers;

const char* kTokenizers[] = {
    // Byte-level BPE with a Roberta post-processor, truncation and padding.
    R"({"version":"1.0","truncation":{"max_length":8,"stride":2,"strategy":"LongestFirst","direction":"Left"},
        "padding":{"strategy":"BatchLongest","direction":"Right","pad_id":0,"pad_type_id":0,"pad_token":"<pad>"},
        "added_tokens":[{"id":0,"content":"<pad>","special":true,"normalized":false},
                        {"id":1,"content":"<mask>","special":true,"lstrip":true,"normalized":false}],
        "normalizer":{"type":"NFKC"},
        "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true,"use_regex":true},
        "post_processor":{"type":"RobertaProcessing","sep":["</s>",3],"cls":["<s>",2]},
        "decoder":{"type":"ByteLevel"},
        "model":{"type":"BPE","vocab":{"<pad>":0,"<mask>":1,"<s>":2,"</s>":3,"Ġ":4,"h":5,"e":6,"l":7,"o":8,"he":9,"ll":10,"Ġh":11,"hell":12},
                 "merges":["h e","l l","Ġ h","he ll"]}})",
    // BERT.
    R"({"version":"1.0","normalizer":{"type":"BertNormalizer","lowercase":true},
        "pre_tokenizer":{"type":"BertPreTokenizer"},
        "post_processor":{"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]},
        "decoder":{"type":"WordPiece","prefix":"##"},
        "model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"a":3,"##b":4,"ab":5,"##a":6}}})",
    // Unigram + Metaspace + NFD/strip accents + byte fallback.
    R"({"version":"1.0","normalizer":{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"},{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "}]},
        "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
        "decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}]},
        "model":{"type":"Unigram","unk_id":0,"byte_fallback":true,"vocab":[["<unk>",0.0],["▁",-1.0],["a",-2.0],["▁a",-1.5],["b",-2.5],["<0x41>",-5],["<0xC3>",-5],["<0xA9>",-5]]}})",
    // Many splitters and text normalizers in a row, over a word-level vocabulary.
    R"({"version":"1.0","added_tokens":[{"id":1,"content":"ab","special":false,"normalized":true,"single_word":true}],
        "normalizer":{"type":"Sequence","normalizers":[{"type":"Nmt"},{"type":"Strip","strip_left":true,"strip_right":false},
                      {"type":"Lowercase"},{"type":"Replace","pattern":{"String":"b"},"content":"bb"},{"type":"Prepend","prepend":"▁"}]},
        "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\p{N}+|\\s"},"behavior":"MergedWithNext","invert":false},
                      {"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Contiguous"},
                      {"type":"UnicodeScripts"},{"type":"WhitespaceSplit"},{"type":"FixedLength","length":3}]},
        "model":{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"ab":1,"a":2,"b":3,"1":4,"▁a":5,"bb":6}}})",
};

std::vector<std::unique_ptr<tk::Tokenizer>>& tokenizers() {
  static auto* list = [] {
    auto* v = new std::vector<std::unique_ptr<tk::Tokenizer>>;
    for (const char* j : kTokenizers)
      v->push_back(std::make_unique<tk::Tokenizer>(tk::Tokenizer::from_json(j)));
    return v;
  }();
  return *list;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& toks = tokenizers();
  const tk::Tokenizer& tok = *toks[data[0] % toks.size()];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const bool add_special = (data[0] & 0x80) != 0;
    auto e = tok.encode(text, add_special);
    for (auto [b, end] : e.offsets)
      if (b > end || end > text.size()) __builtin_trap();
    // The ids-only path (no alignments) must agree with the full encode.
    if (tok.encode_ids(text, add_special) != e.ids) __builtin_trap();
    (void)tok.decode(e.ids, false);
    auto stream = tok.decode_stream(false);
    for (uint32_t id : e.ids) (void)stream.step(id);
    size_t half = text.size() / 2;
    (void)tok.encode_pair(text.substr(0, half), text.substr(half), true);
  } catch (const tk::TokenizerError&) {
  }
  // Decoding arbitrary ids must not crash either.
  std::vector<uint32_t> ids;
  for (size_t i = 1; i + 1 < size && ids.size() < 64; i += 2)
    ids.push_back(data[i] | (data[i + 1] << 8));
  try {
    (void)tok.decode(ids, false);
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
