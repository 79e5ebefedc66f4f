#include "input.hpp"

#include <iostream>

#include "ember/base/error.hpp"
#include "output.hpp"

namespace ember::cli {

bool next_line(std::string& line) {
  if (std::cin.rdbuf()->in_avail() <= 0) out().flush();
  return static_cast<bool>(std::getline(std::cin, line));
}

std::string input_error(size_t line, const std::string& what) {
  return "stdin line " + std::to_string(line) + ": " + what;
}

nlohmann::json parse_input_line(const std::string& text, size_t line) {
  using json = nlohmann::json;
  struct TooDeep {};
  const auto bound_depth = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxInputDepth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return json::parse(text, bound_depth);
  } catch (const TooDeep&) {
    throw Error(
        input_error(line, "JSON nests deeper than " + std::to_string(kMaxInputDepth) + " levels"));
  } catch (const json::exception&) {
    throw Error(input_error(line, "invalid JSON"));
  }
}

void for_each_text_batch(bool plain_lines, size_t batch_size,
                         const std::function<void(const std::vector<std::string>&)>& run) {
  std::vector<std::string> batch;
  std::string line;
  size_t n = 0;
  const auto flush = [&] {
    if (batch.empty()) return;
    run(batch);
    batch.clear();
  };
  while (next_line(line)) {
    ++n;
    if (plain_lines) {
      batch.push_back(line);
    } else {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      try {
        const nlohmann::json j = parse_input_line(line, n);
        if (!j.is_string()) throw Error(input_error(n, "expected a JSON string (or use --lines)"));
        batch.push_back(j.get<std::string>());
      } catch (const Error&) {
        flush();
        throw;
      }
    }
    if (batch.size() >= batch_size) flush();
  }
  flush();
}

}  // namespace ember::cli
