// `ember generate`: streams a model's continuation of a prompt to stdout.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/generation/generate.hpp"
#include "ember/hub/hub.hpp"
#include "output.hpp"

namespace {

// --model: a folder, a built-in short name or a Hugging Face id (downloaded when missing).
std::filesystem::path resolve(const std::string& spec) {
  return ember::hub::resolve_model(spec, ember::hub::HubOptions::from_environment());
}

using ember::Error;
namespace gen = ember::generation;

struct GenerateOptions {
  std::string model, prompt;
  std::optional<int64_t> max_tokens, top_k;
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  float presence_penalty = 0, frequency_penalty = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool json = false;
};

void run_generate(const GenerateOptions& opt) {
  const std::filesystem::path folder = resolve(opt.model);
  const auto model = ember::models::load_causal_lm(folder);
  const auto tokenizer = gen::load_tokenizer(folder);
  gen::GenerationConfig config = gen::GenerationConfig::from_folder(folder);
  if (opt.max_tokens) config.max_new_tokens = *opt.max_tokens;
  if (opt.temperature) {
    config.sampling.temperature = *opt.temperature;
    // An explicit temperature asks for sampling with only the filters given here.
    if (!opt.top_k) config.sampling.top_k = 0;
  }
  if (opt.top_k) config.sampling.top_k = *opt.top_k;
  if (opt.top_p) config.sampling.top_p = *opt.top_p;
  if (opt.min_p) config.sampling.min_p = *opt.min_p;
  if (opt.repeat_penalty) config.sampling.repetition_penalty = *opt.repeat_penalty;
  config.sampling.presence_penalty = opt.presence_penalty;
  config.sampling.frequency_penalty = opt.frequency_penalty;
  config.sampling.seed = opt.seed;
  config.stop_strings = opt.stop;
  // As tokenizer(prompt) in transformers: the tokenizer's default special tokens.
  const std::vector<uint32_t> ids = tokenizer.encode_ids(opt.prompt, true);
  const std::vector<int64_t> prompt(ids.begin(), ids.end());
  const auto results =
      gen::generate(*model, &tokenizer, {prompt}, config, [](size_t, std::string_view piece) {
        ember::cli::out().text(piece);
        ember::cli::out().flush();
      });
  if (opt.json) {
    nlohmann::json o;
    o["ids"] = results[0].ids;
    o["text"] = results[0].text;
    o["finish_reason"] = std::string(gen::finish_reason_name(results[0].finish));
    ember::cli::out().line("");
    ember::cli::out().line(o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    ember::cli::out().line("");
  }
}

const ember::cli::CommandRegistrar generate_registrar{
    {"generate", [](CLI::App& app) {
       auto opt = std::make_shared<GenerateOptions>();
       CLI::App* cmd =
           app.add_subcommand("generate", "Stream a causal language model's continuation");
       cmd->add_option("--model", opt->model,
                       "model folder, Hugging Face model id, or built-in name")
           ->required();
       cmd->add_option("--prompt", opt->prompt, "text to continue")->required();
       cmd->add_option("--max-tokens", opt->max_tokens, "new tokens at most")
           ->check(CLI::Range(0, 1 << 20));
       cmd->add_option("--temperature", opt->temperature, "0 is greedy")
           ->check(CLI::Range(0.0, 100.0));
       cmd->add_option("--top-k", opt->top_k, "keep the k most likely tokens (0: off)")
           ->check(CLI::Range(0, 1 << 30));
       cmd->add_option("--top-p", opt->top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
       cmd->add_option("--min-p", opt->min_p, "drop tokens below min-p times the top probability")
           ->check(CLI::Range(0.0, 1.0));
       cmd->add_option("--repeat-penalty", opt->repeat_penalty, "repetition penalty (1: off)")
           ->check(CLI::Range(0.01, 100.0));
       cmd->add_option("--presence-penalty", opt->presence_penalty,
                       "subtracted once per seen token");
       cmd->add_option("--frequency-penalty", opt->frequency_penalty, "subtracted per occurrence");
       cmd->add_option("--seed", opt->seed, "sampling seed")->capture_default_str();
       cmd->add_option("--stop", opt->stop, "stop before this string (repeatable)");
       cmd->add_flag("--json", opt->json,
                     "end with one JSON line: {\"ids\", \"text\", \"finish_reason\"}");
       cmd->callback([opt] { run_generate(*opt); });
     }}};

}  // namespace
