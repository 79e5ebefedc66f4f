// Decoder fixtures written as GGUF the way llama.cpp's converter writes them
// (tools/models/make_gguf_models.py: its tensor names, llama's permuted q/k rows, GPT-2's
// transposed linears, its metadata keys) load through the same model code and give the same
// logits (<= 1e-4, the bar of the safetensors cases, whose reasoning in cases.json holds: the
// weights are the same numbers) and the same greedy tokens as the transformers reference made
// from the safetensors folder.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "ember/formats/gguf.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/generate.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/nn/weights.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::i64_values;

struct GgufCase {
  const char* folder;  // the safetensors fixture and its reference outputs
  const char* file;    // its GGUF copy under tests/fixtures/models/gguf
  ops::RopeLayout layout;
};

const GgufCase kCases[] = {
    {"llama", "llama.f32.gguf", ops::RopeLayout::Interleaved},
    {"llama_f16", "llama_f16.f16.gguf", ops::RopeLayout::Interleaved},
    {"qwen2", "qwen2.f32.gguf", ops::RopeLayout::HalfSplit},
    {"gpt2", "gpt2.f32.gguf", ops::RopeLayout::HalfSplit},
};

fs::path gguf_path(const GgufCase& c) {
  return test::kModelFixtures / "gguf" / c.file;
}

TEST(GgufModels, LogitsMatchTransformers) {
  for (const GgufCase& c : kCases) {
    SCOPED_TRACE(c.file);
    const fs::path dir = test::kModelFixtures / c.folder;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const Tensor ids = ref.tensor("input_ids");
    const std::vector<int64_t> mask = i64_values(ref.tensor("attention_mask"));
    const std::vector<int64_t> positions = i64_values(ref.tensor("position_ids"));
    const Tensor want = ref.tensor("logits");
    const auto lm = models::load_causal_lm(gguf_path(c));
    ASSERT_EQ(lm->vocab_size(), want.dim(2));
    models::KvCache cache = lm->new_cache(ids.dim(0), ids.dim(1));
    const Tensor logits = lm->forward(ids, positions, ref.tensor("attention_mask"), cache, true);
    ASSERT_EQ(logits.shape(), want.shape());
    const std::vector<float> got = logits.to_f32_vector();
    const std::vector<float> expected = want.to_f32_vector();
    const auto vocab = static_cast<size_t>(want.dim(2));
    double worst = 0;
    for (size_t r = 0; r < mask.size(); ++r) {
      if (mask[r] == 0) continue;  // padded positions are stored as 0
      for (size_t i = 0; i < vocab; ++i) {
        worst = std::max(worst, std::fabs(double(got[r * vocab + i]) - expected[r * vocab + i]));
      }
    }
    EXPECT_LE(worst, 1e-4);
  }
}

TEST(GgufModels, GreedyTokensMatchTransformers) {
  for (const GgufCase& c : kCases) {
    SCOPED_TRACE(c.file);
    const fs::path dir = test::kModelFixtures / c.folder;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const std::vector<int64_t> prompt = i64_values(ref.tensor("prompt_ids"));
    const std::vector<int64_t> expected = i64_values(ref.tensor("generated_ids"));
    generation::GenerationConfig config = generation::GenerationConfig::from_folder(dir);
    config.max_new_tokens = static_cast<int64_t>(expected.size());
    const auto model = models::load_causal_lm(gguf_path(c));
    EXPECT_EQ(generation::generate(*model, nullptr, {prompt}, config)[0].ids, expected);
  }
}

TEST(GgufModels, ConfigAndNamesFollowTheHuggingFaceFolder) {
  for (const GgufCase& c : kCases) {
    SCOPED_TRACE(c.file);
    const GgufFile file = GgufFile::open(gguf_path(c));
    const models::Config from_gguf = models::Config::from_gguf(file, c.file);
    const models::Config folder = models::Config::load(test::kModelFixtures / c.folder);
    EXPECT_EQ(from_gguf.model_type(), folder.model_type());
    for (const char* key :
         {"vocab_size", "hidden_size", "num_attention_heads", "num_key_value_heads",
          "num_hidden_layers", "intermediate_size", "max_position_embeddings", "head_dim", "n_embd",
          "n_head", "n_layer", "n_inner", "n_positions", "bos_token_id", "eos_token_id"}) {
      if (folder.has(key)) {
        EXPECT_EQ(from_gguf.integer(key), folder.integer(key)) << key;
      }
    }
    for (const char* key : {"rms_norm_eps", "layer_norm_epsilon"}) {
      // GGUF stores epsilons as F32: the F64 value rounded to float.
      if (folder.has(key)) {
        EXPECT_EQ(from_gguf.number(key), double(float(folder.number(key)))) << key;
      }
    }
    const auto source = nn::gguf_weight_source(file);
    EXPECT_EQ(source->rope_layout(), c.layout);
    // Every name the safetensors folder has (but GPT-2's attention-mask buffers, which the
    // converter drops) is offered under the same name, with the same shape.
    const SafeTensors st = SafeTensors::open(test::kModelFixtures / c.folder / "model.safetensors");
    const std::string drop = std::string(c.folder) == "gpt2" ? "transformer." : "";
    for (const SafeTensorInfo& info : st.tensors()) {
      if (info.name.ends_with(".attn.bias") || info.name.ends_with(".attn.masked_bias")) continue;
      const std::string name(info.name.substr(drop.size()));
      ASSERT_TRUE(source->contains(name)) << name;
      EXPECT_EQ(source->tensor(name).shape(), info.shape) << name;
    }
  }
}

TEST(GgufModels, RefusesWhatItCannotRun) {
  const GgufFile fixture = GgufFile::open(test::kModelFixtures / "gguf" / "llama.f32.gguf");
  auto with = [&](const std::string& key, const GgufValue& value) {
    std::vector<GgufKeyValue> metadata = fixture.metadata();
    bool replaced = false;
    for (GgufKeyValue& kv : metadata) {
      if (kv.key == key) kv.value = value, replaced = true;
    }
    if (!replaced) metadata.push_back({key, value});
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const GgufTensorInfo& t : fixture.tensors())
      tensors.emplace_back(t.name, fixture.tensor(t.name));
    return GgufFile::from_bytes(serialize_gguf(metadata, tensors));
  };
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const GgufFile mamba = with("general.architecture", GgufValue::string("mamba"));
  expect_error([&] { models::Config::from_gguf(mamba, "x.gguf"); }, "'mamba' is not supported");
  expect_error([&] { nn::gguf_weight_source(mamba); }, "'mamba' is not supported");
  expect_error(
      [&] {
        models::Config::from_gguf(
            with("llama.rope.dimension_count", GgufValue::unsigned_int(GgufType::U32, 4)),
            "x.gguf");
      },
      "partial rotary");
  expect_error(
      [&] {
        models::Config::from_gguf(with("llama.rope.scaling.type", GgufValue::string("longrope")),
                                  "x.gguf");
      },
      "unsupported rope.scaling.type 'longrope'");
  expect_error(
      [&] {
        models::Config::from_gguf(with("llama.block_count", GgufValue::string("two")), "x.gguf");
      },
      "'llama.block_count' is not an integer");
}

}  // namespace
}  // namespace ember
