#pragma once
#include <stdexcept>
#include <string>

namespace ember {

// The one exception type the library throws for bad input or misuse. Messages are complete
// sentences fragments meant for a user, e.g. "safetensors: tensor 'w': data_offsets reversed".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace ember
