// Model throughput helper for bench/models_bench.py:
//   bench_models embed --model DIR --sentences FILE --batch-size B [--repeat R]
//     embeds every line of FILE (plain text) and prints {"sentences", "seconds",
//     "sentences_per_s"} for the best of R passes (the model is loaded once, untimed).
//   bench_models generate --model DIR --prompt-ids "1 2 3" --new-tokens N [--repeat R]
//     greedy generation of N tokens (eos ignored) and prints {"prompt_tokens", "new_tokens",
//     "seconds", "tokens_per_s", "prefill_seconds"} for the best of R runs.
//   bench_models seq2seq --model DIR --texts FILE --batch-size B --beams K --new-tokens N
//                        [--prefix TEXT] [--repeat R] [--quantize TYPE]
//                        (for bench/seq2seq_bench.py)
//     R times generates for every line of FILE (plain text, prefix prepended) in batches of B,
//     with K beams and exactly N new tokens (EOS is banned until then: min_length = max_length,
//     so that every engine compared does the same work), and prints {"seconds": [...],
//     "cpu_seconds": [...], "ids": [[...] per input]} (every pass; the ids of the last).
//     --quantize Q8_0 quantizes the matrices at load (nn::quantize_matrices).
//   bench_models classify|ner --model DIR --sentences FILE --batch-size B [--repeat R]
//     runs the text-classification (top 1) or token-classification (no aggregation) pipeline on
//     every line of FILE and prints {"sentences", "seconds", "cpu_seconds", "sentences_per_s"}
//     for the best of R passes after one untimed pass (the model is loaded once, untimed).
//   bench_models qa --model DIR --sentences FILE --batch-size B [--repeat R]
//     the same for the question-answering pipeline (top 1, transformers' default windows) on
//     every line of FILE, a JSON object {"question", "context"}; B windows per forward pass.
// Threads: EMBER_NUM_THREADS and OPENBLAS_NUM_THREADS, set by the caller.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "ember/generation/generate.hpp"
#include "ember/generation/seq2seq.hpp"
#include "ember/models/config.hpp"
#include "ember/models/seq2seq_lm.hpp"
#include "ember/nn/quantized_weights.hpp"
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

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

nlohmann::json seq2seq(const std::string& model_dir, const std::string& texts_path,
                       const std::string& prefix, size_t batch_size, int64_t beams,
                       int64_t new_tokens, size_t repeat, const std::string& quantize) {
  namespace gen = ember::generation;
  if (batch_size == 0) throw std::runtime_error("--batch-size must be >= 1");
  ember::nn::Weights weights = ember::nn::Weights::open(model_dir);
  if (!quantize.empty()) {
    weights = ember::nn::quantize_matrices(weights, ember::nn::weight_block_type(quantize));
  }
  const auto model = ember::models::load_seq2seq(ember::models::Config::load(model_dir), weights);
  const auto tokenizer = gen::load_tokenizer(model_dir);
  gen::Seq2SeqConfig config = gen::Seq2SeqConfig::from_folder(model_dir);
  config.num_beams = beams;
  config.max_new_tokens = new_tokens;
  config.min_length = new_tokens + 1;  // counts the decoder start token
  config.validate(model->vocab_size());
  std::vector<std::vector<int64_t>> inputs;
  for (const std::string& line : read_lines(texts_path)) {
    const std::vector<uint32_t> ids = tokenizer.encode_ids(prefix + line, true);
    inputs.emplace_back(ids.begin(), ids.end());
  }
  if (inputs.empty()) throw std::runtime_error("no texts in " + texts_path);
  nlohmann::json seconds = nlohmann::json::array(), cpu = nlohmann::json::array();
  std::vector<std::vector<int64_t>> outputs(inputs.size());
  for (size_t r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    for (size_t first = 0; first < inputs.size(); first += batch_size) {
      const auto from = inputs.begin() + static_cast<ptrdiff_t>(first);
      const auto results = gen::generate_seq2seq(
          *model,
          {from, from + static_cast<ptrdiff_t>(std::min(batch_size, inputs.size() - first))},
          config);
      for (size_t i = 0; i < results.size(); ++i) outputs[first + i] = results[i][0].ids;
    }
    seconds.push_back(seconds_since(t0));
    cpu.push_back(cpu_seconds_since(c0));
  }
  return {{"seconds", seconds}, {"cpu_seconds", cpu}, {"ids", outputs}};
}

int run(int argc, char** argv) {
  if (argc < 2)
    throw std::runtime_error(
        "usage: bench_models embed|classify|ner|qa|generate|seq2seq --model DIR ...");
  const std::string verb = argv[1];
  std::string model, sentences_path, prompt_ids, prefix, quantize;
  size_t batch_size = 32, repeat = 3;
  int64_t new_tokens = 64, beams = 4;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--model")
      model = v;
    else if (a == "--sentences" || a == "--texts")
      sentences_path = v;
    else if (a == "--prefix")
      prefix = v;
    else if (a == "--beams")
      beams = std::stoll(v);
    else if (a == "--batch-size")
      batch_size = std::stoul(v);
    else if (a == "--repeat")
      repeat = std::stoul(v);
    else if (a == "--prompt-ids")
      prompt_ids = v;
    else if (a == "--new-tokens")
      new_tokens = std::stoll(v);
    else if (a == "--quantize")
      quantize = v;
    else
      throw std::runtime_error("unknown argument " + a);
  }
  nlohmann::json out;
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
    const std::vector<std::string> texts = read_lines(sentences_path);
    out = time_passes(texts.size(), 0, [&] { embedder.embed(texts, false, batch_size); });
  } else if (verb == "classify") {
    const auto classifier = ember::pipelines::TextClassifier::load(model);
    const std::vector<std::string> texts = read_lines(sentences_path);
    ember::pipelines::TextClassifier::Options options;
    options.batch_size = batch_size;
    out = time_passes(texts.size(), 1, [&] { classifier(texts, options); });
  } else if (verb == "ner") {
    const auto tagger = ember::pipelines::TokenClassifier::load(model);
    const std::vector<std::string> texts = read_lines(sentences_path);
    ember::pipelines::TokenClassifier::Options options;
    options.batch_size = batch_size;
    out = time_passes(texts.size(), 1, [&] { tagger(texts, options); });
  } else if (verb == "qa") {
    const auto answerer = ember::pipelines::QuestionAnswerer::load(model);
    std::vector<ember::pipelines::QaInput> inputs;
    for (const std::string& line : read_lines(sentences_path)) {
      const auto pair = nlohmann::json::parse(line);
      inputs.push_back({pair.at("question"), pair.at("context")});
    }
    ember::pipelines::QuestionAnswerer::Options options;
    options.batch_size = batch_size;
    out = time_passes(inputs.size(), 1, [&] { answerer(inputs, options); });
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
  } else if (verb == "seq2seq") {
    out = seq2seq(model, sentences_path, prefix, batch_size, beams, new_tokens, repeat, quantize);
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
