// Throughput of the tensor core ops: GEMM GFLOP/s (matmul / linear) and GB/s of the
// bandwidth-bound kernels, SIMD next to the scalar references.
//
//   build-core/bin/bench_core [--quick | --small-m | --large-m | --stream]
//
// Threads: EMBER_NUM_THREADS for the pool, OPENBLAS_NUM_THREADS for BLAS (defaults: all cores).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/ops.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Median-free but robust enough: runs fn until min_seconds have passed, returns seconds per call.
double time_per_call(const std::function<void()>& fn, double min_seconds) {
  fn();  // warm-up
  int64_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed / static_cast<double>(calls);
}

ember::Tensor random_f32(ember::Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(ember::shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return ember::Tensor::from_f32(std::move(shape), v);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember;
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool small_m = argc > 1 && std::strcmp(argv[1], "--small-m") == 0;
  const double min_s = quick ? 0.05 : 0.4;
  std::printf("threads=%d simd=%s\n", default_thread_pool().num_threads(),
              kernels::simd_active_target().c_str());

  // --stream: a decode step's linears, a few rows against packed weights far larger than the
  // caches (bart-base's six decoder layers and its 50265 x 768 head, 352 MB), so the kernel is
  // bound by reading the weights from memory: GB/s of weights, best of several passes.
  if (argc > 1 && std::strcmp(argv[1], "--stream") == 0) {
    std::vector<Tensor> weights, packed;
    uint32_t seed = 20;
    for (int layer = 0; layer < 6; ++layer) {
      for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
               {2304, 768}, {768, 768}, {768, 768}, {768, 768}, {3072, 768}, {768, 3072}}) {
        weights.push_back(random_f32({n, k}, seed++));
      }
    }
    weights.push_back(random_f32({50265, 768}, seed++));
    for (const Tensor& w : weights) packed.push_back(ops::pack_linear_weight(w));
    double bytes = 0;
    for (const Tensor& w : weights) bytes += static_cast<double>(w.numel()) * sizeof(float);
    std::printf("\n%-10s %10s %10s\n", "rows", "ms/pass", "GB/s");
    for (const int64_t m : {1, 2, 4, 6, 8, 12, 16, 32, 64}) {
      std::vector<Tensor> xs;
      xs.reserve(weights.size());
      for (const Tensor& w : weights) xs.push_back(random_f32({m, w.dim(1)}, 3));
      double best = 1e9;
      for (int pass = 0; pass < 8; ++pass) {
        const auto start = Clock::now();
        for (size_t i = 0; i < weights.size(); ++i)
          ops::linear(xs[i], weights[i], Tensor(), packed[i]);
        best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
      }
      std::printf("%-10lld %10.2f %10.1f\n", static_cast<long long>(m), best * 1e3,
                  bytes / best / 1e9);
    }
    return 0;
  }

  // linear with its packed weight (ember's kernel at every M) against BLAS on the same weight.
  // --small-m: the all-MiniLM-L6-v2 (K 384/1536) and SmolLM2-135M (K 576) projection shapes up
  // to 1024 rows; --large-m: t5-small (512/2048), BERT-base (768/3072) and MiniLM shapes at the
  // rows of batched encoders (16 x 400 tokens = 6400).
  const bool large_m = argc > 1 && std::strcmp(argv[1], "--large-m") == 0;
  using Shapes = std::vector<std::pair<int64_t, int64_t>>;
  const Shapes shapes =
      large_m ? Shapes{{512, 512},  {2048, 512}, {512, 2048}, {768, 768},
                       {3072, 768}, {768, 3072}, {1152, 384}, {384, 1536}}
              : Shapes{{1152, 384}, {1536, 384}, {384, 1536}, {1536, 576}, {576, 1536}};
  const std::vector<int64_t> row_counts =
      large_m ? std::vector<int64_t>{256, 1024, 2048, 6400}
              : std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  std::printf("\n%-24s %4s %12s %12s %8s\n", "linear N x K", "M", "BLAS us", "packed us",
              "speedup");
  for (const auto& [n, k] : shapes) {
    const Tensor w = random_f32({n, k}, 8);
    const Tensor packed = ops::pack_linear_weight(w);
    for (const int64_t m : row_counts) {
      const Tensor x = random_f32({m, k}, 9);
      const double blas = time_per_call([&] { ops::linear(x, w); }, quick ? 0.02 : 0.2);
      const double own =
          time_per_call([&] { ops::linear(x, w, Tensor(), packed); }, quick ? 0.02 : 0.2);
      std::printf("%-24s %4lld %12.1f %12.1f %8.2f\n",
                  (std::to_string(n) + " x " + std::to_string(k)).c_str(),
                  static_cast<long long>(m), blas * 1e6, own * 1e6, blas / own);
    }
  }
  if (small_m || large_m) return 0;

  std::printf("\n%-34s %12s %10s\n", "gemm", "ms/call", "GFLOP/s");
  struct Gemm {
    const char* what;
    int64_t m, n, k;
    DType weight;
  };
  const Gemm gemms[] = {
      {"linear 1x4096x4096 f32 (decode)", 1, 4096, 4096, DType::F32},
      {"linear 1x4096x4096 f16 weight", 1, 4096, 4096, DType::F16},
      {"linear 1x4096x4096 bf16 weight", 1, 4096, 4096, DType::BF16},
      {"linear 128x768x768 f32", 128, 768, 768, DType::F32},
      {"linear 128x3072x768 f32 (MLP)", 128, 3072, 768, DType::F32},
      {"linear 512x512x512 f32", 512, 512, 512, DType::F32},
      {"linear 1024x1024x1024 f32", 1024, 1024, 1024, DType::F32},
      {"linear 128x768x768 bf16 weight", 128, 768, 768, DType::BF16},
  };
  for (const Gemm& g : gemms) {
    const Tensor x = random_f32({g.m, g.k}, 1);
    const Tensor w = convert_to(random_f32({g.n, g.k}, 2), g.weight);
    const double s = time_per_call([&] { ops::linear(x, w); }, min_s);
    std::printf("%-34s %12.3f %10.1f\n", g.what, s * 1e3,
                2.0 * static_cast<double>(g.m * g.n * g.k) / s * 1e-9);
  }
  {
    // Attention-shaped batched matmul: [12 heads, 128, 64] @ [12, 64, 128].
    const Tensor q = random_f32({12, 128, 64}, 3);
    const Tensor kt = random_f32({12, 128, 64}, 4).transpose(1, 2);
    const double s = time_per_call([&] { ops::matmul(q, kt); }, min_s);
    std::printf("%-34s %12.3f %10.1f\n", "matmul 12x(128x64 @ 64x128)", s * 1e3,
                2.0 * 12 * 128 * 128 * 64 / s * 1e-9);
  }

  // Bandwidth-bound kernels: bytes = input + output bytes per call.
  std::printf("\n%-34s %12s %10s %10s\n", "kernel (F32 unless noted)", "ms/call", "GB/s",
              "scalar GB/s");
  const int64_t rows = 256;
  const int64_t cols = 4096;
  const auto n = static_cast<size_t>(rows * cols);
  const Tensor x = random_f32({rows, cols}, 5);
  const Tensor y2 = random_f32({rows, cols}, 6);
  const Tensor w = random_f32({cols}, 7);
  std::vector<float> out(n);
  const float* px = x.data_as<float>();
  auto report = [&](const char* what, double bytes, const std::function<void()>& simd,
                    const std::function<void()>& scalar) {
    const double s = time_per_call(simd, min_s);
    const double r = scalar ? time_per_call(scalar, min_s) : 0.0;
    std::printf("%-34s %12.3f %10.2f", what, s * 1e3, bytes / s * 1e-9);
    if (scalar) std::printf(" %10.2f", bytes / r * 1e-9);
    std::printf("\n");
  };
  const double rw = 8.0 * static_cast<double>(n);
  // Single-thread kernel rows (what one pool task runs) vs the scalar reference.
  report(
      "softmax rows (1 thread)", rw,
      [&] {
        for (int64_t r = 0; r < rows; ++r)
          kernels::softmax_row_f32(px + r * cols, out.data() + r * cols, cols);
      },
      [&] {
        for (int64_t r = 0; r < rows; ++r)
          kernels::ref::softmax_row_f32(px + r * cols, out.data() + r * cols, cols);
      });
  report(
      "layer_norm rows (1 thread)", rw,
      [&] {
        for (int64_t r = 0; r < rows; ++r)
          kernels::layer_norm_row_f32(px + r * cols, w.data_as<float>(), w.data_as<float>(), 1e-5f,
                                      out.data() + r * cols, cols);
      },
      [&] {
        for (int64_t r = 0; r < rows; ++r)
          kernels::ref::layer_norm_row_f32(px + r * cols, w.data_as<float>(), w.data_as<float>(),
                                           1e-5f, out.data() + r * cols, cols);
      });
  report(
      "gelu (1 thread)", rw, [&] { kernels::unary_f32(kernels::UnaryOp::Gelu, px, out.data(), n); },
      [&] { kernels::ref::unary_f32(kernels::UnaryOp::Gelu, px, out.data(), n); });
  report(
      "silu (1 thread)", rw, [&] { kernels::unary_f32(kernels::UnaryOp::Silu, px, out.data(), n); },
      [&] { kernels::ref::unary_f32(kernels::UnaryOp::Silu, px, out.data(), n); });
  report(
      "add (1 thread)", 12.0 * static_cast<double>(n),
      [&] { kernels::binary_f32(kernels::BinaryOp::Add, px, y2.data_as<float>(), out.data(), n); },
      [&] {
        kernels::ref::binary_f32(kernels::BinaryOp::Add, px, y2.data_as<float>(), out.data(), n);
      });
  {
    std::vector<uint16_t> h(n);
    ref::convert_f32_to_f16(px, h.data(), n);
    const double hb = 6.0 * static_cast<double>(n);
    report(
        "f16->f32 (1 thread)", hb, [&] { convert_f16_to_f32(h.data(), out.data(), n); },
        [&] { ref::convert_f16_to_f32(h.data(), out.data(), n); });
    report(
        "bf16->f32 (1 thread)", hb, [&] { convert_bf16_to_f32(h.data(), out.data(), n); },
        [&] { ref::convert_bf16_to_f32(h.data(), out.data(), n); });
    report(
        "f32->f16 (1 thread)", hb, [&] { convert_f32_to_f16(px, h.data(), n); },
        [&] { ref::convert_f32_to_f16(px, h.data(), n); });
    report(
        "f32->bf16 (1 thread)", hb, [&] { convert_f32_to_bf16(px, h.data(), n); },
        [&] { ref::convert_f32_to_bf16(px, h.data(), n); });
  }
  // Whole ops through the pool (allocation of the output included).
  report(
      "ops::softmax [256,4096] (pool)", rw, [&] { ops::softmax(x); }, nullptr);
  report(
      "ops::layer_norm (pool)", rw, [&] { ops::layer_norm(x, w, w); }, nullptr);
  report(
      "ops::gelu (pool)", rw, [&] { ops::gelu(x); }, nullptr);
  report(
      "ops::add [256,4096]+[4096] (pool)", 8.0 * static_cast<double>(n), [&] { ops::add(x, w); },
      nullptr);
  return 0;
}
