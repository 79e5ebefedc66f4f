#pragma once
// Internal: bounded, strict JSON parsing for file headers and indexes. nlohmann's SAX interface
// parses iteratively, so nesting is bounded here by counting, never by the stack; duplicate
// object keys are reported instead of silently merged.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace ember::formats_detail {

struct StrictJsonResult {
  enum class Status { Ok, Syntax, TooDeep, DuplicateKey };
  Status status = Status::Ok;
  nlohmann::json value;
  std::string message;                // nlohmann's syntax message, for Syntax
  std::vector<std::string> key_path;  // enclosing object keys of the duplicate, outermost first
  std::string duplicate_key;
};

StrictJsonResult parse_strict_json(std::string_view text, int max_depth);

// 'name' for error messages: single-quoted, control bytes escaped as \xNN so a message stays on
// one line, and cut after 200 bytes.
std::string quote_name(std::string_view name);

}  // namespace ember::formats_detail
