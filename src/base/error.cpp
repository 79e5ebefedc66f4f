#include "ember/base/error.hpp"

namespace ember {

std::string quote_name(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr size_t kMaxShown = 200;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return out + "'";
}

}  // namespace ember
