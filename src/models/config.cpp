#include "ember/models/config.hpp"

#include <cmath>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"

namespace ember::models {

Config Config::load(const std::filesystem::path& folder) {
  const std::filesystem::path path = folder / "config.json";
  return Config(read_json_file(path), path.string());
}

Config::Config(nlohmann::json json, std::string source)
    : json_(std::move(json)), source_(std::move(source)) {
  if (!json_.is_object()) fail("not a JSON object");
}

void Config::fail(const std::string& message) const {
  throw Error(source_ + ": " + message);
}

bool Config::has(std::string_view key) const {
  const auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const nlohmann::json& Config::field(std::string_view key) const {
  const auto it = json_.find(key);
  if (it == json_.end() || it->is_null()) fail("missing field '" + std::string(key) + "'");
  return *it;
}

int64_t Config::integer(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  // Some writers store whole numbers as floats (e.g. 512.0).
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::trunc(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail("field '" + std::string(key) + "' is not an integer: " + v.dump());
}

int64_t Config::integer(std::string_view key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

int64_t Config::positive(std::string_view key) const {
  const int64_t v = integer(key);
  if (v < 1) fail("field '" + std::string(key) + "' must be >= 1, got " + std::to_string(v));
  return v;
}

double Config::number(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_number()) fail("field '" + std::string(key) + "' is not a number: " + v.dump());
  return v.get<double>();
}

double Config::number(std::string_view key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

std::string Config::string(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_string()) fail("field '" + std::string(key) + "' is not a string: " + v.dump());
  return v.get<std::string>();
}

std::string Config::string(std::string_view key, std::string_view fallback) const {
  return has(key) ? string(key) : std::string(fallback);
}

bool Config::boolean(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const nlohmann::json& v = field(key);
  if (!v.is_boolean()) fail("field '" + std::string(key) + "' is not a boolean: " + v.dump());
  return v.get<bool>();
}

}  // namespace ember::models
