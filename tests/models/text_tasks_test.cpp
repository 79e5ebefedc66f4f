// The text pipelines (classification, zero-shot, fill-mask, NER) against transformers.pipeline on
// tiny random task-head models (tests/fixtures/pipelines, made by
// tools/pipelines/make_fixtures.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/models/heads.hpp"
#include "ember/pipelines/text_tasks.hpp"

namespace ember {
namespace {

using nlohmann::json;
namespace pl = pipelines;

const std::filesystem::path kDir =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pipelines";

// Scores are softmax/sigmoid outputs of logits from a 2-layer, 32-wide encoder: F32 rounding of
// another summation order moves a logit by ~1e-6, far inside the 1e-4 bar; the generator
// refuses outputs whose scores are closer than 1e-4, so the orders compared exactly are stable.
constexpr double kScoreTolerance = 1e-4;

const json& expected() {
  static const json j = read_json_file(kDir / "expected.json");
  return j;
}

// The calls on models whose name ends with `suffix`; every such model folder must have
// `per_model` of them, so that no architecture's fixtures go untested.
std::vector<json> calls_of(const std::string& suffix, size_t per_model) {
  std::vector<json> out;
  std::map<std::string, size_t> per_folder;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.ends_with(suffix)) per_folder[name] = 0;
  }
  for (const json& c : expected()["calls"]) {
    const std::string model = c["model"].get<std::string>();
    if (!model.ends_with(suffix)) continue;
    out.push_back(c);
    ++per_folder[model];
  }
  EXPECT_GE(per_folder.size(), 6u) << suffix;
  for (const auto& [model, n] : per_folder) EXPECT_EQ(n, per_model) << model;
  return out;
}

template <typename T>
const T& cached(const std::string& model) {
  static std::map<std::string, std::unique_ptr<T>> cache;
  auto& slot = cache[model];
  if (!slot) slot = std::make_unique<T>(T::load(kDir / model));
  return *slot;
}

TEST(TextTasks, ClassificationMatchesTransformers) {
  const auto calls = calls_of("_seq", 6);
  for (const json& c : calls) {
    const auto& model = cached<pl::TextClassifier>(c["model"]);
    pl::TextClassifier::Options o;
    o.top_k = c["options"]["top_k"].is_null() ? 0 : c["options"]["top_k"].get<size_t>();
    if (c["options"].contains("function_to_apply"))
      o.function = pl::parse_score_function(c["options"]["function_to_apply"]);
    o.batch_size = 4;  // several length-sorted chunks
    const auto texts = c["inputs"].get<std::vector<std::string>>();
    const auto got = model(texts, o);
    ASSERT_EQ(got.size(), texts.size());
    for (size_t t = 0; t < texts.size(); ++t) {
      const json& want = c["output"][t];
      SCOPED_TRACE(c["model"].get<std::string>() + " " + c["options"].dump() + " text " +
                   std::to_string(t));
      ASSERT_EQ(got[t].size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[t][i].label, want[i]["label"].get<std::string>());
        EXPECT_NEAR(got[t][i].score, want[i]["score"].get<double>(), kScoreTolerance);
      }
    }
  }
}

TEST(TextTasks, ZeroShotMatchesTransformers) {
  const auto calls = calls_of("_nli", 8);
  // The label orders: entailment is id 2, 0 and 1.
  EXPECT_EQ(cached<pl::ZeroShotClassifier>("bert_nli").entailment_id(), 2);
  EXPECT_EQ(cached<pl::ZeroShotClassifier>("roberta_nli").entailment_id(), 0);
  EXPECT_EQ(cached<pl::ZeroShotClassifier>("distilbert_nli").entailment_id(), 1);
  EXPECT_EQ(cached<pl::ZeroShotClassifier>("deberta_nli").entailment_id(), 1);  // of two labels
  for (const json& c : calls) {
    const auto& model = cached<pl::ZeroShotClassifier>(c["model"]);
    pl::ZeroShotClassifier::Options o;
    o.labels = c["options"]["candidate_labels"].get<std::vector<std::string>>();
    o.hypothesis_template = c["options"]["hypothesis_template"];
    o.multi_label = c["options"]["multi_label"];
    o.batch_size = 5;
    const auto got = model(c["inputs"].get<std::vector<std::string>>(), o);
    ASSERT_EQ(got.size(), c["output"].size());
    for (size_t s = 0; s < got.size(); ++s) {
      const json& want = c["output"][s];
      SCOPED_TRACE(c["model"].get<std::string>() + " " + c["options"].dump());
      EXPECT_EQ(got[s].sequence, want["sequence"].get<std::string>());
      EXPECT_EQ(got[s].labels, want["labels"].get<std::vector<std::string>>());
      ASSERT_EQ(got[s].scores.size(), want["scores"].size());
      for (size_t i = 0; i < got[s].scores.size(); ++i)
        EXPECT_NEAR(got[s].scores[i], want["scores"][i].get<double>(), kScoreTolerance);
    }
  }
}

TEST(TextTasks, FillMaskMatchesTransformers) {
  const auto calls = calls_of("_mlm", 2);
  for (const json& c : calls) {
    const auto& model = cached<pl::FillMask>(c["model"]);
    pl::FillMask::Options o;
    if (c["options"].contains("top_k")) o.top_k = c["options"]["top_k"];
    o.batch_size = 2;
    const auto got = model(c["inputs"].get<std::vector<std::string>>(), o);
    ASSERT_EQ(got.size(), c["output"].size());
    for (size_t t = 0; t < got.size(); ++t) {
      // One mask: a list of predictions; several: a list per mask.
      json want = c["output"][t];
      if (!want[0].is_array()) want = json::array({want});
      SCOPED_TRACE(c["model"].get<std::string>() + " input " + std::to_string(t));
      ASSERT_EQ(got[t].size(), want.size());
      for (size_t m = 0; m < want.size(); ++m) {
        ASSERT_EQ(got[t][m].size(), want[m].size());
        for (size_t i = 0; i < want[m].size(); ++i) {
          const auto& p = got[t][m][i];
          EXPECT_EQ(p.token, want[m][i]["token"].get<uint32_t>());
          EXPECT_EQ(p.token_str, want[m][i]["token_str"].get<std::string>());
          EXPECT_EQ(p.sequence, want[m][i]["sequence"].get<std::string>());
          EXPECT_NEAR(p.score, want[m][i]["score"].get<double>(), kScoreTolerance);
        }
      }
    }
  }
}

TEST(TextTasks, TokenClassificationMatchesTransformers) {
  const auto calls = calls_of("_tok", 5);
  for (const json& c : calls) {
    const auto& model = cached<pl::TokenClassifier>(c["model"]);
    pl::TokenClassifier::Options o;
    o.aggregation = pl::parse_aggregation(c["options"]["aggregation_strategy"]);
    o.batch_size = 3;
    const auto texts = c["inputs"].get<std::vector<std::string>>();
    const auto got = model(texts, o);
    ASSERT_EQ(got.size(), texts.size());
    const bool grouped = o.aggregation != pl::Aggregation::None;
    for (size_t t = 0; t < texts.size(); ++t) {
      const json& want = c["output"][t];
      SCOPED_TRACE(c["model"].get<std::string>() + " " + c["options"].dump() + " text " +
                   std::to_string(t));
      ASSERT_EQ(got[t].size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        const pl::Entity& e = got[t][i];
        EXPECT_EQ(e.entity, want[i][grouped ? "entity_group" : "entity"].get<std::string>());
        EXPECT_EQ(e.word, want[i]["word"].get<std::string>());
        EXPECT_EQ(e.start, want[i]["start"].get<size_t>());
        EXPECT_EQ(e.end, want[i]["end"].get<size_t>());
        if (!grouped) {
          EXPECT_EQ(e.index, want[i]["index"].get<int64_t>());
        }
        EXPECT_NEAR(e.score, want[i]["score"].get<double>(), kScoreTolerance);
      }
    }
  }
}

using ::ember::test::error_of;

TEST(TextTasks, MissingHeadNamesTheHeadAndThePipeline) {
  // A sequence classifier's checkpoint has classifier.weight too; its architectures decide.
  const std::string ner = error_of([] { pl::TokenClassifier::load(kDir / "bert_seq"); });
  EXPECT_NE(ner.find("ForTokenClassification"), std::string::npos) << ner;
  EXPECT_NE(ner.find("ner pipeline"), std::string::npos) << ner;
  const std::string fill = error_of([] { pl::FillMask::load(kDir / "distilbert_tok"); });
  EXPECT_NE(fill.find("ForMaskedLM"), std::string::npos) << fill;
  EXPECT_NE(fill.find("fill-mask pipeline"), std::string::npos) << fill;
  // Without architectures in config.json, the head's weights decide.
  const models::Config config = models::Config::load(kDir / "bert_tok");
  nlohmann::json bare = config.json();
  bare.erase("architectures");
  const std::string classify = error_of([&] {
    models::load_head_model(models::Config(bare, "bert_tok"), nn::Weights::open(kDir / "bert_tok"),
                            models::HeadKind::MaskedLM, "the fill-mask pipeline");
  });
  EXPECT_NE(classify.find("cls.predictions.transform.dense.weight"), std::string::npos) << classify;
}

TEST(TextTasks, BadRequestsAreErrors) {
  const auto& zs = cached<pl::ZeroShotClassifier>("bert_nli");
  pl::ZeroShotClassifier::Options o;
  EXPECT_NE(error_of([&] { zs({"a"}, o); }).find("no candidate labels"), std::string::npos);
  o.labels = {"x"};
  o.hypothesis_template = "no slot";
  EXPECT_NE(error_of([&] { zs({"a"}, o); }).find("must contain {}"), std::string::npos);
  const auto& fm = cached<pl::FillMask>("bert_mlm");
  const std::string no_mask = error_of([&] { fm({"The capital is [MASK].", "no mask"}, {}); });
  EXPECT_NE(no_mask.find("input 2 has no mask token '[MASK]'"), std::string::npos) << no_mask;
  EXPECT_NE(error_of([] { pl::parse_aggregation("mean"); }).find("'mean'"), std::string::npos);
}

TEST(TextTasks, QuestionAnsweringWithoutTheHeadIsAnError) {
  const std::string qa = error_of(
      [] { models::load_head_model(kDir / "bert_tok", models::HeadKind::QuestionAnswering); });
  EXPECT_NE(qa.find("ForQuestionAnswering"), std::string::npos) << qa;
}

}  // namespace
}  // namespace ember
