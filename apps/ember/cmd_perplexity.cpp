// `ember perplexity`: a model's perplexity on a text by llama.cpp's method, or its agreement with
// a reference's next-token distributions (KL divergence, top-1) on fixed token sequences.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "activations_option.hpp"
#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/core/atomic_file.hpp"
#include "ember/generation/generate.hpp"
#include "ember/generation/scoring.hpp"
#include "ember/hub/hub.hpp"
#include "output.hpp"

namespace {

using ember::Error;
namespace gen = ember::generation;

constexpr uint64_t kMaxTextBytes = uint64_t{1} << 30;

struct PerplexityOptions {
  std::string model, file, kl_base, kv_cache = "f32", activations = "f32";
  int64_t context = 512, chunks = 0;
  double margin = 0;
  bool json = false;
};

std::string fixed(double v, int digits) {
  std::vector<char> buf(64);
  std::snprintf(buf.data(), buf.size(), "%.*f", digits, v);
  return buf.data();
}

// llama.cpp puts BOS first in every chunk when its vocabulary adds one; the tokenizer adds
// exactly that token in front of a text then, and nothing else.
std::optional<int64_t> added_bos(const ember::tokenizers::Tokenizer& tokenizer) {
  const std::vector<uint32_t> added = tokenizer.encode_ids("", true);
  if (added.empty()) return std::nullopt;
  if (added.size() > 1 || tokenizer.encode_ids("a", true).front() != added[0]) {
    throw Error(
        "perplexity: the tokenizer adds special tokens other than a leading BOS, which "
        "llama.cpp's method does not allow");
  }
  return added[0];
}

void run_text(const PerplexityOptions& opt, ember::models::CausalLM& model,
              const std::filesystem::path& folder) {
  const auto tokenizer = gen::load_tokenizer(folder);
  const std::string text = ember::read_regular_file(opt.file, kMaxTextBytes);
  const std::vector<uint32_t> encoded = tokenizer.encode_ids(text, true);
  const std::vector<int64_t> tokens(encoded.begin(), encoded.end());
  gen::PerplexityOptions options;
  options.context = opt.context;
  options.max_chunks = opt.chunks;
  options.bos = added_bos(tokenizer);
  std::vector<double> running;
  const auto result = gen::perplexity(model, tokens, options, [&](int64_t chunk, double ppl) {
    running.push_back(ppl);
    if (opt.json) return;
    ember::cli::out().line("[" + std::to_string(chunk) + "]" + fixed(ppl, 4));
    ember::cli::out().flush();
  });
  if (opt.json) {
    ember::cli::out().line(nlohmann::json{
        {"tokens", tokens.size()},
        {"context", opt.context},
        {"chunks", result.chunks},
        {"scored", result.scored},
        {"running", running},
        {"ppl", result.ppl},
        {"ppl_error",
         result.ppl_error}}.dump());
    return;
  }
  ember::cli::out().line("Final estimate: PPL = " + fixed(result.ppl, 4) + " +/- " +
                         fixed(result.ppl_error, 5));
}

void run_kl(const PerplexityOptions& opt, ember::models::CausalLM& model) {
  const auto reference = gen::KlReference::read(opt.kl_base, model.vocab_size());
  const auto a = gen::compare_with_reference(model, reference, opt.margin);
  if (opt.json) {
    ember::cli::out().line(nlohmann::json{
        {"sequences", reference.sequences.size()},
        {"top_k", reference.top_k},
        {"positions", a.positions},
        {"top1_same", a.top1_same},
        {"margin", opt.margin},
        {"clear_positions", a.clear_positions},
        {"clear_top1_same", a.clear_top1_same},
        {"mean_kl", a.mean_kl},
        {"max_kl", a.max_kl}}.dump());
    return;
  }
  const auto percent = [](int64_t part, int64_t whole) {
    return fixed(whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0, 2) +
           "% (" + std::to_string(part) + "/" + std::to_string(whole) + ")";
  };
  ember::cli::out().line("positions: " + std::to_string(a.positions) + " in " +
                         std::to_string(reference.sequences.size()) + " sequences, top " +
                         std::to_string(reference.top_k) + " kept");
  ember::cli::out().line("same top-1: " + percent(a.top1_same, a.positions));
  ember::cli::out().line("same top-1 where the reference's margin > " + fixed(opt.margin, 4) +
                         ": " + percent(a.clear_top1_same, a.clear_positions));
  ember::cli::out().line("KL divergence: mean " + fixed(a.mean_kl, 6) + ", max " +
                         fixed(a.max_kl, 6));
}

const ember::cli::CommandRegistrar perplexity_registrar{
    {"perplexity", [](CLI::App& app) {
       auto opt = std::make_shared<PerplexityOptions>();
       CLI::App* cmd = app.add_subcommand(
           "perplexity", "Perplexity on a text (llama.cpp's method), or KL to a reference");
       cmd->add_option("--model", opt->model,
                       "model folder, .gguf file, Hugging Face model id, or built-in name")
           ->required();
       auto* file = cmd->add_option("--file", opt->file, "text to score");
       auto* kl = cmd->add_option("--kl-base", opt->kl_base,
                                  "reference distributions to compare with (safetensors, as "
                                  "tools/llm/kl_reference.py writes)");
       file->excludes(kl);
       auto* ctx = cmd->add_option("--ctx", opt->context, "tokens per chunk")
                       ->check(CLI::Range(int64_t{4}, int64_t{1} << 24))
                       ->capture_default_str();
       auto* chunks = cmd->add_option("--chunks", opt->chunks, "score at most N chunks (0: all)")
                          ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
       auto* margin =
           cmd->add_option("--margin", opt->margin,
                           "with --kl-base: also count top-1 agreement where the reference's "
                           "top-1/top-2 log-probability margin exceeds this")
               ->check(CLI::Range(0.0, 1e9));
       ctx->excludes(kl);
       chunks->excludes(kl);
       margin->excludes(file);
       cmd->add_flag("--json", opt->json, "print the result as one JSON line");
       cmd->add_option("--kv-cache", opt->kv_cache,
                       "KV cache type: f32, or f16 (llama.cpp's default cache and arithmetic)")
           ->check(CLI::IsMember({"f32", "f16"}))
           ->capture_default_str();
       ember::cli::add_activations_option(cmd, opt->activations);
       cmd->callback([opt, file, kl] {
         if (!*file && !*kl) throw Error("perplexity: give --file or --kl-base");
         const std::filesystem::path folder =
             ember::hub::resolve_model(opt->model, ember::hub::HubOptions::from_environment());
         const auto model = ember::models::load_causal_lm(folder);
         model->set_kv_cache_dtype(opt->kv_cache == "f16" ? ember::DType::F16 : ember::DType::F32);
         ember::cli::apply_activations_option(opt->activations);
         if (*file) {
           run_text(*opt, *model, folder);
         } else {
           run_kl(*opt, *model);
         }
       });
     }}};

}  // namespace
