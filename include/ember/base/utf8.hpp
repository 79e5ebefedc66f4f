#pragma once
#include <string>
#include <string_view>

namespace ember {

// Strict UTF-8, as Rust's str::from_utf8 and the JSON and tokenizer references accept it: no
// overlong forms, surrogates, code points above U+10FFFF or truncated sequences.
bool is_valid_utf8(std::string_view text);
// The code points of `text`. Throws ember::Error when it is not valid UTF-8 (is_valid_utf8).
std::u32string decode_utf8(std::string_view text);

// Appends code point `c` (at most U+10FFFF; not checked) to `out` as UTF-8. Inline: the byte-level
// tokenizers call it once per byte.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

}  // namespace ember
