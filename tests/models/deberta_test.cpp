// DeBERTa-v2 against transformers (tests/fixtures/pipelines, made by
// tools/pipelines/make_fixtures.py): the encoder's hidden states on sequences longer than its
// position buckets, the log buckets themselves, and configs the loader must refuse. Its task
// heads run through the pipelines in text_tasks_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"
#include "ember/nn/disentangled_attention.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

const std::filesystem::path kDir =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pipelines";

TEST(DebertaV2, HiddenStatesMatchTransformers) {
  const std::filesystem::path dir = kDir / "deberta_hidden";
  const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
  const std::vector<int64_t> ids = test::i64_values(ref.tensor("input_ids"));
  const std::vector<int64_t> mask = test::i64_values(ref.tensor("attention_mask"));
  const std::vector<float> want = ref.tensor("last_hidden_state").to_f32_vector();
  const int64_t width = ref.tensor("input_ids").dim(1);
  const int64_t hidden = ref.tensor("last_hidden_state").dim(2);
  std::vector<std::vector<int64_t>> sequences;
  std::vector<int64_t> reference_row;  // the reference's flat row of each packed token
  for (size_t r = 0; r * static_cast<size_t>(width) < ids.size(); ++r) {
    sequences.emplace_back();
    for (int64_t t = 0; t < width; ++t) {
      const size_t flat = r * static_cast<size_t>(width) + static_cast<size_t>(t);
      if (mask[flat] == 0) continue;
      sequences.back().push_back(ids[flat]);
      reference_row.push_back(static_cast<int64_t>(flat));
    }
  }
  // The fixture's point: sequences longer than position_buckets (8), so that distances fall into
  // logarithmic buckets.
  ASSERT_GT(sequences.front().size(), 8u);
  const auto encoder = models::load_encoder(dir);
  ASSERT_EQ(encoder->hidden_size(), hidden);
  const std::vector<float> got =
      encoder->forward(models::TokenBatch::from_sequences(sequences)).to_f32_vector();
  ASSERT_EQ(got.size(), reference_row.size() * static_cast<size_t>(hidden));
  double worst = 0;
  for (size_t row = 0; row < reference_row.size(); ++row) {
    for (int64_t c = 0; c < hidden; ++c) {
      const size_t g = row * static_cast<size_t>(hidden) + static_cast<size_t>(c);
      const size_t w = static_cast<size_t>(reference_row[row] * hidden + c);
      worst = std::max(worst, std::fabs(static_cast<double>(got[g]) - want[w]));
    }
  }
  // The bar for F32 hidden states; two 32-wide layers round at ~1e-6.
  EXPECT_LE(worst, 1e-4);
}

TEST(DebertaV2, LogBucketsMatchTransformers) {
  const nlohmann::json fixture = read_json_file(kDir / "deberta_buckets.json");
  const int64_t first = fixture["distances"][0];
  for (const nlohmann::json& c : fixture["cases"]) {
    const int64_t buckets = c["position_buckets"], max_position = c["max_relative_positions"];
    const auto want = c["buckets"].get<std::vector<int64_t>>();
    SCOPED_TRACE("position_buckets " + std::to_string(buckets) + ", max_relative_positions " +
                 std::to_string(max_position));
    int64_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const int64_t distance = first + static_cast<int64_t>(i);
      if (nn::log_bucket_position(distance, buckets, max_position) != want[i]) {
        if (++mismatches <= 5) ADD_FAILURE() << "distance " << distance << ": want " << want[i];
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(DebertaV2, UnsupportedConfigsAreErrors) {
  const std::filesystem::path dir = kDir / "deberta_hidden";
  const nlohmann::json base = read_json_file(dir / "config.json");
  const nn::Weights weights = nn::Weights::open(dir);
  const auto load_with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = base;
    j[key] = value;
    return test::error_of([&] { models::load_encoder(models::Config(j, "test config"), weights); });
  };
  EXPECT_NE(load_with("pos_att_type", "c2p|p2p").find("pos_att_type 'p2p'"), std::string::npos);
  EXPECT_NE(load_with("pos_att_type", 3).find("pos_att_type"), std::string::npos);
  EXPECT_NE(load_with("conv_groups", 2).find("conv_groups 2"), std::string::npos);
  EXPECT_NE(load_with("conv_kernel_size", 4).find("conv_kernel_size 4"), std::string::npos);
  EXPECT_NE(load_with("max_relative_positions", 5).find("max_relative_positions 5"),
            std::string::npos);
  // A config naming a part the checkpoint lacks: the missing weight is named.
  EXPECT_NE(load_with("type_vocab_size", 2).find("token_type_embeddings"), std::string::npos);
  EXPECT_EQ(load_with("conv_groups", 1), "");
}

// DeBERTa-v3's released checkpoints hold lm_predictions.lm_head.* but leave legacy at its default
// (true), under which transformers would build a random cls.predictions head: say which setting
// selects the stored one.
TEST(DebertaV2, StoredMaskedLmHeadOfTheOtherLayoutNamesTheSetting) {
  const std::filesystem::path dir = kDir / "deberta_mlm";
  nlohmann::json j = read_json_file(dir / "config.json");
  ASSERT_EQ(j.value("legacy", true), false);
  j.erase("legacy");
  const std::string error = test::error_of([&] {
    models::load_head_model(models::Config(j, "test config"), nn::Weights::open(dir),
                            models::HeadKind::MaskedLM);
  });
  EXPECT_NE(error.find("\"legacy\": false"), std::string::npos) << error;
}

}  // namespace
}  // namespace ember
