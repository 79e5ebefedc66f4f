// Generation: the samplers' semantics, stop conditions and streaming on a scripted model, and
// batches of real fixture models against the same prompts run one by one.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/generate.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

namespace gen = generation;

using test::i64_values;
const std::filesystem::path& kFixtures = test::kModelFixtures;

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  out.reserve(p.size());
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

TEST(Sampling, GreedyAndFilters) {
  const std::vector<float> logits = log_probs({0.1, 0.2, 0.3, 0.4});
  gen::SamplingParams p;
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.0), 3);  // temperature 0: argmax
  p.temperature = 1.0f;
  // Plain sampling walks the cumulative distribution 0.1, 0.3, 0.6, 1.0.
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.05), 0);
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.25), 1);
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.59), 2);
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.61), 3);
  // top_p = 0.5 drops 0.1 and 0.2 (their mass 0.3 <= 0.5) and keeps {0.3, 0.4}: 3/7, 4/7.
  gen::SamplingParams top_p = p;
  top_p.top_p = 0.5f;
  EXPECT_EQ(gen::sample_token(logits, top_p, {}, {}, 0.42), 2);
  EXPECT_EQ(gen::sample_token(logits, top_p, {}, {}, 0.43), 3);
  EXPECT_EQ(gen::sample_token(logits, top_p, {}, {}, 0.0), 2);
  // top_k = 2 keeps the same two tokens.
  gen::SamplingParams top_k = p;
  top_k.top_k = 2;
  EXPECT_EQ(gen::sample_token(logits, top_k, {}, {}, 0.0), 2);
  EXPECT_EQ(gen::sample_token(logits, top_k, {}, {}, 0.99), 3);
  // min_p = 0.8 keeps tokens with p >= 0.32: only the last.
  gen::SamplingParams min_p = p;
  min_p.min_p = 0.8f;
  EXPECT_EQ(gen::sample_token(logits, min_p, {}, {}, 0.0), 3);
  // A high temperature flattens: 0.25 each within 1e-3 at T = 1000.
  gen::SamplingParams hot = p;
  hot.temperature = 1000.0f;
  EXPECT_EQ(gen::sample_token(logits, hot, {}, {}, 0.2495), 0);
  EXPECT_EQ(gen::sample_token(logits, hot, {}, {}, 0.2505), 1);
}

TEST(Sampling, Penalties) {
  // Repetition penalty divides positive logits of seen tokens (prompt or output) and multiplies
  // negative ones: token 1 (seen) drops from 2.0 to 1.0 below token 0's 1.5.
  const std::vector<float> logits = {1.5f, 2.0f, -1.0f};
  gen::SamplingParams p;
  p.repetition_penalty = 2.0f;
  EXPECT_EQ(gen::sample_token(logits, p, {1}, {}, 0.0), 0);
  EXPECT_EQ(gen::sample_token(logits, p, {}, {}, 0.0), 1);
  // Presence and frequency penalties count the output only.
  gen::SamplingParams presence;
  presence.presence_penalty = 0.6f;
  EXPECT_EQ(gen::sample_token(logits, presence, {}, {1}, 0.0), 0);
  EXPECT_EQ(gen::sample_token(logits, presence, {1}, {}, 0.0), 1);
  gen::SamplingParams frequency;
  frequency.frequency_penalty = 0.3f;
  EXPECT_EQ(gen::sample_token(logits, frequency, {}, {1}, 0.0), 1);     // 2.0 - 0.3 > 1.5
  EXPECT_EQ(gen::sample_token(logits, frequency, {}, {1, 1}, 0.0), 0);  // 2.0 - 0.6 < 1.5
}

// Emits a fixed script of ids, one per step, whatever the input.
class ScriptedModel final : public models::CausalLM {
 public:
  explicit ScriptedModel(std::vector<int64_t> script) : script_(std::move(script)) {}
  int64_t vocab_size() const override { return 8; }
  int64_t context_length() const override { return 64; }
  int64_t max_tokens() const override { return 64; }
  models::KvCache new_cache(int64_t, int64_t) const override { return {}; }
  Tensor forward(const Tensor& ids, std::span<const int64_t>, const Tensor&, models::KvCache&,
                 bool) override {
    const int64_t rows = ids.dim(0);
    std::vector<float> logits(static_cast<size_t>(rows * 8), 0.0f);
    const int64_t next = script_[std::min(step_++, script_.size() - 1)];
    for (int64_t r = 0; r < rows; ++r) logits[static_cast<size_t>(r * 8 + next)] = 10.0f;
    return Tensor::from_f32({rows, 1, 8}, logits);
  }

 private:
  std::vector<int64_t> script_;
  size_t step_ = 0;
};

// Single characters, concatenated when decoded; id 7 is a special end token.
tokenizers::Tokenizer char_tokenizer() {
  return tokenizers::Tokenizer::from_json(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 7, "content": "</s>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null,
    "decoder": {"type": "Fuse"},
    "model": {"type": "WordLevel", "unk_token": "?",
              "vocab": {"a": 0, "b": 1, "c": 2, "S": 3, "T": 4, "?": 5, "é": 6, "</s>": 7}}})");
}

TEST(Generate, StopStringsEosLengthAndStreaming) {
  const tokenizers::Tokenizer tok = char_tokenizer();
  struct Case {
    std::vector<int64_t> script;
    std::vector<std::string> stops;
    int64_t max_new;
    std::string text;
    gen::FinishReason finish;
    size_t ids;
  };
  const std::vector<Case> cases = {
      {{0, 1, 3, 4, 2}, {"ST"}, 10, "ab", gen::FinishReason::Stop, 4},
      {{0, 3, 1, 2}, {"ST"}, 4, "aSbc", gen::FinishReason::Length, 4},  // held 'S' is released
      {{0, 1, 7, 2}, {}, 10, "ab", gen::FinishReason::Eos, 3},
      {{0, 3}, {"ST"}, 2, "aS", gen::FinishReason::Length, 2},
      {{6, 6, 0}, {"éa"}, 10, "é", gen::FinishReason::Stop, 3},
  };
  for (const Case& c : cases) {
    ScriptedModel model(c.script);
    gen::GenerationConfig config;
    config.max_new_tokens = c.max_new;
    config.stop_strings = c.stops;
    config.eos_ids = {7};
    std::string streamed;
    const auto out =
        gen::generate(model, &tok, {{0}}, config, [&](size_t row, std::string_view piece) {
          EXPECT_EQ(row, 0u);
          streamed += piece;
        });
    EXPECT_EQ(out[0].text, c.text);
    EXPECT_EQ(streamed, c.text);  // nothing of a stop string is ever streamed
    EXPECT_EQ(out[0].finish, c.finish) << c.text;
    EXPECT_EQ(out[0].ids.size(), c.ids) << c.text;
  }
}

TEST(Generate, Errors) {
  ScriptedModel model({0});
  gen::GenerationConfig config;
  EXPECT_THROW(gen::generate(model, nullptr, {{}}, config), Error);
  EXPECT_THROW(gen::generate(model, nullptr, {std::vector<int64_t>(64, 0)}, config), Error);
}

// Greedy generation through generate() equals transformers' generate() for every decoder fixture,
// and a batch of prompts of different lengths (left-padded) gives each prompt's own result.
TEST(Generate, GreedyMatchesTransformersAndBatchesMatchSingleRuns) {
  int checked = 0;
  for (const auto& c : test::model_cases("decoder")) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const std::filesystem::path dir = kFixtures / name;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const std::vector<int64_t> prompt = i64_values(ref.tensor("prompt_ids"));
    const std::vector<int64_t> expected = i64_values(ref.tensor("generated_ids"));
    gen::GenerationConfig config = gen::GenerationConfig::from_folder(dir);
    config.max_new_tokens = static_cast<int64_t>(expected.size());
    {
      const auto model = models::load_causal_lm(dir);
      EXPECT_EQ(gen::generate(*model, nullptr, {prompt}, config)[0].ids, expected);
    }
    const std::vector<int64_t> shorter(prompt.begin() + 3, prompt.end());
    config.max_new_tokens = 12;
    std::vector<std::vector<int64_t>> alone;
    for (const auto& p : {shorter, prompt}) {
      const auto model = models::load_causal_lm(dir);
      alone.push_back(gen::generate(*model, nullptr, {p}, config)[0].ids);
    }
    const auto model = models::load_causal_lm(dir);
    const auto batch = gen::generate(*model, nullptr, {shorter, prompt}, config);
    EXPECT_EQ(batch[0].ids, alone[0]);
    EXPECT_EQ(batch[1].ids, alone[1]);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(Generate, SeedReproducesSampling) {
  const std::filesystem::path dir = kFixtures / "llama";
  gen::GenerationConfig config;
  config.max_new_tokens = 16;
  config.sampling.temperature = 1.5f;
  config.sampling.top_p = 0.95f;
  const std::vector<int64_t> prompt = {1, 17, 33};
  auto run = [&](uint64_t seed) {
    config.sampling.seed = seed;
    const auto model = models::load_causal_lm(dir);
    return gen::generate(*model, nullptr, {prompt}, config)[0].ids;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

}  // namespace
}  // namespace ember
