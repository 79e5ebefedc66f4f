#pragma once
// Shared by the model tests: where the reference fixtures live and how to read them.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/formats/json_file.hpp"

namespace ember::test {

// The real-model cache scripts/fetch_models.sh fills: $EMBER_MODEL_CACHE, else
// ~/.cache/ember-models.
inline std::filesystem::path model_cache() {
  const char* cache = std::getenv("EMBER_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  return cache ? std::filesystem::path(cache)
               : std::filesystem::path(home ? home : "") / ".cache" / "ember-models";
}

inline const std::filesystem::path kModelFixtures =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "models";

// The cases.json entries of one kind (encoder, decoder, sentence-transformers).
inline std::vector<nlohmann::json> model_cases(const std::string& kind) {
  const nlohmann::json manifest = read_json_file(kModelFixtures / "cases.json");
  std::vector<nlohmann::json> out;
  for (const auto& c : manifest.at("cases"))
    if (c.at("kind") == kind) out.push_back(c);
  return out;
}

inline std::vector<int64_t> i64_values(const Tensor& t) {
  const std::vector<double> v = t.to_f64_vector();
  return {v.begin(), v.end()};
}

}  // namespace ember::test
