// ember keywords end to end: KeyBERT's keywords (tests/fixtures/keywords) with the CLI's options
// and field names, and its bad options as one error line before any model is loaded.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "../cli_runner.hpp"
#include "../test_env.hpp"
#include "keyword_fixtures.hpp"

namespace ember {
namespace {

using nlohmann::json;
using test::run_ember;
using test::shell_quote;

// The first documents only: each run loads the model and embeds every candidate.
constexpr size_t kDocuments = 6;

json reference_call(const std::string& name) {
  for (const json& c : test::keyword_reference().at("calls"))
    if (c["config"]["name"] == name) return c;
  ADD_FAILURE() << "no reference call " << name;
  return json();
}

TEST(KeywordsCli, PrintsKeyBertKeywords) {
  const std::filesystem::path folder = test::keyword_model();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(folder / "model.safetensors"),
                        "missing " << folder << " (run scripts/fetch_models.sh)");
  const json& documents = test::keyword_reference().at("documents");
  std::string input = "\"\"\n";  // an empty document: no keywords, as in KeyBERT
  for (size_t d = 0; d < kDocuments; ++d) input += documents[d].dump() + "\n";
  const std::pair<const char*, const char*> runs[] = {
      {"", "default"},
      {"--top-n 10 --stop-words none", "top10_no_stop_words"},
      {"--mmr --diversity 0.7 --ngram 1,2", "mmr_0.7"},
      {"--max-sum --candidates 12", "max_sum"},
  };
  for (const auto& [options, name] : runs) {
    const std::string args =
        std::string("keywords --model ") + shell_quote(folder.string()) + " " + options;
    const auto r = run_ember(args, input);
    ASSERT_EQ(r.status, 0) << args << ": " << r.err;
    std::istringstream out(r.out);
    std::vector<json> lines;
    for (std::string line; std::getline(out, line);) lines.push_back(json::parse(line));
    ASSERT_EQ(lines.size(), kDocuments + 1) << args;
    EXPECT_EQ(lines[0], json::array()) << args;
    const json want = reference_call(name).at("output");
    for (size_t d = 0; d < kDocuments; ++d) {
      json pairs = json::array();
      for (const json& k : lines[d + 1]) {
        ASSERT_EQ(k.size(), 2u) << k.dump();
        pairs.push_back({k.at("keyword"), k.at("score")});
      }
      test::expect_same_keywords(pairs, want[d], args + " document " + std::to_string(d));
    }
  }
}

TEST(KeywordsCli, BadOptionsAreOneErrorLine) {
  // Options are checked before the model loads: no model is needed to refuse them.
  const auto expect_error = [](const std::string& options, const std::string& what) {
    const auto r = run_ember("keywords --model /nonexistent " + options, "\"a text\"\n");
    EXPECT_EQ(r.status, 1) << options;
    EXPECT_TRUE(r.out.empty()) << options;
    EXPECT_NE(r.err.find(what), std::string::npos) << options << ": " << r.err;
  };
  expect_error("--mmr --diversity 1.5", "diversity 1.5 is outside [0, 1]");
  expect_error("--mmr --diversity -0.1", "outside [0, 1]");
  expect_error("--mmr --max-sum", "--mmr and --max-sum exclude each other");
  expect_error("--max-sum --candidates 3", "at least top_n (5) candidates, got 3");
  expect_error("--max-sum --candidates 60 --top-n 10", "use fewer candidates");
  expect_error("--ngram 3,1", "lower bound above its upper bound");
  expect_error("--ngram 0,1", "start at 1");
  expect_error("--ngram 2", "is not A,B");
  expect_error("--ngram a,b", "is not A,B");
  expect_error("--stop-words french", "not english or none");
  expect_error("--diversity 0.3", "--mmr");      // diversity without MMR
  expect_error("--candidates 30", "--max-sum");  // a pool without Max Sum
  expect_error("--mmr --top-n 0", "top_n 0");
  expect_error("--top-n -1", "--top-n");
  expect_error("--max-sum --candidates -5", "--candidates");
}

}  // namespace
}  // namespace ember
