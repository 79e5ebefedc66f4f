#pragma once
// `--activations f32|q8`, shared by the verbs that run causal LMs (generate, chat, bench,
// perplexity): how prompts (16 rows or more) multiply block-quantized weights.
#include <CLI/CLI.hpp>

#include <string>

#include "ember/core/ops.hpp"

namespace ember::cli {

inline void add_activations_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--activations", value,
                  "activations of quantized-weight products in prompts: f32 (the weights "
                  "widened to F32), or q8 (quantized to 8 bits as llama.cpp does: its "
                  "arithmetic and perplexities, the numbers single tokens get, and on x86 "
                  "faster prompts for Q2_K to Q6_K weights)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
}

inline void apply_activations_option(const std::string& value) {
  ops::set_quantized_prompts(value == "q8" ? ops::QuantizedPrompts::Int8Activations
                                           : ops::QuantizedPrompts::Widened);
}

}  // namespace ember::cli
