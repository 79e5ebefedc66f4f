// Encoder-decoder throughput helper for bench/seq2seq_bench.py:
//   bench_seq2seq --model DIR --texts FILE --batch-size B --beams K --new-tokens N
//                 [--prefix TEXT] [--repeat R]
// Loads the model and tokenizer once (untimed), then R times generates for every line of FILE
// (plain text, prefix prepended) in batches of B, with K beams and exactly N new tokens (EOS is
// banned until then: min_length = max_length, so that every engine does the same work). Prints
// {"seconds": [...], "cpu_seconds": [...], "ids": [[...] per input]} (the ids of the last pass).
// Threads: EMBER_NUM_THREADS and OPENBLAS_NUM_THREADS, set by the caller.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ember/generation/seq2seq.hpp"

namespace {

namespace gen = ember::generation;

int run(int argc, char** argv) {
  std::string model_dir, texts_path, prefix;
  size_t batch_size = 1, repeat = 3;
  int64_t beams = 4, new_tokens = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--model")
      model_dir = v;
    else if (a == "--texts")
      texts_path = v;
    else if (a == "--prefix")
      prefix = v;
    else if (a == "--batch-size")
      batch_size = std::stoul(v);
    else if (a == "--repeat")
      repeat = std::stoul(v);
    else if (a == "--beams")
      beams = std::stoll(v);
    else if (a == "--new-tokens")
      new_tokens = std::stoll(v);
    else
      throw std::runtime_error("unknown argument " + a);
  }
  if (batch_size == 0) throw std::runtime_error("--batch-size must be >= 1");
  const auto model = ember::models::load_seq2seq(model_dir);
  const auto tokenizer = gen::load_tokenizer(model_dir);
  gen::Seq2SeqConfig config = gen::Seq2SeqConfig::from_folder(model_dir);
  config.num_beams = beams;
  config.max_new_tokens = new_tokens;
  config.min_length = new_tokens + 1;  // counts the decoder start token
  config.validate(model->vocab_size());

  std::vector<std::vector<int64_t>> inputs;
  std::ifstream in(texts_path);
  for (std::string line; std::getline(in, line);) {
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
      const size_t last = std::min(inputs.size(), first + batch_size);
      const std::vector<std::vector<int64_t>> chunk(inputs.begin() + static_cast<ptrdiff_t>(first),
                                                    inputs.begin() + static_cast<ptrdiff_t>(last));
      const auto results = gen::generate_seq2seq(*model, chunk, config);
      for (size_t i = 0; i < results.size(); ++i) outputs[first + i] = results[i][0].ids;
    }
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  }
  std::cout << nlohmann::json{{"seconds", seconds}, {"cpu_seconds", cpu}, {"ids", outputs}}.dump()
            << "\n";
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
