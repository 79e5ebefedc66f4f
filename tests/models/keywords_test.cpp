// Keyword extraction against KeyBERT 0.9.0 (tests/fixtures/keywords, made by
// tools/pipelines/make_keyword_fixtures.py): scikit-learn's CountVectorizer candidates exactly,
// KeyBERT's selection rules (ties included) on hand-made embeddings, and its keywords on 20
// documents with the real all-MiniLM-L6-v2.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "keyword_fixtures.hpp"

namespace ember {
namespace {

using nlohmann::json;
namespace pl = pipelines;
using test::error_of;

json as_pairs(const std::vector<pl::Keyword>& keywords) {
  json out = json::array();
  for (const auto& k : keywords) out.push_back({k.keyword, k.score});
  return out;
}

TEST(Keywords, CandidatesMatchCountVectorizer) {
  const json fixture = read_json_file(test::kKeywordFixtures / "candidates.json");
  const auto& stop = pl::english_stop_words();
  EXPECT_EQ(json(stop), fixture.at("english_stop_words"));
  const json& texts = fixture.at("texts");
  for (const json& c : fixture.at("cases")) {
    pl::KeywordOptions o;
    o.ngram_min = c["ngram_range"][0].get<size_t>();
    o.ngram_max = c["ngram_range"][1].get<size_t>();
    if (c["stop_words"].is_null()) o.stop_words.clear();
    ASSERT_EQ(c["candidates"].size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(json(pl::keyword_candidates(texts[i].get<std::string>(), o)), c["candidates"][i])
          << c.dump().substr(0, 60) << " text " << i << ": " << texts[i];
    }
  }
}

// KeyBERT's own selection functions on small embeddings with exact ties (repeated rows), where
// numpy's argmax and argsort orders decide.
TEST(Keywords, SelectionRulesMatchKeyBertOnTies) {
  const json fixture = read_json_file(test::kKeywordFixtures / "selection.json");
  const std::vector<float> document = fixture.at("document").get<std::vector<float>>();
  const auto words = fixture.at("words").get<std::vector<std::string>>();
  const auto rows = fixture.at("embeddings").get<std::vector<std::vector<float>>>();
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const Tensor embeddings = Tensor::from_f32(
      {static_cast<int64_t>(rows.size()), static_cast<int64_t>(document.size())}, flat);
  ASSERT_GE(fixture.at("calls").size(), 6u);
  for (const json& call : fixture.at("calls")) {
    const pl::KeywordOptions o = test::keyword_options(call.at("config"));
    test::expect_same_keywords(as_pairs(pl::select_keywords(document.data(), embeddings, words, o)),
                               call.at("output"), call.at("config").dump());
  }
  EXPECT_TRUE(pl::select_keywords(document.data(), embeddings, {}, pl::KeywordOptions{}).empty());
  // top_n 0 slices [-0:], every candidate. dune and ember tie exactly: numpy's argsort orders
  // ties differently per CPU (its SIMD sorts are not stable), so KeyBERT gives no reference here;
  // Ember's rule is the stable ascending order reversed, the later candidate first.
  pl::KeywordOptions all;
  all.top_n = 0;
  std::vector<std::string> order;
  for (const auto& k : pl::select_keywords(document.data(), embeddings, words, all))
    order.push_back(k.keyword);
  EXPECT_EQ(order, (std::vector<std::string>{"amber", "basil", "cedar", "ember", "dune", "grove",
                                             "fjord"}));
}

TEST(Keywords, BadOptionsAreErrors) {
  const auto error = [](const std::function<void(pl::KeywordOptions&)>& set) {
    pl::KeywordOptions o;
    set(o);
    return error_of([&] { o.validate(); });
  };
  EXPECT_EQ(error([](pl::KeywordOptions&) {}), "");
  EXPECT_NE(error([](auto& o) { o.ngram_min = 2; }).find("lower bound above"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.ngram_min = 0; }).find("start at 1"), std::string::npos);
  for (const double d : {-0.01, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_NE(error([d](auto& o) {
                o.method = pl::KeywordMethod::Mmr;
                o.diversity = d;
              }).find("outside [0, 1]"),
              std::string::npos)
        << d;
  }
  // Diversity only matters with MMR, as in KeyBERT.
  EXPECT_EQ(error([](auto& o) { o.diversity = 2; }), "");
  EXPECT_NE(error([](auto& o) {
              o.method = pl::KeywordMethod::MaxSum;
              o.nr_candidates = 4;
            }).find("at least top_n (5) candidates, got 4"),
            std::string::npos);
  EXPECT_NE(error([](auto& o) {
              o.method = pl::KeywordMethod::MaxSum;
              o.nr_candidates = 100;
              o.top_n = 10;
            }).find("fewer candidates"),
            std::string::npos);
  EXPECT_NE(error([](auto& o) {
              o.method = pl::KeywordMethod::Mmr;
              o.top_n = 0;
            }).find("top_n 0"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              pl::keyword_candidates("caf\xe9", pl::KeywordOptions{});
            }).find("not valid UTF-8"),
            std::string::npos);
}

TEST(Keywords, MatchesKeyBert) {
  const std::filesystem::path folder = test::keyword_model();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(folder / "model.safetensors"),
                        "missing " << folder << " (run scripts/fetch_models.sh)");
  const json& reference = test::keyword_reference();
  const auto documents = reference.at("documents").get<std::vector<std::string>>();
  ASSERT_EQ(documents.size(), 20u);
  const pl::KeywordExtractor extractor = pl::KeywordExtractor::load(folder);
  for (const json& call : reference.at("calls")) {
    const pl::KeywordOptions o = test::keyword_options(call.at("config"));
    const auto got = extractor(documents, o);
    ASSERT_EQ(got.size(), documents.size());
    for (size_t d = 0; d < documents.size(); ++d) {
      test::expect_same_keywords(
          as_pairs(got[d]), call.at("output")[d],
          call["config"]["name"].get<std::string>() + " document " + std::to_string(d));
    }
  }
  // A document without candidates gets none and leaves the others' keywords alone; a bad one is
  // named by its index.
  const auto mixed = extractor({"", documents[0], "It is what it is.", "x"}, pl::KeywordOptions{});
  ASSERT_EQ(mixed.size(), 4u);
  EXPECT_TRUE(mixed[0].empty());
  test::expect_same_keywords(as_pairs(mixed[1]), reference["calls"][0]["output"][0], "mixed");
  EXPECT_TRUE(mixed[2].empty());
  EXPECT_TRUE(mixed[3].empty());
  EXPECT_NE(error_of([&] {
              extractor({"fine", "bad \xff"}, pl::KeywordOptions{});
            }).find("document 1 is not valid UTF-8"),
            std::string::npos);
}

}  // namespace
}  // namespace ember
