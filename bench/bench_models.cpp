// Model throughput helper for bench/models_bench.py:
//   bench_models embed --model DIR --sentences FILE --batch-size B [--repeat R]
//     embeds every line of FILE (plain text) and prints {"sentences", "seconds",
//     "sentences_per_s"} for the best of R passes (the model is loaded once, untimed).
//   bench_models generate --model DIR --prompt-ids "1 2 3" --new-tokens N [--repeat R]
//     greedy generation of N tokens (eos ignored) and prints {"prompt_tokens", "new_tokens",
//     "seconds", "tokens_per_s", "prefill_seconds"} for the best of R runs.
//   bench_models classify|ner --model DIR --sentences FILE --batch-size B [--repeat R]
//     runs the text-classification (top 1) or token-classification (no aggregation) pipeline on
//     every line of FILE and prints {"sentences", "seconds", "cpu_seconds", "sentences_per_s"}
//     for the best of R passes after one untimed pass (the model is loaded once, untimed).
// Threads: EMBER_NUM_THREADS and OPENBLAS_NUM_THREADS, set by the caller.
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "ember/generation/generate.hpp"
#include "ember/pipelines/sentence_embedding.hpp"
#include "ember/pipelines/text_tasks.hpp"

namespace {

// CPU time of the whole process (all threads) since c0: next to wall time, the figure that
// other work on a shared machine disturbs least.
double cpu_seconds_since(std::clock_t c0) {
  return static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(int argc, char** argv) {
  if (argc < 2) throw std::runtime_error("usage: bench_models embed|generate --model DIR ...");
  const std::string verb = argv[1];
  std::string model, sentences_path, prompt_ids;
  size_t batch_size = 32, repeat = 3;
  int64_t new_tokens = 64;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--model")
      model = v;
    else if (a == "--sentences")
      sentences_path = v;
    else if (a == "--batch-size")
      batch_size = std::stoul(v);
    else if (a == "--repeat")
      repeat = std::stoul(v);
    else if (a == "--prompt-ids")
      prompt_ids = v;
    else if (a == "--new-tokens")
      new_tokens = std::stoll(v);
    else
      throw std::runtime_error("unknown argument " + a);
  }
  nlohmann::json out;
  const auto read_lines = [&] {
    std::ifstream in(sentences_path);
    std::vector<std::string> texts;
    for (std::string line; std::getline(in, line);) texts.push_back(line);
    return texts;
  };
  // Best wall and CPU time of `repeat` passes of `pass`, after `warmup` untimed ones.
  const auto time_passes = [&](size_t sentences, size_t warmup, const auto& pass) {
    for (size_t w = 0; w < warmup; ++w) pass();
    double best = 1e300, best_cpu = 1e300;
    for (size_t r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      pass();
      best = std::min(best, seconds_since(t0));
      best_cpu = std::min(best_cpu, cpu_seconds_since(c0));
    }
    return nlohmann::json{{"sentences", sentences},
                          {"seconds", best},
                          {"cpu_seconds", best_cpu},
                          {"sentences_per_s", static_cast<double>(sentences) / best}};
  };
  if (verb == "embed") {
    const auto embedder = ember::pipelines::SentenceEmbedder::load(model);
    const std::vector<std::string> texts = read_lines();
    out = time_passes(texts.size(), 0, [&] { embedder.embed(texts, false, batch_size); });
  } else if (verb == "classify") {
    const auto classifier = ember::pipelines::TextClassifier::load(model);
    const std::vector<std::string> texts = read_lines();
    ember::pipelines::TextClassifier::Options options;
    options.batch_size = batch_size;
    out = time_passes(texts.size(), 1, [&] { classifier(texts, options); });
  } else if (verb == "ner") {
    const auto tagger = ember::pipelines::TokenClassifier::load(model);
    const std::vector<std::string> texts = read_lines();
    ember::pipelines::TokenClassifier::Options options;
    options.batch_size = batch_size;
    out = time_passes(texts.size(), 1, [&] { tagger(texts, options); });
  } else if (verb == "generate") {
    std::vector<int64_t> prompt;
    std::istringstream ids(prompt_ids);
    for (int64_t id; ids >> id;) prompt.push_back(id);
    ember::generation::GenerationConfig config;
    config.max_new_tokens = new_tokens;
    double best = 1e300, best_prefill = 1e300, best_cpu = 1e300;
    for (size_t r = 0; r < repeat; ++r) {
      const auto lm = ember::models::load_causal_lm(model);
      auto t0 = std::chrono::steady_clock::now();
      config.max_new_tokens = 1;
      ember::generation::generate(*lm, nullptr, {prompt}, config);
      best_prefill = std::min(best_prefill, seconds_since(t0));
      config.max_new_tokens = new_tokens;
      t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      const auto result = ember::generation::generate(*lm, nullptr, {prompt}, config);
      if (static_cast<int64_t>(result[0].ids.size()) != new_tokens)
        throw std::runtime_error("generated fewer tokens than asked");
      best = std::min(best, seconds_since(t0));
      best_cpu = std::min(best_cpu, cpu_seconds_since(c0));
    }
    out = {{"prompt_tokens", prompt.size()},
           {"new_tokens", new_tokens},
           {"seconds", best},
           {"cpu_seconds", best_cpu},
           {"prefill_seconds", best_prefill},
           {"tokens_per_s", static_cast<double>(new_tokens) / best}};
  } else {
    throw std::runtime_error("unknown verb " + verb);
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
