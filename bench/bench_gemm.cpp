// Times one F32 GEMM library on the `linear` layout, C[M,N] = A[M,K] @ B[N,K]^T, for
// bench/gemm_bench.py, which runs one process per library so that symbols and thread settings of
// different libraries never meet.
//
//   bench_gemm KIND LIBRARY THREADS MIN_SECONDS < shapes
//
// KIND: openblas (Debian's libopenblas), scipy-openblas (the scipy_-prefixed build of the PyPI
// wheel), blis (cblas_* of libblis), dnnl (oneDNN's dnnl_sgemm). LIBRARY: the .so to dlopen.
// stdin: one "M N K" per line. stdout: a header line "info ..." naming the kernel the library
// picked, then per shape "M N K seconds_per_call calls ok|WRONG".
//
// M = 1 goes through cblas_sgemv, as ember's linear does; oneDNN has no GEMV, so it gets sgemm.
// The weights B cycle through enough copies to exceed the 32 MiB L3, so that each call reads
// them from memory as a model's forward pass does (every layer's weights are touched once).
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

// CBLAS enum values, fixed by the CBLAS standard.
constexpr int kRowMajor = 101;
constexpr int kNoTrans = 111;
constexpr int kTrans = 112;

using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                            int, float, float*, int);
using CblasSgemv = void (*)(int, int, int, int, float, const float*, int, const float*, int, float,
                            float*, int);
using DnnlSgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);

struct Library {
  CblasSgemm sgemm = nullptr;
  CblasSgemv sgemv = nullptr;
  DnnlSgemm dnnl_sgemm = nullptr;
  std::string kernel;  // what the library says it runs on this CPU
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_gemm: %s\n", what.c_str());
  std::exit(2);
}

template <typename Fn>
Fn symbol(void* handle, const char* name) {
  void* p = dlsym(handle, name);
  if (p == nullptr) die(std::string("missing symbol ") + name);
  return reinterpret_cast<Fn>(p);
}

Library open_library(const std::string& kind, const std::string& path, int threads) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) die(std::string("dlopen: ") + dlerror());
  Library lib;
  if (kind == "openblas" || kind == "scipy-openblas") {
    const std::string prefix = kind == "scipy-openblas" ? "scipy_" : "";
    lib.sgemm = symbol<CblasSgemm>(h, (prefix + "cblas_sgemm").c_str());
    lib.sgemv = symbol<CblasSgemv>(h, (prefix + "cblas_sgemv").c_str());
    symbol<void (*)(int)>(h, (prefix + "openblas_set_num_threads").c_str())(threads);
    lib.kernel = symbol<char* (*)()>(h, (prefix + "openblas_get_corename").c_str())();
    lib.kernel +=
        std::string(" | ") + symbol<char* (*)()>(h, (prefix + "openblas_get_config").c_str())();
  } else if (kind == "blis") {
    lib.sgemm = symbol<CblasSgemm>(h, "cblas_sgemm");
    lib.sgemv = symbol<CblasSgemv>(h, "cblas_sgemv");
    symbol<void (*)(int64_t)>(h, "bli_thread_set_num_threads")(threads);
    const int arch = symbol<int (*)()>(h, "bli_arch_query_id")();
    lib.kernel = std::string("BLIS ") + symbol<const char* (*)()>(h, "bli_info_get_version_str")() +
                 " arch " + symbol<const char* (*)(int)>(h, "bli_arch_string")(arch);
  } else if (kind == "dnnl") {
    lib.dnnl_sgemm = symbol<DnnlSgemm>(h, "dnnl_sgemm");
    struct Version {
      int major, minor, patch;
      const char* hash;
      unsigned cpu_runtime, gpu_runtime;
    };
    const Version* v = symbol<const Version* (*)()>(h, "dnnl_version")();
    const unsigned isa = symbol<unsigned (*)()>(h, "dnnl_get_effective_cpu_isa")();
    char isa_hex[16];
    std::snprintf(isa_hex, sizeof isa_hex, "0x%x", isa);
    lib.kernel = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                 std::to_string(v->patch) + " isa " + isa_hex + " (threads: OMP_NUM_THREADS)";
  } else {
    die("unknown kind " + kind);
  }
  return lib;
}

void linear(const Library& lib, int m, int n, int k, const float* a, const float* b, float* c) {
  if (lib.dnnl_sgemm != nullptr) {
    if (lib.dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n) != 0) die("dnnl_sgemm");
  } else if (m == 1) {
    lib.sgemv(kRowMajor, kNoTrans, n, k, 1.0f, b, k, a, 1, 0.0f, c, 1);
  } else {
    lib.sgemm(kRowMajor, kNoTrans, kTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
  }
}

// Checks sampled outputs against a double-precision dot product; the bound is the standard
// worst-case F32 summation error, K * eps * sum |a||b|, so any correct library passes it.
bool spot_check(int m, int n, int k, const float* a, const float* b, const float* c) {
  std::mt19937 rng(7);
  for (int s = 0; s < 64; ++s) {
    const int i = static_cast<int>(rng() % static_cast<unsigned>(m));
    const int j = static_cast<int>(rng() % static_cast<unsigned>(n));
    double exact = 0, magnitude = 0;
    for (int p = 0; p < k; ++p) {
      const double x = a[static_cast<size_t>(i) * k + p], y = b[static_cast<size_t>(j) * k + p];
      exact += x * y;
      magnitude += std::fabs(x * y);
    }
    const double bound = k * 1.2e-7 * magnitude + 1e-30;
    if (std::fabs(c[static_cast<size_t>(i) * n + j] - exact) > bound) return false;
  }
  return true;
}

std::vector<float> random_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) die("usage: bench_gemm KIND LIBRARY THREADS MIN_SECONDS < shapes");
  const int threads = std::atoi(argv[3]);
  const double min_seconds = std::atof(argv[4]);
  const Library lib = open_library(argv[1], argv[2], threads);
  std::printf("info %s\n", lib.kernel.c_str());
  std::fflush(stdout);

  constexpr size_t kColdBytes = size_t{64} << 20;  // twice the L3
  int m = 0, n = 0, k = 0;
  while (std::scanf("%d %d %d", &m, &n, &k) == 3) {
    const size_t b_size = static_cast<size_t>(n) * k;
    const size_t copies = std::max<size_t>(1, kColdBytes / (b_size * sizeof(float)));
    const std::vector<float> a = random_values(static_cast<size_t>(m) * k, 1);
    std::vector<float> b = random_values(b_size, 2);
    b.resize(b_size * copies);
    for (size_t copy = 1; copy < copies; ++copy)
      std::copy_n(b.begin(), b_size, b.begin() + static_cast<std::ptrdiff_t>(copy * b_size));
    std::vector<float> c(static_cast<size_t>(m) * n);

    linear(lib, m, n, k, a.data(), b.data(), c.data());  // warm-up, and the result to check
    const bool ok = spot_check(m, n, k, a.data(), b.data(), c.data());
    // Best single call: on a shared machine the minimum is the least disturbed estimate.
    double best = 1e30;
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    for (size_t copy = 0;; copy = (copy + 1) % copies) {
      const auto t0 = std::chrono::steady_clock::now();
      linear(lib, m, n, k, a.data(), b.data() + copy * b_size, c.data());
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
      ++calls;
      if (calls >= 3 && std::chrono::duration<double>(t1 - start).count() >= min_seconds) break;
    }
    std::printf("%d %d %d %.9g %d %s\n", m, n, k, best, calls, ok ? "ok" : "WRONG");
    std::fflush(stdout);
  }
  return 0;
}
