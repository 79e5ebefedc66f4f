#pragma once
// Internal helpers shared by the SVM, neighbours, clustering and decomposition code: BLAS/LAPACK
// entry points (Debian OpenBLAS ships cblas.h but no lapacke.h, so LAPACK is declared here by its
// Fortran symbols), small matrix products, and a seeded random generator.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ember/base/thread_pool.hpp"
#include "ember/ml/common.hpp"

extern "C" {
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork,
             int* iwork, int* info);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a,
             const int* lda, const double* vl, const double* vu, const int* il, const int* iu,
             const double* abstol, int* m, double* w, double* z, const int* ldz, int* isuppz,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
// OpenBLAS (the BLAS Ember links, see BLA_VENDOR): how many threads a large product may start.
int openblas_get_num_threads(void);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau,
             double* work, const int* lwork, int* info);
}

namespace ember::ml::detail {

// C = alpha * op(A) * op(B) + beta * C for row-major Matrix objects (C must be sized).
inline void gemm(bool trans_a, bool trans_b, double alpha, const Matrix& a, const Matrix& b,
                 double beta, Matrix& c) {
  const int64_t m = trans_a ? a.cols : a.rows;
  const int64_t k = trans_a ? a.rows : a.cols;
  const int64_t n = trans_b ? b.rows : b.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (double& v : c.data) v *= beta;
    return;
  }
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a.data.data(), static_cast<int>(a.cols), b.data.data(),
              static_cast<int>(b.cols), beta, c.data.data(), static_cast<int>(c.cols));
}

inline Matrix matmul(const Matrix& a, bool trans_a, const Matrix& b, bool trans_b) {
  Matrix c(trans_a ? a.cols : a.rows, trans_b ? b.rows : b.cols);
  gemm(trans_a, trans_b, 1.0, a, b, 0.0, c);
  return c;
}

// On the pool in chunks of 1024 rows or more (each row's value does not depend on the split; a
// call from inside a pool task runs on its caller).
inline Vector row_squared_norms(const Matrix& x) {
  Vector out(static_cast<size_t>(x.rows));
  parallel_for(0, x.rows, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double* r = x.row(i);
      double s = 0;
      for (int64_t j = 0; j < x.cols; ++j) s += r[j] * r[j];
      out[static_cast<size_t>(i)] = s;
    }
  });
  return out;
}

// Calls fn(first_row, block) over consecutive row blocks of x, each block sized so that a
// block-by-`other_rows` matrix of doubles stays around 32 MiB: bounds the memory of
// query-versus-training computations whatever the number of queries.
template <class Fn>
void for_row_blocks(const Matrix& x, int64_t other_rows, Fn&& fn) {
  const int64_t rows =
      std::clamp<int64_t>((int64_t{1} << 22) / std::max<int64_t>(1, other_rows), 1, 4096);
  for (int64_t r0 = 0; r0 < x.rows; r0 += rows) {
    const int64_t r1 = std::min(x.rows, r0 + rows);
    Matrix block(r1 - r0, x.cols);
    std::copy_n(x.row(r0), (r1 - r0) * x.cols, block.data.begin());
    fn(r0, block);
  }
}

// LAPACK dimensions are 32-bit ints; refuse anything larger instead of truncating.
inline int lapack_int(int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max()) {
    throw Error(std::string(what) + ": matrix too large for LAPACK");
  }
  return static_cast<int>(v);
}

// xoshiro256** seeded through splitmix64: fast, reproducible on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : state_) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      s = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  double normal() {
    double u1 = uniform();
    while (u1 <= 0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace ember::ml::detail
