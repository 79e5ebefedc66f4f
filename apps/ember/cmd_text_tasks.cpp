// `ember classify`, `ember zero-shot`, `ember fill-mask` and `ember ner`: transformers' text
// pipelines on a Hugging Face folder with the task head. Input: JSON Lines of strings (plain
// lines with --lines); output: one JSON value per input line with transformers' field names,
// each batch printed as soon as it is done.
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
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

}  // namespace
