#pragma once
// Internal: bounded, strict JSON parsing for file headers and indexes. nlohmann's SAX interface
// parses iteratively, so nesting is bounded here by counting, never by the stack; duplicate
// object keys are reported instead of silently merged.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ember::formats_detail {

enum class JsonKind { Null, Boolean, Number, String, Object, Array };

// What the parser does with a value it meets, decided before the value is stored: a file format
// refuses a misplaced value at once (a header of 33 million `{}` costs nothing) and skips fields it
// ignores without building them. Skipped values still count towards the depth limit.
struct JsonVerdict {
  enum class Action { Keep, Skip, Refuse };
  Action action = Action::Keep;
  std::string message;  // for Refuse
};
// `path`: the enclosing object keys, outermost first, "[]" for an enclosing array; empty for the
// root value.
using JsonSchema = std::function<JsonVerdict(const std::vector<std::string>& path, JsonKind kind)>;

// clang-tidy 14 reports every struct with an nlohmann::json member (struct { nlohmann::json v; }
// alone shows it): it reads the library's noexcept move constructor as possibly throwing.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct StrictJsonResult {
  enum class Status { Ok, Syntax, TooDeep, DuplicateKey, Refused };
  Status status = Status::Ok;
  nlohmann::json value;
  std::string message;                // nlohmann's syntax message, for Syntax; the schema's, for
                                      // Refused
  std::vector<std::string> key_path;  // enclosing object keys of the duplicate, outermost first
  std::string duplicate_key;
};

// Without a schema every value is kept.
StrictJsonResult parse_strict_json(std::string_view text, int max_depth,
                                   const JsonSchema& schema = {});

}  // namespace ember::formats_detail
