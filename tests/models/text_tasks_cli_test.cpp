// ember classify, zero-shot, fill-mask, ner and qa end to end on the committed task-head fixtures
// (tests/fixtures/pipelines): transformers' outputs and field names, and the bad inputs of
// issue #14 as one error line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "../cli_runner.hpp"
#include "ember/formats/json_file.hpp"

namespace ember {
namespace {

using nlohmann::json;
using test::run_ember;
using test::shell_quote;

const std::filesystem::path kDir =
    std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pipelines";
// As in text_tasks_test.cpp: scores of a tiny F32 model, generated with gaps > 1e-4.
constexpr double kScoreTolerance = 1e-4;

// The reference call of `model` with exactly `options` in `file` (qa_expected.json: question
// answering, made by tools/pipelines/make_qa_fixtures.py).
json reference(const std::string& model, const json& options,
               const std::string& file = "expected.json") {
  static std::map<std::string, json> files;
  json& all = files[file];
  if (all.is_null()) all = read_json_file(kDir / file);
  for (const json& c : all["calls"]) {
    if (c["model"] == model && c["options"] == options) return c;
  }
  ADD_FAILURE() << "no reference call " << model << " " << options.dump();
  return json();
}

std::string json_lines(const json& texts) {
  std::string s;
  for (const json& t : texts) s += t.dump() + "\n";
  return s;
}

std::vector<json> output_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// Same keys, equal values, numbers within the score tolerance.
void expect_same(const json& got, const json& want, const std::string& where) {
  if (want.is_number_float()) {
    EXPECT_NEAR(got.get<double>(), want.get<double>(), kScoreTolerance) << where;
    return;
  }
  ASSERT_EQ(got.type(), want.type()) << where << ": " << got.dump() << " vs " << want.dump();
  if (want.is_array()) {
    ASSERT_EQ(got.size(), want.size()) << where;
    for (size_t i = 0; i < want.size(); ++i) expect_same(got[i], want[i], where);
  } else if (want.is_object()) {
    ASSERT_EQ(got.size(), want.size()) << where << ": " << got.dump();
    for (const auto& [k, v] : want.items()) {
      ASSERT_TRUE(got.contains(k)) << where << ": no '" << k << "' in " << got.dump();
      std::string path = where;
      path += '.';
      path += k;
      expect_same(got[k], v, path);
    }
  } else {
    EXPECT_EQ(got, want) << where;
  }
}

void expect_matches(const std::string& args, const json& call) {
  const auto r = run_ember(args, json_lines(call["inputs"]));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = output_lines(r.out);
  ASSERT_EQ(lines.size(), call["output"].size());
  for (size_t i = 0; i < lines.size(); ++i)
    expect_same(lines[i], call["output"][i], args + " line " + std::to_string(i + 1));
}

std::string model_arg(const std::string& model) {
  return " --model " + shell_quote((kDir / model).string());
}

TEST(TextTasksCli, VerbsPrintTransformersOutputs) {
  expect_matches("classify --top-k 0 --batch-size 3" + model_arg("roberta_seq"),
                 reference("roberta_seq", {{"top_k", nullptr}}));
  // --top-k 2 keeps the first two of the all-labels reference.
  json top2 = reference("bert_seq", {{"top_k", nullptr}, {"function_to_apply", "none"}});
  for (json& row : top2["output"]) row.erase(2);
  expect_matches("classify --top-k 2 --function none" + model_arg("bert_seq"), top2);
  expect_matches(
      "zero-shot --multi-label --labels 'politics, food,travel,sports' --template "
      "'Ce texte parle de {}.'" +
          model_arg("distilbert_nli"),
      reference("distilbert_nli", {{"candidate_labels", {"politics", "food", "travel", "sports"}},
                                   {"hypothesis_template", "Ce texte parle de {}."},
                                   {"multi_label", true}}));
  expect_matches("fill-mask --top-k 3" + model_arg("roberta_mlm"),
                 reference("roberta_mlm", {{"top_k", 3}}));
  expect_matches("ner --aggregation average" + model_arg("bert_tok"),
                 reference("bert_tok", {{"aggregation_strategy", "average"}}));
  expect_matches("ner" + model_arg("roberta_tok"),
                 reference("roberta_tok", {{"aggregation_strategy", "none"}}));
}

TEST(TextTasksCli, BadInputIsOneErrorLine) {
  const auto expect_error = [](const std::string& args, const std::string& input,
                               const std::string& what) {
    const auto r = run_ember(args, input);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
  };
  expect_error("zero-shot --labels ' , '" + model_arg("bert_nli"), "\"a\"\n", "--labels is empty");
  expect_error("zero-shot --labels a,b --template 'no slot'" + model_arg("bert_nli"), "\"a\"\n",
               "has no {}");
  expect_error("fill-mask" + model_arg("bert_mlm"), "\"no mask here\"\n", "has no mask token");
  expect_error("ner" + model_arg("bert_mlm"), "\"a\"\n", "ForTokenClassification");
  expect_error("classify" + model_arg("bert_tok"), "\"a\"\n", "ForSequenceClassification");
  expect_error("ner --aggregation mean" + model_arg("bert_tok"), "\"a\"\n", "unknown aggregation");
  expect_error("classify" + model_arg("bert_seq"), "\"ok\"\n[1]\n", "stdin line 2");
  const std::string qa = "qa" + model_arg("bert_qa");
  expect_error("qa --lines --context 'Some text.'" + model_arg("bert_qa"), "Who?\n\n",
               "stdin line 2: no question");
  expect_error(qa, "{\"question\": \"Who?\", \"context\": \"\"}\n", "line 1: the context is empty");
  expect_error(qa, "{\"question\": \"Who?\"}\n", "no \"context\" and no --context");
  expect_error(qa, "\"Who?\"\n", "a question without a context");
  expect_error(qa, "[1]\n", "expected a {\"question\", \"context\"} object");
  expect_error("qa --context x" + model_arg("bert_tok"), "\"Who?\"\n", "ForQuestionAnswering");
  expect_error("qa --context x" + model_arg("bert_tok"), "\"Who?\"\n", "qa pipeline");
  // --lines takes raw text.
  const auto r = run_ember("classify --lines" + model_arg("bert_seq"), "plain text\n\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(output_lines(r.out).size(), 2u);
}

TEST(TextTasksCli, QaPrintsTransformersAnswers) {
  const std::string file = "qa_expected.json";
  // {"question", "context"} lines; an array of answers per line with --top-k > 1.
  expect_matches("qa --top-k 3 --batch-size 2" + model_arg("roberta_qa"),
                 reference("roberta_qa", {{"top_k", 3}}, file));
  expect_matches("qa --top-k 3 --handle-impossible-answer" + model_arg("bert_qa"),
                 reference("bert_qa", {{"top_k", 3}, {"handle_impossible_answer", true}}, file));
  expect_matches(
      "qa --top-k 2 --max-seq-len 40 --doc-stride 8" + model_arg("bert_qa_left"),
      reference("bert_qa_left", {{"top_k", 2}, {"max_seq_len", 40}, {"doc_stride", 8}}, file));
  expect_matches(
      "qa --top-k 3 --max-answer-len 3 --max-seq-len 48 --doc-stride 16" +
          model_arg("distilbert_qa"),
      reference("distilbert_qa",
                {{"top_k", 3}, {"max_answer_len", 3}, {"max_seq_len", 48}, {"doc_stride", 16}},
                file));
  // --context with plain question lines; with --top-k 1 each line is one object.
  const json defaults = reference("distilbert_qa", json::object(), file);
  const json& first = defaults["inputs"][0];
  const auto r = run_ember(
      "qa --lines --context " + shell_quote(first["context"]) + model_arg("distilbert_qa"),
      first["question"].get<std::string>() + "\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = output_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  expect_same(lines[0], defaults["output"][0][0], "qa --context");
}

}  // namespace
}  // namespace ember
