#include "ember/formats/json_file.hpp"

#include <fstream>
#include <iterator>
#include <string>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "strict_json.hpp"

namespace ember {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  using formats_detail::quote_name;
  using formats_detail::StrictJsonResult;
  const std::string name = quote_name(path.string());
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw Error(name + ": no such file");
  if (!std::filesystem::is_regular_file(status)) throw Error(name + ": not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(name + ": cannot read: " + ec.message());
  if (size > kJsonFileMaxBytes) {
    throw Error(name + ": larger than " + std::to_string(kJsonFileMaxBytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(name + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() != size) throw Error(name + ": changed while being read");
  if (!is_valid_utf8(text)) throw Error(name + ": not valid UTF-8");
  StrictJsonResult parsed = formats_detail::parse_strict_json(text, kJsonFileMaxDepth);
  switch (parsed.status) {
    case StrictJsonResult::Status::Ok:
      return std::move(parsed.value);
    case StrictJsonResult::Status::Syntax:
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
