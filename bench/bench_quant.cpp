// vec_dot throughput of the GGML block types at one thread, in GB/s of weight bytes read:
// a [1024, 4096] weight matrix (1.1 to 8.7 MiB depending on the type, past L2) dotted row by
// row with one activation row in the type's vec_dot_type, as linear does for a single token.
// "dispatched" is dtype_traits' kernel (SIMD where the type has one, best target or
// EMBER_SIMD), "reference" the scalar kernel of ember/core/quant.hpp, "rows" the type's
// multi-row dot (vec_dot_rows, decode's path where the type has one) over the same rows.
// prompt/<type>/panels is linear for a 512-row prompt, [512, 2048] @ [1024, 2048]^T, as linear
// runs it from 16 rows on (weights widened strip by strip into F32 GEMM panels);
// prompt/<type>/tile the same with EMBER_QUANT_TILES=1 (the type's tile kernel, vec_dot's
// arithmetic); prompt/<type>/widened the whole weight widened to F32 first (to_f32, timed), then
// the F32 linear. Items are multiply-adds; run with EMBER_NUM_THREADS=1 for the one-core figure.
//
//   build/bin/bench_quant [--benchmark_filter=Q4_K]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/convert.hpp"
#include "ember/core/dtype_traits.hpp"
#include "ember/core/ops.hpp"
#include "ember/core/quant.hpp"
#include "ember/core/tensor.hpp"

namespace {

using ember::DType;

constexpr size_t kRows = 1024;
constexpr size_t kCols = 4096;

struct Operands {
  std::vector<std::byte> w, x;
  size_t row_bytes = 0, x_bytes = 0;
};

Operands make_operands(DType t) {
  const ember::DTypeTraits& traits = ember::dtype_traits(t);
  const ember::DTypeTraits& act = ember::dtype_traits(traits.vec_dot_type);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(kCols);
  Operands op;
  op.row_bytes = *ember::dtype_bytes(t, kCols);
  op.x_bytes = *ember::dtype_bytes(traits.vec_dot_type, kCols);
  op.w.resize(kRows * op.row_bytes);
  for (size_t r = 0; r < kRows; ++r) {
    for (float& v : values) v = normal(rng);
    traits.from_f32(values.data(), op.w.data() + r * op.row_bytes, kCols);
  }
  for (float& v : values) v = normal(rng);
  op.x.resize(op.x_bytes);
  act.from_f32(values.data(), op.x.data(), kCols);
  return op;
}

void run(benchmark::State& state, DType t, bool reference) {
  const Operands op = make_operands(t);
  const auto dot = reference ? ember::quant::reference(t).vec_dot : ember::dtype_traits(t).vec_dot;
  for (auto _ : state) {
    float sum = 0.0f;
    for (size_t r = 0; r < kRows; ++r)
      sum += dot(op.w.data() + r * op.row_bytes, op.x.data(), kCols);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(op.w.size()));
}

void run_rows(benchmark::State& state, DType t) {
  const Operands op = make_operands(t);
  std::vector<float> out(kRows);
  for (auto _ : state) {
    ember::dtype_traits(t).vec_dot_rows(op.w.data(), op.row_bytes, kRows, op.x.data(), kCols,
                                        out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(op.w.size()));
}

enum class PromptPath { kPanels, kTile, kWidened };

void run_prompt(benchmark::State& state, DType t, PromptPath path) {
  constexpr int64_t kM = 512, kN = 1024, kK = 2048;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> xv(static_cast<size_t>(kM * kK)), wv(static_cast<size_t>(kN * kK));
  for (float& v : xv) v = normal(rng);
  for (float& v : wv) v = normal(rng);
  const ember::Tensor x = ember::Tensor::from_f32({kM, kK}, xv);
  const ember::Tensor w = ember::Tensor::from_f32({kN, kK}, wv).to(t);
  if (path == PromptPath::kTile) ::setenv("EMBER_QUANT_TILES", "1", 1);
  for (auto _ : state) {
    const ember::Tensor y =
        ember::ops::linear(x, path == PromptPath::kWidened ? ember::to_f32(w) : w);
    benchmark::DoNotOptimize(y.data());
  }
  ::unsetenv("EMBER_QUANT_TILES");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kM * kN * kK);
}

const DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                        DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

const bool registered = [] {
  for (DType t : kTypes) {
    const std::string name(ember::dtype_name(t));
    benchmark::RegisterBenchmark(("vec_dot/" + name + "/dispatched").c_str(),
                                 [t](benchmark::State& s) { run(s, t, false); });
    benchmark::RegisterBenchmark(("vec_dot/" + name + "/reference").c_str(),
                                 [t](benchmark::State& s) { run(s, t, true); });
    if (ember::dtype_traits(t).vec_dot_rows != nullptr) {
      benchmark::RegisterBenchmark(("vec_dot/" + name + "/rows").c_str(),
                                   [t](benchmark::State& s) { run_rows(s, t); });
    }
    const std::pair<const char*, PromptPath> paths[] = {{"panels", PromptPath::kPanels},
                                                        {"tile", PromptPath::kTile},
                                                        {"widened", PromptPath::kWidened}};
    for (const auto& entry : paths) {
      const PromptPath path = entry.second;
      benchmark::RegisterBenchmark(("prompt/" + name + "/" + entry.first).c_str(),
                                   [t, path](benchmark::State& s) { run_prompt(s, t, path); })
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
