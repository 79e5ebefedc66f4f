#include "ember/formats/json_file.hpp"

#include <string>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/core/atomic_file.hpp"
#include "strict_json.hpp"

namespace ember {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  using formats_detail::StrictJsonResult;
  const std::string name = quote_name(path.string());
  const std::string text = read_regular_file(path, kJsonFileMaxBytes);
  if (!is_valid_utf8(text)) throw Error(name + ": not valid UTF-8");
  StrictJsonResult parsed = formats_detail::parse_strict_json(text, kJsonFileMaxDepth);
  switch (parsed.status) {
    case StrictJsonResult::Status::Ok:
      return std::move(parsed.value);
    case StrictJsonResult::Status::Syntax:
    case StrictJsonResult::Status::Refused:
      throw Error(name + ": not valid JSON: " + parsed.message);
    case StrictJsonResult::Status::TooDeep:
      throw Error(name + ": JSON nests deeper than " + std::to_string(kJsonFileMaxDepth) +
                  " levels");
    case StrictJsonResult::Status::DuplicateKey:
      break;
  }
  throw Error(name + ": duplicate JSON key " + quote_name(parsed.duplicate_key));
}

}  // namespace ember
