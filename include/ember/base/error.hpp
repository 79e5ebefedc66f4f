#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace ember {

// The one exception type the library throws for bad input or misuse. Messages are complete
// sentences fragments meant for a user, e.g. "safetensors: tensor 'w': data_offsets reversed".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// 'name' for error messages: single-quoted, control bytes escaped as \xNN so a message stays on
// one line, and cut after 200 bytes.
std::string quote_name(std::string_view name);

}  // namespace ember
