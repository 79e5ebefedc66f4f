#pragma once
#include <string>
#include <string_view>

namespace ember {

// Strict UTF-8, as Rust's str::from_utf8 and the JSON and tokenizer references accept it: no
// overlong forms, surrogates, code points above U+10FFFF or truncated sequences.
bool is_valid_utf8(std::string_view text);
// The code points of `text`. Throws ember::Error when it is not valid UTF-8 (is_valid_utf8).
std::u32string decode_utf8(std::string_view text);

}  // namespace ember
