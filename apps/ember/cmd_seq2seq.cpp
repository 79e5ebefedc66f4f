// `ember translate` and `ember summarize`: an encoder-decoder model answers each stdin line (a
// JSON string, or plain text with --lines) with one JSON line, {"text", "ids"} (plus "score"
// with beams), or with --num-return > 1 an array of {"text", "ids", "score"}, best first.
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/generation/seq2seq.hpp"
#include "ember/hub/hub.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

using ember::Error;
namespace gen = ember::generation;

struct Seq2SeqOptions {
  std::string model, src, tgt;
  std::optional<int64_t> beams, max_tokens, no_repeat, num_return, min_length, max_length;
  std::optional<double> length_penalty;
  std::string early_stopping;
  bool lines = false;
};

// `task` names config.json's task_specific_params entry; a required one must be there.
void run(const Seq2SeqOptions& opt, const std::string& task, bool task_optional) {
  const std::filesystem::path folder =
      ember::hub::resolve_model(opt.model, ember::hub::HubOptions::from_environment());
  const auto model = ember::models::load_seq2seq(folder);
  const auto tokenizer = gen::load_tokenizer(folder);
  gen::Seq2SeqConfig config = gen::Seq2SeqConfig::from_folder(folder, task, task_optional);
  if (opt.beams) config.num_beams = *opt.beams;
  if (opt.max_tokens) config.max_new_tokens = *opt.max_tokens;
  if (opt.max_length) config.max_length = *opt.max_length;
  if (opt.min_length) config.min_length = *opt.min_length;
  if (opt.no_repeat) config.no_repeat_ngram_size = *opt.no_repeat;
  if (opt.num_return) config.num_return_sequences = *opt.num_return;
  if (opt.length_penalty) config.length_penalty = *opt.length_penalty;
  if (!opt.early_stopping.empty())
    config.early_stopping = gen::parse_early_stopping(opt.early_stopping, "--early-stopping");
  config.validate(model->vocab_size());
  // One input at a time: each answer is printed before the next line is read.
  ember::cli::for_each_text_batch(opt.lines, 1, [&](const std::vector<std::string>& texts) {
    const std::vector<uint32_t> encoded = tokenizer.encode_ids(config.prefix + texts[0], true);
    const auto results = gen::generate_seq2seq(
        *model, {std::vector<int64_t>(encoded.begin(), encoded.end())}, config)[0];
    nlohmann::json answers = nlohmann::json::array();
    for (const gen::Seq2SeqOutput& r : results) {
      nlohmann::json o;
      o["text"] = tokenizer.decode(std::vector<uint32_t>(r.ids.begin(), r.ids.end()), true);
      o["ids"] = r.ids;
      if (config.num_beams > 1) o["score"] = r.score;
      answers.push_back(std::move(o));
    }
    const nlohmann::json& out = config.num_return_sequences > 1 ? answers : answers[0];
    ember::cli::out().line(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
}

void add_decoding_options(CLI::App* cmd, Seq2SeqOptions& opt) {
  cmd->add_option("--model", opt.model, "model folder, Hugging Face model id, or built-in name")
      ->required();
  cmd->add_option("--beams", opt.beams, "beam search with N beams (1: greedy)");
  cmd->add_option("--max-tokens", opt.max_tokens, "at most N generated tokens");
  cmd->add_option("--no-repeat-ngram", opt.no_repeat, "never repeat an n-gram of this size");
  cmd->add_option("--length-penalty", opt.length_penalty, "beam score = logprob / len^P");
  cmd->add_option("--early-stopping", opt.early_stopping, "true, false or never");
  cmd->add_option("--num-return", opt.num_return, "return the N best beams");
  cmd->add_flag("--lines", opt.lines, "stdin lines are plain text, not JSON strings");
}

const ember::cli::CommandRegistrar translate_registrar{
    {"translate", [](CLI::App& app) {
       auto opt = std::make_shared<Seq2SeqOptions>();
       CLI::App* cmd = app.add_subcommand("translate", "Translate stdin lines (JSON Lines)");
       add_decoding_options(cmd, *opt);
       cmd->add_option("--src", opt->src, "source language");
       cmd->add_option("--tgt", opt->tgt, "target language");
       cmd->callback([opt] {
         // T5 names each pair it was trained on in task_specific_params
         // (translation_en_to_de, with its "translate English to German: " prefix).
         if (opt->src.empty() != opt->tgt.empty())
           throw Error("translate: --src and --tgt go together");
         if (opt->src.empty()) return run(*opt, "", true);
         run(*opt, "translation_" + opt->src + "_to_" + opt->tgt, false);
       });
     }}};

const ember::cli::CommandRegistrar summarize_registrar{
    {"summarize", [](CLI::App& app) {
       auto opt = std::make_shared<Seq2SeqOptions>();
       CLI::App* cmd = app.add_subcommand("summarize", "Summarize stdin lines (JSON Lines)");
       add_decoding_options(cmd, *opt);
       cmd->add_option("--min-length", opt->min_length, "at least N decoder tokens");
       cmd->add_option("--max-length", opt->max_length, "at most N decoder tokens");
       cmd->callback([opt] { run(*opt, "summarization", true); });
     }}};

}  // namespace
