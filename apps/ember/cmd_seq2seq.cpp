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
#include "ember/generation/seq2seq_tokenizer.hpp"
#include "ember/hub/hub.hpp"
#include "ember/models/config.hpp"
#include "ember/models/seq2seq_lm.hpp"
#include "ember/nn/quantized_weights.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

using ember::Error;
namespace gen = ember::generation;

struct Seq2SeqOptions {
  std::string model, src, tgt, quantize;
  std::optional<int64_t> beams, max_tokens, no_repeat, num_return, min_length, max_length;
  std::optional<double> length_penalty;
  std::string early_stopping;
  bool lines = false;
};

// Defaults come from config.json's task_specific_params entry for the task: "summarization", or
// T5's translation pairs ("translation_en_to_de", with its "translate English to German: "
// prefix), which must be there. The other multilingual models take --src and --tgt as language
// codes.
void run(const Seq2SeqOptions& opt, bool translate) {
  if (opt.src.empty() != opt.tgt.empty()) throw Error("translate: --src and --tgt go together");
  const std::filesystem::path folder =
      ember::hub::resolve_model(opt.model, ember::hub::HubOptions::from_environment());
  const ember::models::Config model_config = ember::models::Config::load(folder);
  ember::nn::Weights weights = ember::nn::Weights::open(folder);
  if (!opt.quantize.empty()) {
    weights = ember::nn::quantize_matrices(weights, ember::nn::weight_block_type(opt.quantize));
  }
  const auto model = ember::models::load_seq2seq(model_config, weights);
  const std::string type = model_config.model_type();
  const auto tokenizer = gen::Seq2SeqTokenizer::load(folder);
  const bool languages = translate && !opt.src.empty() && type != "t5";
  const bool pair_task = translate && !opt.src.empty() && type == "t5";
  const std::string task = !translate  ? "summarization"
                           : pair_task ? "translation_" + opt.src + "_to_" + opt.tgt
                                       : "";
  gen::Seq2SeqConfig config = gen::Seq2SeqConfig::from_folder(folder, task, !pair_task);
  std::optional<gen::LanguagePair> pair;
  if (languages) {
    pair = gen::language_pair(tokenizer, type, opt.src, opt.tgt);
    if (pair->forced_bos >= 0) config.forced_bos_token_id = pair->forced_bos;
    if (pair->decoder_start >= 0) config.decoder_start_token_id = pair->decoder_start;
  }
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
    std::vector<int64_t> ids;
    if (pair) {
      // The pair's codes around the text, whatever the tokenizer's own template says.
      ids = pair->prefix;
      const std::vector<int64_t> text = tokenizer.encode(texts[0], false);
      ids.insert(ids.end(), text.begin(), text.end());
      ids.insert(ids.end(), pair->suffix.begin(), pair->suffix.end());
    } else {
      ids = tokenizer.encode(config.prefix + texts[0]);
    }
    const auto results = gen::generate_seq2seq(*model, {ids}, config)[0];
    nlohmann::json answers = nlohmann::json::array();
    for (const gen::Seq2SeqOutput& r : results) {
      nlohmann::json o;
      o["text"] = tokenizer.decode(r.ids);
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
  cmd->add_option(
      "--quantize", opt.quantize,
      "quantize the weight matrices at load: Q8_0, Q4_K, ... (a quarter of F32's memory "
      "with Q8_0)");
}

const ember::cli::CommandRegistrar translate_registrar{
    {"translate", [](CLI::App& app) {
       auto opt = std::make_shared<Seq2SeqOptions>();
       CLI::App* cmd = app.add_subcommand("translate", "Translate stdin lines (JSON Lines)");
       add_decoding_options(cmd, *opt);
       cmd->add_option("--src", opt->src, "source language");
       cmd->add_option("--tgt", opt->tgt, "target language");
       cmd->callback([opt] { run(*opt, true); });
     }}};

const ember::cli::CommandRegistrar summarize_registrar{
    {"summarize", [](CLI::App& app) {
       auto opt = std::make_shared<Seq2SeqOptions>();
       CLI::App* cmd = app.add_subcommand("summarize", "Summarize stdin lines (JSON Lines)");
       add_decoding_options(cmd, *opt);
       cmd->add_option("--min-length", opt->min_length, "at least N decoder tokens");
       cmd->add_option("--max-length", opt->max_length, "at most N decoder tokens");
       cmd->callback([opt] { run(*opt, false); });
     }}};

}  // namespace
