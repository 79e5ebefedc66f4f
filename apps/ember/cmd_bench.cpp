// `ember bench`: prompt-processing and generation speed of a causal LM, measured as llama-bench
// measures them: ppN runs an N-token prompt into an empty cache in one forward pass, tgN feeds N
// tokens one at a time into an empty cache; each test runs once to warm up, then -r times.
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "activations_option.hpp"
#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/hub/hub.hpp"
#include "ember/models/causal_lm.hpp"
#include "output.hpp"

namespace {

using ember::Error;
using ember::Tensor;

struct BenchOptions {
  std::string model, activations = "f32";
  int64_t prompt = 512, generate = 128, repetitions = 5;
  int threads = 0;
  bool json = false;
};

// This process image's peak RSS: Linux's VmHWM, which exec resets. ru_maxrss, the fallback,
// keeps the parent's RSS at the fork through exec: a Python driver's 20 MB would count as ours.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Sample {
  double wall_s = 0, cpu_s = 0;
};

// One run of a test on a fresh cache: one forward pass of `tokens` ids (batch) or `tokens`
// passes of one id each.
Sample run_once(ember::models::CausalLM& model, const std::vector<int64_t>& ids, bool batch) {
  const auto tokens = static_cast<int64_t>(ids.size());
  ember::models::KvCache cache = model.new_cache(1, tokens);
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (batch) {
    std::vector<int64_t> positions(ids.size());
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int64_t>(i);
    model.forward(Tensor::from_values<int64_t>(ember::DType::I64, {1, tokens}, ids), positions,
                  Tensor(), cache, false);
  } else {
    for (int64_t i = 0; i < tokens; ++i) {
      const int64_t position = i;
      model.forward(Tensor::from_values<int64_t>(ember::DType::I64, {1, 1},
                                                 std::span(&ids[static_cast<size_t>(i)], 1)),
                    std::span(&position, 1), Tensor(), cache, false);
    }
  }
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - t0;
  return {wall.count(), cpu_seconds() - cpu0};
}

struct Stats {
  double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  double sq = 0;
  for (const double x : v) sq += (x - s.mean) * (x - s.mean);
  // Sample standard deviation, as llama-bench prints it; 0 for a single run.
  s.stddev = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

void run_bench(const BenchOptions& opt) {
  if (opt.threads > 0) ember::set_num_threads(opt.threads);
  const int threads = ember::default_thread_pool().num_threads();
  const std::filesystem::path path =
      ember::hub::resolve_model(opt.model, ember::hub::HubOptions::from_environment());
  ember::cli::apply_activations_option(opt.activations);
  const auto model = ember::models::load_causal_lm(path);
  std::error_code ec;
  const auto file_bytes = std::filesystem::is_regular_file(path, ec)
                              ? static_cast<double>(std::filesystem::file_size(path, ec))
                              : 0.0;
  // Random ids, as llama-bench uses: the speed of a dense model does not depend on them.
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> token(0, model->vocab_size() - 1);
  auto& out = ember::cli::out();
  if (!opt.json) {
    out.line("| model | size | threads | test | t/s | cpu s/token |");
    out.line("| --- | ---: | ---: | ---: | ---: | ---: |");
  }
  for (const bool batch : {true, false}) {
    const int64_t tokens = batch ? opt.prompt : opt.generate;
    if (tokens <= 0) continue;
    if (tokens > model->context_length()) {
      throw Error("bench: " + std::to_string(tokens) + " tokens exceed the model's context of " +
                  std::to_string(model->context_length()));
    }
    std::vector<int64_t> ids(static_cast<size_t>(tokens));
    for (int64_t& id : ids) id = token(rng);
    run_once(*model, ids, batch);  // warm-up: page in the weights, size the scratch
    std::vector<double> rates, cpu_per_token;
    for (int64_t r = 0; r < opt.repetitions; ++r) {
      const Sample s = run_once(*model, ids, batch);
      rates.push_back(static_cast<double>(tokens) / s.wall_s);
      cpu_per_token.push_back(s.cpu_s / static_cast<double>(tokens));
    }
    const std::string test = (batch ? "pp" : "tg") + std::to_string(tokens);
    const Stats rate = stats(rates), cpu = stats(cpu_per_token);
    if (opt.json) {
      nlohmann::json o = {{"model", path.filename().string()},
                          {"file_bytes", file_bytes},
                          {"threads", threads},
                          {"test", test},
                          {"tokens", tokens},
                          {"tokens_per_s", rates},
                          {"cpu_s_per_token", cpu_per_token}};
      out.line(o.dump());
    } else {
      out.line("| " + path.filename().string() + " | " + fixed(file_bytes / (1 << 20), 2) +
               " MiB | " + std::to_string(threads) + " | " + test + " | " + fixed(rate.mean, 2) +
               " ± " + fixed(rate.stddev, 2) + " | " + fixed(cpu.mean * 1e3, 3) + " ms |");
    }
    out.flush();
  }
  const double peak_mib = peak_rss_mib();
  out.line(opt.json ? nlohmann::json{{"peak_rss_mib", peak_mib}}.dump()
                    : "peak RSS " + fixed(peak_mib, 1) + " MiB");
}

const ember::cli::CommandRegistrar bench_registrar{
    {"bench", [](CLI::App& app) {
       auto opt = std::make_shared<BenchOptions>();
       CLI::App* cmd = app.add_subcommand(
           "bench", "Prompt (ppN) and generation (tgN) tokens/s of a causal LM, as llama-bench");
       cmd->add_option("--model", opt->model, "model folder, .gguf file or built-in name")
           ->required();
       ember::cli::add_activations_option(cmd, opt->activations);
       cmd->add_option("-p,--prompt", opt->prompt, "prompt tokens processed in one pass (0: skip)")
           ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
       cmd->add_option("-n,--generate", opt->generate, "tokens generated one by one (0: skip)")
           ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
       cmd->add_option("-r,--repetitions", opt->repetitions, "timed runs per test")
           ->check(CLI::Range(int64_t{1}, int64_t{1000}));
       cmd->add_option("-t,--threads", opt->threads, "threads (default: the pool's)")
           ->check(CLI::Range(1, ember::ThreadPool::kMaxThreads));
       cmd->add_flag("--json", opt->json,
                     "one JSON line per test with every run's tokens/s and CPU s/token");
       cmd->callback([opt] { run_bench(*opt); });
     }}};

}  // namespace
