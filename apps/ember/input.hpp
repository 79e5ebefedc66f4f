#pragma once
// Line-oriented standard input for the data verbs (tokenize, detokenize, embed).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

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

// Reads stdin as texts, one JSON string a line (blank lines skipped) or, with `plain_lines`, each
// line as it is, and hands them to `run` in batches of up to `batch_size`, each as soon as it is
// full. At a bad line, the texts before it still go to `run` before its error is thrown, so
// they get their answers (README).
void for_each_text_batch(bool plain_lines, size_t batch_size,
                         const std::function<void(const std::vector<std::string>&)>& run);

}  // namespace ember::cli
