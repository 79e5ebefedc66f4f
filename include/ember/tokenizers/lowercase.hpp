#pragma once
// Unicode lowercase for callers outside the tokenizer pipeline that must compare text as the
// references do (question answering merges answers whose lowercase texts are equal).
#include <string>
#include <string_view>

namespace ember::tokenizers {

// Lowercase of UTF-8 text, as the Lowercase normalizer maps it (Rust's str::to_lowercase:
// Python's str.lower but for the final-sigma rule). Throws TokenizerError for invalid UTF-8.
std::string lowercase(std::string_view text);

}  // namespace ember::tokenizers
