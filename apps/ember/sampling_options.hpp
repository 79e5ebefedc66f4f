#pragma once
// The sampling and stopping options `generate` and `chat` share.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/generation/generate.hpp"

namespace ember::cli {

struct SamplingOptions {
  std::optional<int64_t> max_tokens, top_k, keep;
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  float presence_penalty = 0, frequency_penalty = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

inline void add_sampling_options(CLI::App* cmd, SamplingOptions& opt) {
  cmd->add_option("--max-tokens", opt.max_tokens, "new tokens at most")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", opt.temperature, "0 is greedy")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", opt.top_k, "keep the k most likely tokens (0: off)")
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--top-p", opt.top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", opt.min_p, "drop tokens below min-p times the top probability")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repeat-penalty", opt.repeat_penalty, "repetition penalty (1: off)")
      ->check(CLI::Range(0.01, 100.0));
  cmd->add_option("--presence-penalty", opt.presence_penalty, "subtracted once per seen token");
  cmd->add_option("--frequency-penalty", opt.frequency_penalty, "subtracted per occurrence");
  cmd->add_option("--seed", opt.seed, "sampling seed")->capture_default_str();
  cmd->add_option("--stop", opt.stop, "stop before this string (repeatable)");
  cmd->add_option("--keep", opt.keep,
                  "when the context is full, keep its first N tokens and drop half of the rest "
                  "(llama.cpp's context shift) instead of stopping")
      ->check(CLI::Range(0, 1 << 30));
}

// Overrides the folder's defaults in `config` with the options given.
inline void apply_sampling_options(const SamplingOptions& opt,
                                   generation::GenerationConfig& config) {
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
  if (opt.keep) config.context_keep = *opt.keep;
}

}  // namespace ember::cli
