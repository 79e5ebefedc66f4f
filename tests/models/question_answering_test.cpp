// The question-answering pipeline against transformers 5.2.0's on tiny random ForQuestionAnswering
// models (tests/fixtures/pipelines/*_qa, qa_expected.json, made by
// tools/pipelines/make_qa_fixtures.py), and its bad requests.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

#include "../test_env.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/pipelines/text_tasks.hpp"

namespace ember {
namespace {

using nlohmann::json;
using test::error_of;
namespace pl = pipelines;

const std::filesystem::path kDir =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pipelines";

// Scores are products of two softmax probabilities (sums of them where answers merge) from a
// 2-layer, 32-wide F32 encoder: another summation order moves them by ~1e-6 relative, far inside
// the 1e-4 bar. The generator refuses outputs whose ordered scores (answers, each
// window's kept spans and the first span left out) differ by less than a relative 1e-4, so the
// answers compared exactly cannot change with the rounding.
constexpr double kScoreTolerance = 1e-4;

const pl::QuestionAnswerer& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<pl::QuestionAnswerer>> cache;
  auto& slot = cache[name];
  if (!slot) slot = std::make_unique<pl::QuestionAnswerer>(pl::QuestionAnswerer::load(kDir / name));
  return *slot;
}

pl::QuestionAnswerer::Options options_of(const json& o) {
  pl::QuestionAnswerer::Options options;
  options.top_k = o.value("top_k", size_t{1});
  options.max_seq_len = o.value("max_seq_len", size_t{0});
  if (o.contains("doc_stride")) options.doc_stride = o["doc_stride"].get<size_t>();
  options.max_answer_len = o.value("max_answer_len", size_t{15});
  options.handle_impossible_answer = o.value("handle_impossible_answer", false);
  return options;
}

std::vector<pl::QaInput> inputs_of(const json& call) {
  std::vector<pl::QaInput> inputs;
  inputs.reserve(call["inputs"].size());
  for (const json& in : call["inputs"]) inputs.push_back({in["question"], in["context"]});
  return inputs;
}

TEST(QuestionAnswering, MatchesTransformers) {
  const json expected = read_json_file(kDir / "qa_expected.json");
  ASSERT_EQ(expected["calls"].size(), 35u);  // 7 models x 5 option sets
  for (const json& call : expected["calls"]) {
    const std::string name = call["model"];
    pl::QuestionAnswerer::Options options = options_of(call["options"]);
    options.batch_size = 3;  // windows of several inputs share a forward pass
    const auto got = model(name)(inputs_of(call), options);
    ASSERT_EQ(got.size(), call["output"].size());
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(name + " " + call["options"].dump() + " input " + std::to_string(i + 1));
      const json& want = call["output"][i];
      ASSERT_EQ(got[i].size(), want.size());
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_EQ(got[i][k].answer, want[k]["answer"].get<std::string>());
        EXPECT_EQ(got[i][k].start, want[k]["start"].get<size_t>());
        EXPECT_EQ(got[i][k].end, want[k]["end"].get<size_t>());
        EXPECT_NEAR(got[i][k].score, want[k]["score"].get<double>(), kScoreTolerance);
      }
    }
  }
}

TEST(QuestionAnswering, BatchesDoNotChangeAnswers) {
  const json expected = read_json_file(kDir / "qa_expected.json");
  const json& call = expected["calls"][2];
  const auto inputs = inputs_of(call);
  pl::QuestionAnswerer::Options options = options_of(call["options"]);
  options.batch_size = 1;
  const auto one = model(call["model"])(inputs, options);
  options.batch_size = 64;
  const auto all = model(call["model"])(inputs, options);
  ASSERT_EQ(one.size(), all.size());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i].size(), all[i].size());
    for (size_t k = 0; k < one[i].size(); ++k) {
      EXPECT_EQ(one[i][k].answer, all[i][k].answer);
      EXPECT_NEAR(one[i][k].score, all[i][k].score, kScoreTolerance);
    }
  }
}

TEST(QuestionAnswering, BadRequestsNameWhatIsWrong) {
  const auto& qa = model("bert_qa");
  const std::string no_question = error_of([&] { qa({{"q", "c"}, {"", "context"}}, {}); });
  EXPECT_NE(no_question.find("input 2 has no question"), std::string::npos) << no_question;
  const std::string no_context = error_of([&] { qa({{"Who?", ""}}, {}); });
  EXPECT_NE(no_context.find("input 1 has no context"), std::string::npos) << no_context;
  std::string long_context;
  for (int i = 0; i < 100; ++i) long_context += "a ";
  pl::QuestionAnswerer::Options o;
  o.max_seq_len = 16;
  o.doc_stride = 15;
  const std::string stride = error_of([&] { qa({{"Who?", long_context}}, o); });
  EXPECT_NE(stride.find("doc_stride 15"), std::string::npos) << stride;
  o.max_seq_len = 4;
  o.doc_stride = 1;
  const std::string room = error_of([&] { qa({{"Who is it then?", "a b c d e f g"}}, o); });
  EXPECT_NE(room.find("no room for the context"), std::string::npos) << room;
  // transformers refuses a stride above the window even where the context fits in one.
  o.max_seq_len = 16;
  o.doc_stride = 17;
  const std::string above = error_of([&] { qa({{"q", "c"}}, o); });
  EXPECT_NE(above.find("larger than max_seq_len 16"), std::string::npos) << above;
  o.max_seq_len = 1000;
  o.doc_stride = 1;
  EXPECT_NE(error_of([&] { qa({{"q", "c"}}, o); }).find("max_seq_len 1000"), std::string::npos);
  const std::string head = error_of([] { pl::QuestionAnswerer::load(kDir / "bert_seq"); });
  EXPECT_NE(head.find("ForQuestionAnswering"), std::string::npos) << head;
  EXPECT_NE(head.find("qa pipeline"), std::string::npos) << head;
}

}  // namespace
}  // namespace ember
