#pragma once
// Checked, buffered stdout for every verb. Output is written in whole lines: a command that
// fails after printing some of its output leaves only complete lines on stdout (the results of
// the inputs before the failing one) and exits 1 with one `error:` line on stderr. A failed write
// to stdout (a full disk, /dev/full, a closed pipe) is itself such a failure.
#include <string>
#include <string_view>

namespace ember::cli {

class Output {
 public:
  // Appends one line (a '\n' is added); writes the buffer out once it holds kFlushBytes.
  void line(std::string_view text);
  // Appends text that may hold several '\n'-terminated lines.
  void text(std::string_view text);
  // Writes everything buffered; throws ember::Error if stdout refuses it.
  void flush();

 private:
  static constexpr size_t kFlushBytes = 1 << 16;
  std::string buffer_;
};

// The process's one stdout writer. main() flushes it after the command, and on failure writes
// out the complete lines buffered so far before the `error:` line.
Output& out();

}  // namespace ember::cli
