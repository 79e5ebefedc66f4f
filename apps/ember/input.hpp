#pragma once
// Line-oriented standard input for the data verbs (tokenize, detokenize, embed).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

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

}  // namespace ember::cli
