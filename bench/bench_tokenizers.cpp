// Tokenizer throughput helper for bench/tokenizers_bench.py:
//   bench_tokenizers --tokenizer PATH --corpus FILE.jsonl --threads N [--ids-only] [--repeat R]
// The corpus is JSON Lines of strings when its name ends in .jsonl/.json, else plain text lines.
// Encodes every input of the corpus with encode_batch, or encode_batch_ids with --ids-only (one
// batch, the library's thread pool) and prints {"bytes":..., "seconds":..., "mb_per_s":...} for the
// best of R passes.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/tokenizers/tokenizer.hpp"

int main(int argc, char** argv) {
  std::string tokenizer_path, corpus_path;
  size_t threads = 1, repeat = 3;
  bool ids_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "error: " << a << " needs a value\n";
        std::exit(1);
      }
      return argv[++i];
    };
    try {
      if (a == "--tokenizer")
        tokenizer_path = value();
      else if (a == "--corpus")
        corpus_path = value();
      else if (a == "--threads")
        threads = std::stoul(value());
      else if (a == "--repeat")
        repeat = std::stoul(value());
      else if (a == "--ids-only")
        ids_only = true;
      else {
        std::cerr << "error: unknown argument " << a << "\n";
        return 1;
      }
    } catch (const std::exception&) {
      std::cerr << "error: bad value for " << a << "\n";
      return 1;
    }
  }
  if (tokenizer_path.empty() || corpus_path.empty() || threads == 0 || repeat == 0) {
    std::cerr << "usage: bench_tokenizers --tokenizer PATH --corpus FILE --threads N [--ids-only] "
                 "[--repeat R]\n";
    return 1;
  }
  try {
    auto tok = ember::tokenizers::Tokenizer::load(tokenizer_path);
    std::ifstream in(corpus_path);
    if (!in) throw std::runtime_error("cannot open " + corpus_path);
    std::vector<std::string> texts;
    size_t bytes = 0;
    const bool jsonl = corpus_path.ends_with(".jsonl") || corpus_path.ends_with(".json");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (jsonl) {
        auto j = nlohmann::json::parse(line);
        if (!j.is_string()) throw std::runtime_error("corpus lines must be JSON strings");
        texts.push_back(j.get<std::string>());
      } else {
        texts.push_back(line);
      }
      bytes += texts.back().size();
    }
    ember::set_num_threads(static_cast<int>(threads));
    double best = 1e300;
    size_t checksum = 0;
    for (size_t r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      if (ids_only) {
        auto ids = tok.encode_batch_ids(texts, false);
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
        for (const auto& v : ids) checksum += v.size();
      } else {
        auto encs = tok.encode_batch(texts, false);
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
        for (const auto& e : encs) checksum += e.ids.size() + e.offsets.size();
      }
    }
    std::printf("{\"bytes\": %zu, \"seconds\": %.6f, \"mb_per_s\": %.3f, \"tokens\": %zu}\n", bytes,
                best, static_cast<double>(bytes) / 1e6 / best, checksum / repeat);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
