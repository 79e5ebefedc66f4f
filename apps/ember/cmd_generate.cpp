// `ember generate`: streams a model's continuation of a prompt to stdout, or answers JSON Lines
// of prompts with the model loaded once.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "activations_option.hpp"
#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/generation/generate.hpp"
#include "ember/generation/kv_session.hpp"
#include "ember/hub/hub.hpp"
#include "input.hpp"
#include "output.hpp"
#include "sampling_options.hpp"

namespace {

using ember::Error;
namespace gen = ember::generation;

struct GenerateOptions {
  std::string model, prompt, prompt_cache, activations = "f32";
  std::vector<int64_t> prompt_ids;
  ember::cli::SamplingOptions sampling;
  int64_t logprobs = 0;
  bool json = false, stdin_json = false;
};

std::vector<int64_t> checked_ids(const std::vector<int64_t>& ids, int64_t vocab,
                                 const std::string& where) {
  if (ids.empty()) throw Error(where + ": no token ids");
  for (const int64_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw Error(where + ": token id " + std::to_string(id) +
                  " is outside the model's vocabulary of " + std::to_string(vocab));
    }
  }
  return ids;
}

nlohmann::json result_json(const gen::Generation& g) {
  nlohmann::json o;
  o["ids"] = g.ids;
  o["text"] = g.text;
  o["finish_reason"] = std::string(gen::finish_reason_name(g.finish));
  if (!g.top_logprobs.empty()) {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& step : g.top_logprobs) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& t : step) top.push_back({{"id", t.id}, {"logprob", t.logprob}});
      steps.push_back(std::move(top));
    }
    o["logprobs"] = std::move(steps);
  }
  return o;
}

std::string dump(const nlohmann::json& o) {
  return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One JSON Lines request: {"prompt": text} or {"prompt_ids": [ids]}.
std::vector<int64_t> request_ids(const nlohmann::json& request, size_t line,
                                 const ember::tokenizers::Tokenizer& tokenizer, int64_t vocab) {
  using ember::cli::input_error;
  const bool text = request.is_object() && request.contains("prompt");
  const bool ids = request.is_object() && request.contains("prompt_ids");
  if (text == ids) {
    throw Error(input_error(line, "expected an object with \"prompt\" or \"prompt_ids\""));
  }
  if (text) {
    if (!request["prompt"].is_string()) throw Error(input_error(line, "\"prompt\" must be text"));
    const std::vector<uint32_t> encoded =
        tokenizer.encode_ids(request["prompt"].get<std::string>(), true);
    return {encoded.begin(), encoded.end()};
  }
  std::vector<int64_t> out;
  if (!request["prompt_ids"].is_array()) {
    throw Error(input_error(line, "\"prompt_ids\" must be an array of token ids"));
  }
  for (const auto& id : request["prompt_ids"]) {
    if (!id.is_number_integer()) {
      throw Error(input_error(line, "\"prompt_ids\" must be an array of token ids"));
    }
    out.push_back(id.get<int64_t>());
  }
  return checked_ids(out, vocab, input_error(line, "\"prompt_ids\""));
}

void run_generate(const GenerateOptions& opt) {
  const std::filesystem::path folder =
      ember::hub::resolve_model(opt.model, ember::hub::HubOptions::from_environment());
  ember::cli::apply_activations_option(opt.activations);
  const auto model = ember::models::load_causal_lm(folder);
  const auto tokenizer = gen::load_tokenizer(folder);
  gen::GenerationConfig config = gen::GenerationConfig::from_folder(folder);
  ember::cli::apply_sampling_options(opt.sampling, config);
  config.top_logprobs = opt.logprobs;
  if (opt.stdin_json) {
    std::string line;
    for (size_t n = 1; ember::cli::next_line(line); ++n) {
      const auto request = ember::cli::parse_input_line(line, n);
      const auto prompt = request_ids(request, n, tokenizer, model->vocab_size());
      ember::cli::out().line(
          dump(result_json(gen::generate(*model, &tokenizer, {prompt}, config)[0])));
    }
    return;
  }
  std::vector<int64_t> prompt;
  if (!opt.prompt_ids.empty()) {
    prompt = checked_ids(opt.prompt_ids, model->vocab_size(), "--prompt-ids");
  } else {
    // As tokenizer(prompt) in transformers: the tokenizer's default special tokens.
    const std::vector<uint32_t> ids = tokenizer.encode_ids(opt.prompt, true);
    prompt.assign(ids.begin(), ids.end());
  }
  const auto stream = [](size_t, std::string_view piece) {
    ember::cli::out().text(piece);
    ember::cli::out().flush();
  };
  gen::Generation result;
  if (opt.prompt_cache.empty() && config.context_keep < 0) {
    result = gen::generate(*model, &tokenizer, {prompt}, config, stream)[0];
  } else {
    // As llama.cpp's --prompt-cache: the saved state's longest common prefix with this prompt is
    // not run again, and the state after this run replaces it. --keep shifts the context of
    // such a cache when it fills.
    const std::string identity = gen::model_identity(folder);
    gen::PromptCache cached(*model);
    if (!opt.prompt_cache.empty() && std::filesystem::exists(opt.prompt_cache))
      gen::load_kv_session(opt.prompt_cache, identity, model->vocab_size(), cached);
    result = gen::generate_cached(*model, &tokenizer, prompt, cached, config, stream);
    if (!opt.prompt_cache.empty()) gen::save_kv_session(opt.prompt_cache, identity, cached);
  }
  ember::cli::out().line("");
  if (opt.json) ember::cli::out().line(dump(result_json(result)));
}

const ember::cli::CommandRegistrar generate_registrar{
    {"generate", [](CLI::App& app) {
       auto opt = std::make_shared<GenerateOptions>();
       CLI::App* cmd =
           app.add_subcommand("generate", "Stream a causal language model's continuation");
       cmd->add_option("--model", opt->model,
                       "model folder, Hugging Face model id, or built-in name")
           ->required();
       ember::cli::add_activations_option(cmd, opt->activations);
       auto* prompt = cmd->add_option("--prompt", opt->prompt, "text to continue");
       auto* ids = cmd->add_option("--prompt-ids", opt->prompt_ids,
                                   "the prompt as token ids instead of text: 1,2,3")
                       ->delimiter(',');
       auto* lines = cmd->add_flag("--stdin-json", opt->stdin_json,
                                   "answer JSON Lines on stdin, {\"prompt\": text} or "
                                   "{\"prompt_ids\": [ids]}, one JSON line each");
       prompt->excludes(ids)->excludes(lines);
       ids->excludes(lines);
       ember::cli::add_sampling_options(cmd, opt->sampling);
       cmd->add_option("--prompt-cache", opt->prompt_cache,
                       "a KV session file: reuse its longest common prefix with the prompt, "
                       "then save this run's state to it")
           ->excludes(lines);
       cmd->add_flag("--json", opt->json,
                     "end with one JSON line: {\"ids\", \"text\", \"finish_reason\"}");
       cmd->add_option("--logprobs", opt->logprobs,
                       "with --json or --stdin-json: the K most likely ids per position and "
                       "their log-probabilities under the model's raw distribution")
           ->check(CLI::Range(0, 1 << 20));
       cmd->callback([opt, prompt, ids, lines] {
         if (!*prompt && !*ids && !*lines) {
           throw Error("generate: give --prompt, --prompt-ids or --stdin-json");
         }
         if (opt->sampling.keep && opt->stdin_json) {
           throw Error("generate: --keep needs one prompt, not --stdin-json");
         }
         if (opt->logprobs > 0 && !opt->json && !opt->stdin_json) {
           throw Error("generate: --logprobs needs --json or --stdin-json");
         }
         run_generate(*opt);
       });
     }}};

}  // namespace
