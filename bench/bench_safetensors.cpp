// Ember's side of bench/safetensors_bench.sh. Each mode times itself (steady clock, best of
// --repeats) and prints one line "seconds=<t> checksum=<c>".
//   bench_safetensors create PATH BYTES [LAYERS]
//                                             write an F32 file of ~BYTES: one small tensor
//                                             "small" [16] and LAYERS (default 16) equal
//                                             tensors "layer.N"
//   bench_safetensors open-one PATH [REPEATS] open (mmap + header) and read tensor "small"
//   bench_safetensors touch-all PATH [REPEATS] [--no-populate]
//                                             open and checksum every byte of every tensor,
//                                             chunks spread over ember::parallel_for
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/formats/safetensors.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sum of the 32-bit words: touches every byte, vectorizes, and is independent of float rounding.
uint64_t checksum_words(const std::byte* p, size_t n) {
  uint64_t sum = 0;
  const size_t words = n / 4;
  for (size_t i = 0; i < words; ++i) {
    uint32_t w;
    std::memcpy(&w, p + 4 * i, 4);
    sum += w;
  }
  for (size_t i = words * 4; i < n; ++i) sum += static_cast<uint8_t>(p[i]);
  return sum;
}

// `layers` equal tensors whatever the size, so files of different sizes have the same header
// shape and the open-time comparison isolates the file size (and the other way round).
int create(const std::string& path, uint64_t bytes, int layers) {
  std::map<std::string, ember::Tensor> tensors;
  std::vector<float> small(16);
  for (size_t i = 0; i < small.size(); ++i) small[i] = static_cast<float>(i) * 0.5f;
  tensors.emplace("small", ember::Tensor::from_f32({16}, small));
  const auto floats =
      static_cast<int64_t>((bytes > 64 ? bytes - 64 : 0) / 4 / static_cast<uint64_t>(layers));
  for (int layer = 0; layer < layers; ++layer) {
    ember::Tensor t = ember::Tensor::zeros(ember::DType::F32, {floats});
    float* d = t.mutable_data_as<float>();
    for (int64_t i = 0; i < floats; ++i) d[i] = static_cast<float>((i * 7 + layer) % 1000) * 1e-3f;
    tensors.emplace("layer." + std::to_string(layer), std::move(t));
  }
  ember::write_safetensors(path, tensors, ember::SafeTensorsMetadata{{"format", "pt"}});
  return 0;
}

int open_one(const std::string& path, int repeats) {
  double best = 1e30;
  double checksum = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    const ember::SafeTensors st = ember::SafeTensors::open(path);
    const std::vector<double> v = st.tensor("small").to_f64_vector();
    checksum = 0;
    for (double x : v) checksum += x;
    best = std::min(best, seconds_since(t0));
  }
  std::printf("seconds=%.9f checksum=%.3f\n", best, checksum);
  return 0;
}

int touch_all(const std::string& path, int repeats, bool populate) {
  constexpr size_t kChunk = 8 << 20;
  double best = 1e30;
  uint64_t checksum = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    const ember::SafeTensors st = ember::SafeTensors::open(path);
    st.advise_sequential_read();
    struct Range {
      const std::byte* p;
      size_t n;
    };
    std::vector<Range> chunks;
    for (const ember::SafeTensorInfo& info : st.tensors()) {
      const auto bytes = st.tensor_bytes(info.name);
      for (size_t off = 0; off < bytes.size(); off += kChunk) {
        chunks.push_back({bytes.data() + off, std::min(kChunk, bytes.size() - off)});
      }
    }
    const std::byte* file_base = st.mapped_file()->bytes().data();
    std::vector<uint64_t> sums(chunks.size());
    ember::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const Range& c = chunks[static_cast<size_t>(i)];
        // One madvise maps the chunk's pages instead of a page fault every few pages.
        if (populate) st.mapped_file()->populate_read(static_cast<size_t>(c.p - file_base), c.n);
        sums[static_cast<size_t>(i)] = checksum_words(c.p, c.n);
      }
    });
    checksum = 0;
    for (uint64_t s : sums) checksum += s;
    best = std::min(best, seconds_since(t0));
  }
  std::printf("seconds=%.9f checksum=%llu\n", best, static_cast<unsigned long long>(checksum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 3 && args[0] == "create") {
      return create(args[1], std::stoull(args[2]), args.size() >= 4 ? std::stoi(args[3]) : 16);
    }
    const int repeats = args.size() >= 3 ? std::stoi(args[2]) : 5;
    if (args.size() >= 2 && args[0] == "open-one") return open_one(args[1], repeats);
    if (args.size() >= 2 && args[0] == "touch-all") {
      const bool populate = std::find(args.begin(), args.end(), "--no-populate") == args.end();
      return touch_all(args[1], repeats, populate);
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: bench_safetensors create PATH BYTES [LAYERS] | open-one PATH [REPEATS] | "
               "touch-all PATH [REPEATS] [--no-populate]\n";
  return 1;
}
