// SmolLM2-135M-Instruct, a real decoder: greedy generation on the safetensors folder that
// tools/models/smollm2_reference.py dequantizes from the packaged GGUF, token-identical to
// transformers' on the 10 prompts of tests/fixtures/models/smollm2/greedy.json (32 new tokens,
// EOS from generation_config.json). That folder needs the Python ML stack to make, which CI does
// not have, so the test is skipped where it is missing; Ember's own GGUF reading (the GGUF
// issue) will let CI make it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "../test_env.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/generation/generate.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

std::filesystem::path smollm2_folder() {
  const char* cache = std::getenv("EMBER_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path root =
      cache ? std::filesystem::path(cache)
            : std::filesystem::path(home ? home : "") / ".cache" / "ember-models";
  return root / "derived" / "SmolLM2-135M-Instruct-hf";
}

TEST(SmolLM2, GreedyMatchesTransformersOnTenPrompts) {
  const std::filesystem::path folder = smollm2_folder();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(folder / "model.safetensors"),
                        "missing " << folder << " (tools/models/smollm2_reference.py makes it)");
  const nlohmann::json greedy = read_json_file(test::kModelFixtures / "smollm2" / "greedy.json");
  const auto model = models::load_causal_lm(folder);
  const auto tokenizer = tokenizers::Tokenizer::load((folder / "tokenizer.json").string());
  generation::GenerationConfig config = generation::GenerationConfig::from_folder(folder);
  config.max_new_tokens = 32;
  int checked = 0;
  for (const auto& c : greedy.at("cases")) {
    const std::string prompt = c.at("prompt");
    const std::vector<uint32_t> ids = tokenizer.encode_ids(prompt, true);
    const std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
    EXPECT_EQ(prompt_ids, c.at("prompt_ids").get<std::vector<int64_t>>()) << prompt;
    const auto out = generation::generate(*model, &tokenizer, {prompt_ids}, config);
    EXPECT_EQ(out[0].ids, c.at("generated_ids").get<std::vector<int64_t>>()) << prompt;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

}  // namespace
}  // namespace ember
