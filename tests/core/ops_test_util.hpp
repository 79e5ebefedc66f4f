#pragma once
// Helpers for the ops tests: random tensors, multi-index iteration and tolerant comparison
// against double-precision references computed in the tests.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::test {

inline Tensor random_tensor(Shape shape, uint32_t seed, double lo = -2.0, double hi = 2.0,
                            DType dtype = DType::F32) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = dist(rng);
  return Tensor::from_values<double>(DType::F64, std::move(shape), v).to(dtype);
}

inline Tensor f64_tensor(Shape shape, std::vector<double> values) {
  return Tensor::from_values<double>(DType::F64, std::move(shape), values);
}

inline Tensor f32_tensor(Shape shape, std::vector<float> values) {
  return Tensor::from_f32(std::move(shape), values);
}

// Row-major multi-index of flat position `flat` in `shape`.
inline std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  return idx;
}

// Flat position in `shape` of the broadcast source for output index `out_idx` (right-aligned).
inline int64_t broadcast_flat(const std::vector<int64_t>& out_idx, const Shape& shape) {
  int64_t flat = 0;
  const size_t lead = out_idx.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t i = shape[d] == 1 ? 0 : out_idx[lead + d];
    flat = flat * shape[d] + i;
  }
  return flat;
}

// Every element within atol + rtol * |want|; NaN must match NaN, infinities must match exactly.
inline void expect_close(const Tensor& got, const std::vector<double>& want, double rtol,
                         double atol, const std::string& what = "") {
  const std::vector<double> g = got.to_f64_vector();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(g[i])) << what << " at " << i << ": got " << g[i] << ", want NaN";
    } else if (std::isinf(want[i])) {
      ASSERT_EQ(g[i], want[i]) << what << " at " << i;
    } else {
      ASSERT_NEAR(g[i], want[i], atol + rtol * std::fabs(want[i])) << what << " at " << i;
    }
  }
}

// Runs `fn` and checks it throws ember::Error whose message contains every fragment.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<const char*> fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected ember::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* f : fragments) {
      EXPECT_NE(msg.find(f), std::string::npos) << "message '" << msg << "' lacks '" << f << "'";
    }
  }
}

}  // namespace ember::test
