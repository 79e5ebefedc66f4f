// Fuzzes the tokenizer.json loader: any input must load or throw TokenizerError, never crash.
// A loaded tokenizer also encodes (both paths, which must agree) and decodes a fixed text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/tokenizers/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tk = ember::tokenizers;
  try {
    auto tok =
        tk::Tokenizer::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
    const char* text = "Hello world, héllo 世界 <s> [CLS] 123  \t ▁x İ ｶ 𝔘";
    auto e = tok.encode(text, true);
    // The ids-only path (plain text where the components allow it) must agree with the full
    // encode, whatever the configuration.
    if (tok.encode_ids(text, true) != e.ids) __builtin_trap();
    (void)tok.decode(e.ids, false);
    auto p = tok.encode_pair("a b", "c", true);
    (void)tok.decode(p.ids, true);
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
