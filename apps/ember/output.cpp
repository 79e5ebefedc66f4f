#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ember/base/error.hpp"

namespace ember::cli {

void Output::line(std::string_view text) {
  buffer_ += text;
  buffer_ += '\n';
  if (buffer_.size() >= kFlushBytes) flush();
}

void Output::text(std::string_view text) {
  buffer_ += text;
  if (buffer_.size() >= kFlushBytes) flush();
}

void Output::flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? "nothing written" : std::strerror(errno);
      buffer_.clear();  // a second attempt must not repeat what may have been written
      throw Error("cannot write to stdout: " + why);
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

Output& out() {
  static Output output;
  return output;
}

}  // namespace ember::cli
