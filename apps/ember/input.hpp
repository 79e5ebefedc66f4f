#pragma once
// Line-oriented standard input for the data verbs (tokenize, detokenize, embed).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ember/base/error.hpp"

namespace ember::cli {

// Valid inputs nest at most one level (a string, or an array of strings or ids); the bound stops
// deep nesting such as a line of ten million '[' at once, without building anything.
inline constexpr int kMaxInputDepth = 8;

// Reads the next stdin line. Whatever is buffered for stdout goes out first when the read would
// wait for more input, so an interactive caller gets each answer before it sends the next line.
bool next_line(std::string& line);

// "stdin line N: what".
std::string input_error(size_t line, const std::string& what);

// One stdin line as JSON, nesting bounded by kMaxInputDepth. Throws ember::Error naming the line.
nlohmann::json parse_input_line(const std::string& text, size_t line);

// Reads stdin as inputs, one JSON value a line (blank lines skipped) or, with `plain_lines`, each
// line as it is (a JSON string), made an input by `parse` (which throws ember::Error naming the
// line for a bad one), and hands them to `run` in batches of up to `batch_size`, each as soon as
// it is full. At a bad line, the inputs before it still go to `run` before its error is thrown,
// so they get their answers (README).
template <typename Input>
void for_each_batch(bool plain_lines, size_t batch_size,
                    const std::function<Input(const nlohmann::json& value, size_t line)>& parse,
                    const std::function<void(const std::vector<Input>&)>& run) {
  std::vector<Input> batch;
  std::string line;
  size_t n = 0;
  const auto flush = [&] {
    if (batch.empty()) return;
    run(batch);
    batch.clear();
  };
  while (next_line(line)) {
    ++n;
    if (!plain_lines) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
    }
    try {
      batch.push_back(parse(plain_lines ? nlohmann::json(line) : parse_input_line(line, n), n));
    } catch (const Error&) {
      flush();
      throw;
    }
    if (batch.size() >= batch_size) flush();
  }
  flush();
}

// for_each_batch over texts: JSON strings, or plain lines.
void for_each_text_batch(bool plain_lines, size_t batch_size,
                         const std::function<void(const std::vector<std::string>&)>& run);

}  // namespace ember::cli
