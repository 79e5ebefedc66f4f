#pragma once
// Shared by the keyword tests: KeyBERT's outputs on all-MiniLM-L6-v2 (tests/fixtures/keywords,
// made by tools/pipelines/make_keyword_fixtures.py) and how they are compared.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "ember/formats/json_file.hpp"
#include "ember/pipelines/keywords.hpp"
#include "model_fixtures.hpp"

namespace ember::test {

inline const std::filesystem::path kKeywordFixtures =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "keywords";

inline const nlohmann::json& keyword_reference() {
  static const nlohmann::json j = read_json_file(kKeywordFixtures / "expected.json");
  return j;
}

// The fixture's model: the all-MiniLM-L6-v2 folder of the model cache.
inline std::filesystem::path keyword_model() {
  return model_cache() / keyword_reference().at("model").get<std::string>();
}

// The KeywordOptions of one of the fixture's KeyBERT calls (its extract_keywords arguments).
inline pipelines::KeywordOptions keyword_options(const nlohmann::json& config) {
  pipelines::KeywordOptions o;
  o.ngram_min = config.at("keyphrase_ngram_range").at(0).get<size_t>();
  o.ngram_max = config.at("keyphrase_ngram_range").at(1).get<size_t>();
  o.top_n = config.at("top_n").get<size_t>();
  if (config.contains("stop_words") && config["stop_words"].is_null()) o.stop_words.clear();
  if (config.value("use_mmr", false)) {
    o.method = pipelines::KeywordMethod::Mmr;
    o.diversity = config.at("diversity").get<double>();
  }
  if (config.value("use_maxsum", false)) {
    o.method = pipelines::KeywordMethod::MaxSum;
    o.nr_candidates = config.at("nr_candidates").get<size_t>();
  }
  return o;
}

// got and want are [[keyword, score], ...]. The keywords must be identical and in the same
// order (the generator refused documents where a decision is closer than 2e-5, so F32 rounding
// cannot reorder them). Each side's score is its own F32 cosine rounded to 4 decimals (KeyBERT's
// round(x, 4)); the unrounded values differ by float error (~1e-6), which moves a rounded score
// by at most one unit of the 4th decimal, when it lies next to a rounding boundary. Scores are
// compared in those units, so that 0.1 + 1e-4's binary form cannot add a spurious excess.
inline void expect_same_keywords(const nlohmann::json& got, const nlohmann::json& want,
                                 const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where << ": " << got.dump() << " vs " << want.dump();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i][0], want[i][0])
        << where << " rank " << i << ": " << got.dump() << " vs " << want.dump();
    const double ours = got[i][1].get<double>(), theirs = want[i][1].get<double>();
    EXPECT_NEAR(ours * 1e4, std::round(ours * 1e4), 1e-6) << where << ": not rounded: " << ours;
    EXPECT_LE(std::abs(std::llround(ours * 1e4) - std::llround(theirs * 1e4)), 1)
        << where << " rank " << i << ": " << ours << " vs " << theirs;
  }
}

}  // namespace ember::test
