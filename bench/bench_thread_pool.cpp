// Per-call overhead of the thread pool (Google Benchmark). A decoded token runs hundreds of
// small parallel_for calls, so what matters is the fixed cost of one call, not throughput:
//
//   build/bin/bench_thread_pool [--benchmark_filter=...] [--benchmark_repetitions=5]
//
// Each case runs on its own ThreadPool of 1 or 2 threads (the argument). At 1 thread every call
// runs inline, which is the floor; the 2-thread figure minus that is the cost of handing work to
// a worker and waiting for it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "ember/base/thread_pool.hpp"

namespace {

// Work small enough that the pool's own cost dominates: 64 items of nothing.
void BM_ParallelForEmpty(benchmark::State& state) {
  ember::ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    pool.parallel_for(0, 64, 1, [](int64_t lo, int64_t hi) { benchmark::DoNotOptimize(hi - lo); });
  }
}
BENCHMARK(BM_ParallelForEmpty)->Arg(1)->Arg(2)->UseRealTime();

// A tiny elementwise op: 4096 floats scaled in place (about a microsecond of work on one core).
void BM_ParallelForTiny(benchmark::State& state) {
  ember::ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<float> v(4096, 1.0f);
  for (auto _ : state) {
    pool.parallel_for(0, static_cast<int64_t>(v.size()), 256, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) v[static_cast<size_t>(i)] *= 1.0000001f;
    });
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_ParallelForTiny)->Arg(1)->Arg(2)->UseRealTime();

// The decode pattern: 1000 back-to-back calls of small chunks, as one token's layers issue them.
// Reported per call.
void BM_ThousandSmallCalls(benchmark::State& state) {
  ember::ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<float> v(1024, 1.0f);
  constexpr int kCalls = 1000;
  for (auto _ : state) {
    for (int call = 0; call < kCalls; ++call) {
      pool.parallel_for(0, static_cast<int64_t>(v.size()), 64, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) v[static_cast<size_t>(i)] += 1.0f;
      });
    }
    benchmark::ClobberMemory();
  }
  state.counters["ns_per_call"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kCalls,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ThousandSmallCalls)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
