// Bad model folders: each is an ember::Error that names the field, tensor or architecture.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "../core/ops_test_util.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/encoder.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

const std::filesystem::path& kFixtures = test::kModelFixtures;

// A copy of fixture `name` with its config edited and optionally one weight dropped or reshaped.
std::filesystem::path broken_copy(const std::string& name, const std::string& tag,
                                  const std::function<void(nlohmann::json&)>& edit_config,
                                  const std::string& drop = "", const std::string& truncate = "") {
  auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "broken_models" / (name + "_" + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  nlohmann::json config = read_json_file(kFixtures / name / "config.json");
  edit_config(config);
  std::ofstream(dir / "config.json") << config.dump();
  const SafeTensors weights = SafeTensors::open(kFixtures / name / "model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const std::string& n : weights.names()) {
    if (n == drop) continue;
    Tensor t = weights.tensor(n);
    if (n == truncate) t = t.narrow(0, 0, t.dim(0) - 1);
    tensors.emplace(n, t);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

using test::expect_error;

const auto unchanged = [](nlohmann::json&) {};

TEST(ModelErrors, ConfigFields) {
  auto dir = broken_copy("bert", "no_hidden", [](nlohmann::json& c) { c.erase("hidden_size"); });
  expect_error([&] { models::load_encoder(dir); }, {"config.json", "missing field 'hidden_size'"});
  dir = broken_copy("bert", "heads", [](nlohmann::json& c) { c["num_attention_heads"] = 5; });
  expect_error([&] { models::load_encoder(dir); }, {"hidden_size", "num_attention_heads 5"});
  dir = broken_copy("bert", "type", [](nlohmann::json& c) { c["model_type"] = "bogus"; });
  expect_error([&] { models::load_encoder(dir); }, {"unknown encoder architecture", "'bogus'"});
  dir = broken_copy("llama", "type", [](nlohmann::json& c) { c["model_type"] = "bert"; });
  expect_error([&] { models::load_causal_lm(dir); }, {"unknown decoder architecture", "'bert'"});
  dir = broken_copy("llama", "kv", [](nlohmann::json& c) { c["num_key_value_heads"] = 3; });
  expect_error([&] { models::load_causal_lm(dir); }, {"num_key_value_heads 3"});
  dir = broken_copy("llama", "rope", [](nlohmann::json& c) {
    c["rope_parameters"] = {{"rope_type", "longrope"}, {"rope_theta", 10000.0}};
  });
  expect_error([&] { models::load_causal_lm(dir); }, {"rope type 'longrope'"});
  dir = broken_copy("llama", "layers", [](nlohmann::json& c) { c["num_hidden_layers"] = "two"; });
  expect_error([&] { models::load_causal_lm(dir); }, {"'num_hidden_layers' is not an integer"});
  // ALBERT's layer groups must each run at least once, as transformers indexes them.
  dir = broken_copy("albert", "groups", [](nlohmann::json& c) { c["num_hidden_groups"] = 5; });
  expect_error([&] { models::load_encoder(dir); }, {"num_hidden_groups 5", "num_hidden_layers"});
  dir = broken_copy("albert", "inner", [](nlohmann::json& c) { c["inner_group_num"] = 0; });
  expect_error([&] { models::load_encoder(dir); }, {"inner_group_num 0"});
}

TEST(ModelErrors, Weights) {
  auto dir = broken_copy("llama", "missing", unchanged, "model.layers.1.mlp.up_proj.weight");
  expect_error([&] { models::load_causal_lm(dir); },
               {"missing weight 'model.layers.1.mlp.up_proj.weight'", "model.safetensors"});
  dir = broken_copy("bert", "shape", unchanged, "", "encoder.layer.0.intermediate.dense.weight");
  expect_error([&] { models::load_encoder(dir); },
               {"'encoder.layer.0.intermediate.dense.weight'", "has shape", "expected"});
  dir = broken_copy(
      "llama", "untied", [](nlohmann::json& c) { c["tie_word_embeddings"] = false; },
      "lm_head.weight");
  expect_error([&] { models::load_causal_lm(dir); }, {"lm_head.weight"});
  expect_error([&] { models::load_encoder(kFixtures / "no_such_model"); }, {"no_such_model"});
  // The embeddings are embedding_size wide, not hidden_size.
  dir = broken_copy("electra", "width", [](nlohmann::json& c) { c["embedding_size"] = 16; });
  expect_error([&] { models::load_encoder(dir); },
               {"'embeddings.word_embeddings.weight'", "has shape"});
  dir = broken_copy("albert", "mapping", unchanged, "encoder.embedding_hidden_mapping_in.weight");
  expect_error([&] { models::load_encoder(dir); },
               {"missing weight 'encoder.embedding_hidden_mapping_in.weight'"});
}

}  // namespace
}  // namespace ember
