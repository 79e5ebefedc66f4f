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
  for_each_batch<std::string>(
      plain_lines, batch_size,
      [](const nlohmann::json& j, size_t line) {
        if (!j.is_string())
          throw Error(input_error(line, "expected a JSON string (or use --lines)"));
        return j.get<std::string>();
      },
      run);
}

}  // namespace ember::cli
