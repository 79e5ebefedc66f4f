// `ember classify`, `ember zero-shot`, `ember fill-mask`, `ember ner` and `ember qa`: transformers'
// text pipelines on a Hugging Face folder with the task head. Input: JSON Lines of strings (plain
// lines with --lines); output: one JSON value per input line with transformers' field names,
// each batch printed as soon as it is done.
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/hub/hub.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

using ember::Error;
// Output objects keep transformers' field order.
using json = nlohmann::ordered_json;
namespace pl = ember::pipelines;

struct TaskOptions {
  std::string model;
  bool lines = false;
  size_t batch_size = 32;
};

std::filesystem::path resolve(const std::string& spec) {
  return ember::hub::resolve_model(spec, ember::hub::HubOptions::from_environment());
}

void print(const json& value) {
  ember::cli::out().line(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

CLI::App* add_task(CLI::App& app, const char* name, const char* about, TaskOptions& opt) {
  CLI::App* cmd = app.add_subcommand(name, about);
  cmd->add_option("--model", opt.model,
                  "Hugging Face folder or model id with the task head (config.json, "
                  "model.safetensors, tokenizer.json)")
      ->required();
  cmd->add_flag("--lines", opt.lines, "read plain text lines instead of JSON strings");
  cmd->add_option("--batch-size", opt.batch_size, "texts encoded together")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  return cmd;
}

std::vector<std::string> split_labels(const std::string& list) {
  // As transformers splits a string of labels: on commas, trimmed, empty ones dropped.
  std::vector<std::string> labels;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    std::string label = list.substr(pos, comma - pos);
    const size_t b = label.find_first_not_of(" \t");
    const size_t e = label.find_last_not_of(" \t");
    if (b != std::string::npos) labels.push_back(label.substr(b, e - b + 1));
    pos = comma + 1;
  }
  return labels;
}

const ember::cli::CommandRegistrar classify_registrar{
    {"classify", [](CLI::App& app) {
       auto opt = std::make_shared<TaskOptions>();
       auto top_k = std::make_shared<size_t>(1);
       auto function = std::make_shared<std::string>();
       CLI::App* cmd = add_task(app, "classify",
                                "Text classification: one [{\"label\", \"score\"}] per line", *opt);
       cmd->add_option("--top-k", *top_k, "labels per text, best first (0: all)")
           ->capture_default_str();
       cmd->add_option("--function", *function,
                       "sigmoid, softmax or none (default: from problem_type and labels)");
       cmd->callback([opt, top_k, function] {
         pl::TextClassifier::Options o;
         o.top_k = *top_k;
         o.batch_size = opt->batch_size;
         if (!function->empty()) o.function = pl::parse_score_function(*function);
         const pl::TextClassifier classifier = pl::TextClassifier::load(resolve(opt->model));
         ember::cli::for_each_text_batch(
             opt->lines, opt->batch_size, [&](const std::vector<std::string>& texts) {
               for (const auto& row : classifier(texts, o)) {
                 json out = json::array();
                 for (const auto& s : row) out.push_back({{"label", s.label}, {"score", s.score}});
                 print(out);
               }
             });
       });
     }}};

const ember::cli::CommandRegistrar zero_shot_registrar{
    {"zero-shot", [](CLI::App& app) {
       auto opt = std::make_shared<TaskOptions>();
       auto labels = std::make_shared<std::string>();
       auto zs = std::make_shared<pl::ZeroShotClassifier::Options>();
       CLI::App* cmd =
           add_task(app, "zero-shot",
                    "Zero-shot classification with an NLI model: one {\"sequence\", \"labels\", "
                    "\"scores\"} per line",
                    *opt);
       cmd->add_option("--labels", *labels, "candidate labels, comma-separated")->required();
       cmd->add_flag("--multi-label", zs->multi_label, "score each label on its own");
       cmd->add_option("--template", zs->hypothesis_template, "hypothesis, {} is the label")
           ->capture_default_str();
       cmd->callback([opt, labels, zs] {
         zs->labels = split_labels(*labels);
         if (zs->labels.empty()) throw Error("zero-shot: --labels is empty");
         if (zs->hypothesis_template.find("{}") == std::string::npos) {
           throw Error("zero-shot: --template '" + zs->hypothesis_template +
                       "' has no {} for the label");
         }
         zs->batch_size = opt->batch_size;
         const pl::ZeroShotClassifier classifier =
             pl::ZeroShotClassifier::load(resolve(opt->model));
         ember::cli::for_each_text_batch(
             opt->lines, opt->batch_size, [&](const std::vector<std::string>& texts) {
               for (const auto& r : classifier(texts, *zs)) {
                 print({{"sequence", r.sequence}, {"labels", r.labels}, {"scores", r.scores}});
               }
             });
       });
     }}};

const ember::cli::CommandRegistrar fill_mask_registrar{
    {"fill-mask", [](CLI::App& app) {
       auto opt = std::make_shared<TaskOptions>();
       auto fm = std::make_shared<pl::FillMask::Options>();
       CLI::App* cmd = add_task(app, "fill-mask",
                                "Masked-token prediction: one [{\"score\", \"token\", "
                                "\"token_str\", \"sequence\"}] per line (an array of those "
                                "per mask when a line has several)",
                                *opt);
       cmd->add_option("--top-k", fm->top_k, "predictions per mask")
           ->check(CLI::Range(1, 1 << 20))
           ->capture_default_str();
       cmd->callback([opt, fm] {
         fm->batch_size = opt->batch_size;
         const pl::FillMask filler = pl::FillMask::load(resolve(opt->model));
         ember::cli::for_each_text_batch(opt->lines, opt->batch_size,
                                         [&](const std::vector<std::string>& texts) {
                                           for (const auto& masks : filler(texts, *fm)) {
                                             json per_mask = json::array();
                                             for (const auto& row : masks) {
                                               json out = json::array();
                                               for (const auto& p : row) {
                                                 out.push_back({{"score", p.score},
                                                                {"token", p.token},
                                                                {"token_str", p.token_str},
                                                                {"sequence", p.sequence}});
                                               }
                                               per_mask.push_back(std::move(out));
                                             }
                                             print(per_mask.size() == 1 ? per_mask[0] : per_mask);
                                           }
                                         });
       });
     }}};

const ember::cli::CommandRegistrar ner_registrar{
    {"ner", [](CLI::App& app) {
       auto opt = std::make_shared<TaskOptions>();
       auto aggregation = std::make_shared<std::string>("none");
       auto ignore = std::make_shared<std::vector<std::string>>();
       CLI::App* cmd = add_task(app, "ner",
                                "Token classification: one [{\"entity\" or \"entity_group\", "
                                "\"score\", \"word\", \"start\", \"end\"}] per line",
                                *opt);
       cmd->add_option("--aggregation", *aggregation, "none, simple, first, average or max")
           ->capture_default_str();
       cmd->add_option("--ignore-labels", *ignore, "labels left out (default: O)")->delimiter(',');
       cmd->callback([opt, aggregation, ignore] {
         pl::TokenClassifier::Options o;
         o.aggregation = pl::parse_aggregation(*aggregation);
         if (!ignore->empty()) o.ignore_labels = *ignore;
         o.batch_size = opt->batch_size;
         const pl::TokenClassifier tagger = pl::TokenClassifier::load(resolve(opt->model));
         const bool grouped = o.aggregation != pl::Aggregation::None;
         ember::cli::for_each_text_batch(opt->lines, opt->batch_size,
                                         [&](const std::vector<std::string>& texts) {
                                           for (const auto& entities : tagger(texts, o)) {
                                             json out = json::array();
                                             for (const auto& e : entities) {
                                               json j;
                                               j[grouped ? "entity_group" : "entity"] = e.entity;
                                               j["score"] = e.score;
                                               if (!grouped) j["index"] = e.index;
                                               j["word"] = e.word;
                                               j["start"] = e.start;
                                               j["end"] = e.end;
                                               out.push_back(std::move(j));
                                             }
                                             print(out);
                                           }
                                         });
       });
     }}};

// One stdin line of `ember qa`: a {"question", "context"} object (the context may come from
// --context instead), or a question string about --context.
pl::QaInput read_qa_input(const nlohmann::json& j, size_t line,
                          const std::optional<std::string>& context) {
  if (j.is_string()) {
    if (!context.has_value()) {
      throw Error(ember::cli::input_error(
          line,
          "a question without a context (give --context, or a {\"question\", "
          "\"context\"} object)"));
    }
    return read_qa_input({{"question", j}}, line, context);
  }
  if (!j.is_object() || !j.contains("question") || !j["question"].is_string()) {
    throw Error(ember::cli::input_error(
        line, "expected a {\"question\", \"context\"} object or a question string"));
  }
  if (j.contains("context") && !j["context"].is_string())
    throw Error(ember::cli::input_error(line, "\"context\" is not a string"));
  if (!j.contains("context") && !context.has_value())
    throw Error(ember::cli::input_error(line, "no \"context\" and no --context"));
  pl::QaInput in{j["question"].get<std::string>(),
                 j.contains("context") ? j["context"].get<std::string>() : *context};
  if (in.question.empty()) throw Error(ember::cli::input_error(line, "no question"));
  if (in.context.empty()) throw Error(ember::cli::input_error(line, "the context is empty"));
  return in;
}

const ember::cli::CommandRegistrar qa_registrar{
    {"qa", [](CLI::App& app) {
       auto opt = std::make_shared<TaskOptions>();
       auto qa = std::make_shared<pl::QuestionAnswerer::Options>();
       auto context = std::make_shared<std::optional<std::string>>();
       auto doc_stride = std::make_shared<std::optional<size_t>>();
       CLI::App* cmd = add_task(app, "qa",
                                "Extractive question answering: one {\"answer\", \"score\", "
                                "\"start\", \"end\"} per line ([...] with --top-k > 1). Lines "
                                "are {\"question\", \"context\"} objects, or questions about "
                                "--context",
                                *opt);
       cmd->add_option("--context", *context,
                       "the text the answers come from; stdin lines are then questions (JSON "
                       "strings, or plain with --lines)");
       cmd->add_option("--top-k", qa->top_k, "answers per question, best first")
           ->check(CLI::Range(1, 1 << 20))
           ->capture_default_str();
       cmd->add_option("--doc-stride", *doc_stride,
                       "context tokens shared by consecutive windows (default: half a window, at "
                       "most 128)");
       cmd->add_option("--max-seq-len", qa->max_seq_len,
                       "tokens per window, question included (default: the model's, at most 384)")
           ->check(CLI::Range(1, 1 << 20));
       cmd->add_option("--max-answer-len", qa->max_answer_len, "tokens per answer at most")
           ->check(CLI::Range(1, 1 << 20))
           ->capture_default_str();
       cmd->add_flag("--handle-impossible-answer", qa->handle_impossible_answer,
                     "may answer \"\" (start = end = 0) when no span beats [CLS]");
       cmd->callback([opt, qa, context, doc_stride] {
         qa->doc_stride = *doc_stride;
         qa->batch_size = opt->batch_size;
         const pl::QuestionAnswerer answerer = pl::QuestionAnswerer::load(resolve(opt->model));
         const auto parse = [&](const nlohmann::json& j, size_t line) {
           return read_qa_input(j, line, *context);
         };
         ember::cli::for_each_batch<pl::QaInput>(
             opt->lines, opt->batch_size, parse, [&](const std::vector<pl::QaInput>& inputs) {
               for (const auto& answers : answerer(inputs, *qa)) {
                 json out = json::array();
                 for (const auto& a : answers) {
                   out.push_back({{"score", a.score},
                                  {"start", a.start},
                                  {"end", a.end},
                                  {"answer", a.answer}});
                 }
                 print(qa->top_k == 1 && out.size() == 1 ? out[0] : out);
               }
             });
       });
     }}};

}  // namespace
