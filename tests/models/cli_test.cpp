// ember embed, similarity and generate end to end, on the committed fixture folders.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../cli_runner.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/pipelines/sentence_embedding.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

using test::run_ember;
using test::shell_quote;

const std::filesystem::path& kFixtures = test::kModelFixtures;

TEST(ModelsCli, EmbedPrintsTheLibrarysEmbeddingsPerLine) {
  const std::filesystem::path dir = kFixtures / "st_dense_normalize";
  const std::vector<std::string> texts = {"Hello, world!", "a", "Tokenization splits words."};
  std::string input;
  for (const auto& t : texts) input += nlohmann::json(t).dump() + "\n";
  const auto r = run_ember("embed --batch-size 2 --model " + shell_quote(dir.string()), input);
  ASSERT_EQ(r.status, 0) << r.err;
  const Tensor want = pipelines::SentenceEmbedder::load(dir).embed(texts, false, 2);
  std::istringstream lines(r.out);
  std::string line;
  for (int64_t i = 0; i < want.dim(0); ++i) {
    ASSERT_TRUE(std::getline(lines, line));
    const auto row = nlohmann::json::parse(line).get<std::vector<float>>();
    ASSERT_EQ(static_cast<int64_t>(row.size()), want.dim(1));
    for (int64_t d = 0; d < want.dim(1); ++d)
      EXPECT_EQ(row[static_cast<size_t>(d)],
                want.to_f32_vector()[static_cast<size_t>(i * want.dim(1) + d)]);
  }
  EXPECT_FALSE(std::getline(lines, line));

  // --lines reads raw text; bad input is one error line naming the line, nothing on stdout.
  const auto plain =
      run_ember("embed --lines --model " + shell_quote(dir.string()), "Hello, world!\n");
  ASSERT_EQ(plain.status, 0) << plain.err;
  // Another batch shape changes GEMM's summation order, so compare at F32 rounding scale.
  const auto first = nlohmann::json::parse(plain.out.substr(0, plain.out.find('\n')));
  const auto batched = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  ASSERT_EQ(first.size(), batched.size());
  for (size_t d = 0; d < first.size(); ++d)
    EXPECT_NEAR(first[d].get<double>(), batched[d].get<double>(), 1e-5);
  const auto bad = run_ember("embed --model " + shell_quote(dir.string()), "\"ok\"\n42\n");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("stdin line 2"), std::string::npos) << bad.err;
  // The line before the bad one still gets its result, as a complete line.
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  const auto deep = run_ember("embed --model " + shell_quote(dir.string()), "[[[[[[[[[[[[[[[[\n");
  EXPECT_EQ(deep.status, 1);
  EXPECT_NE(deep.err.find("nests deeper"), std::string::npos) << deep.err;
  const auto missing = run_ember("embed --model /nonexistent/model", "\"x\"\n");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model"), std::string::npos) << missing.err;
}

TEST(ModelsCli, SimilarityRanksByCosine) {
  const std::filesystem::path dir = kFixtures / "st_mean";
  const auto r = run_ember("similarity --rank --model " + shell_quote(dir.string()) +
                           " 'the quick brown fox' 'a quick brown fox' 'numbers 3.14' 'the fox'");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  double previous = 2.0;
  int count = 0;
  while (std::getline(lines, line)) {
    const auto o = nlohmann::json::parse(line);
    const double s = o.at("similarity").get<double>();
    EXPECT_LE(s, previous);
    EXPECT_LE(std::fabs(s), 1.0 + 1e-9);
    previous = s;
    ++count;
  }
  EXPECT_EQ(count, 3);
}

// "t<id>": the token of id in the tokenizer below. (Built with append: GCC 12 warns falsely on
// "t" + std::to_string(...).)
std::string token_name(int64_t id) {
  std::string name = "t";
  return name.append(std::to_string(id));
}

// A word-level tokenizer over the tiny decoders' 256 ids ("t0".."t255"), fused on decoding.
std::string numbered_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < 256; ++i) vocab[token_name(i)] = i;
  nlohmann::json t = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", nlohmann::json::array()},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
                      {"post_processor", nullptr},
                      {"decoder", {{"type", "Fuse"}}},
                      {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "t0"}}}};
  return t.dump();
}

TEST(ModelsCli, GenerateStreamsGreedyTokensOfTheReference) {
  const std::filesystem::path src = kFixtures / "llama";
  const auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "llama_with_tokenizer";
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    std::filesystem::copy_file(src / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer.json") << numbered_tokenizer_json();
  const SafeTensors ref = SafeTensors::open(src / "reference.safetensors");
  const std::vector<double> prompt = ref.tensor("prompt_ids").to_f64_vector();
  const std::vector<double> expected = ref.tensor("generated_ids").to_f64_vector();
  std::string prompt_text, expected_text;
  for (double id : prompt) {
    if (!prompt_text.empty()) prompt_text += ' ';
    prompt_text += token_name(static_cast<int64_t>(id));
  }
  std::vector<int64_t> expected_ids;
  for (double id : expected) {
    expected_ids.push_back(static_cast<int64_t>(id));
    expected_text += token_name(static_cast<int64_t>(id));
  }
  const auto r =
      run_ember("generate --json --temperature 0 --max-tokens " + std::to_string(expected.size()) +
                " --model " + shell_quote(dir.string()) + " --prompt " + shell_quote(prompt_text));
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t last = r.out.rfind('\n', r.out.size() - 2);
  ASSERT_NE(last, std::string::npos);
  const auto result = nlohmann::json::parse(r.out.substr(last + 1));
  EXPECT_EQ(result.at("ids").get<std::vector<int64_t>>(), expected_ids);
  EXPECT_EQ(result.at("text"), expected_text);
  EXPECT_EQ(r.out.substr(0, last), expected_text);  // the streamed text, then the JSON line

  // A stop string cuts the text before it; the prompt must fit the context.
  const std::string stop = token_name(expected_ids[3]);
  const auto stopped =
      run_ember("generate --json --max-tokens 32 --stop " + stop + " --model " +
                shell_quote(dir.string()) + " --prompt " + shell_quote(prompt_text));
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  const auto s = nlohmann::json::parse(
      stopped.out.substr(stopped.out.rfind('\n', stopped.out.size() - 2) + 1));
  EXPECT_EQ(s.at("finish_reason"), "stop");
  EXPECT_EQ(s.at("text").get<std::string>().find(stop), std::string::npos);
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "t5 ";
  const auto too_long = run_ember("generate --model " + shell_quote(dir.string()) + " --prompt " +
                                  shell_quote(long_prompt));
  EXPECT_EQ(too_long.status, 1);
  EXPECT_NE(too_long.err.find("context"), std::string::npos) << too_long.err;
}

}  // namespace
}  // namespace ember
