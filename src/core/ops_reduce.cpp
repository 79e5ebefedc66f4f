// Reductions over one axis: the input is viewed as [outer, n, inner] (contiguous) and each of
// the outer*inner outputs reduces n elements spaced `inner` apart.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ember/base/thread_pool.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"
#include "ops_internal.hpp"

namespace ember::ops {
namespace {

enum class Reduce { Sum, Mean, Max, Argmax };

const char* reduce_name(Reduce r) {
  switch (r) {
    case Reduce::Sum:
      return "sum";
    case Reduce::Mean:
      return "mean";
    case Reduce::Max:
      return "max";
    case Reduce::Argmax:
      return "argmax";
  }
  return "reduce";
}

// Writes out[o * inner + i] for o in [o_lo, o_hi).
template <typename T, typename Out>
void reduce_block(Reduce r, const T* x, int64_t o_lo, int64_t o_hi, int64_t n, int64_t inner,
                  Out* out) {
  std::vector<double> acc(static_cast<size_t>(inner));
  std::vector<int64_t> arg(static_cast<size_t>(inner));
  for (int64_t o = o_lo; o < o_hi; ++o) {
    const T* base = x + o * n * inner;
    if (r == Reduce::Sum || r == Reduce::Mean) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const T* row = base + j * inner;
        for (int64_t i = 0; i < inner; ++i) acc[static_cast<size_t>(i)] += row[i];
      }
      const double scale = r == Reduce::Mean ? 1.0 / static_cast<double>(n) : 1.0;
      for (int64_t i = 0; i < inner; ++i) {
        // Mean over an empty axis is 0/0 = NaN, as in numpy.
        const double v = r == Reduce::Mean && n == 0 ? std::numeric_limits<double>::quiet_NaN()
                                                     : acc[static_cast<size_t>(i)] * scale;
        out[o * inner + i] = static_cast<Out>(v);
      }
      continue;
    }
    // Max / Argmax: the first NaN wins (it stays the maximum), else the first largest value.
    for (int64_t i = 0; i < inner; ++i) {
      acc[static_cast<size_t>(i)] = static_cast<double>(base[i]);
      arg[static_cast<size_t>(i)] = 0;
    }
    for (int64_t j = 1; j < n; ++j) {
      const T* row = base + j * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const auto ui = static_cast<size_t>(i);
        const double v = static_cast<double>(row[i]);
        if (std::isnan(acc[ui])) continue;
        if (v > acc[ui] || std::isnan(v)) {
          acc[ui] = v;
          arg[ui] = j;
        }
      }
    }
    for (int64_t i = 0; i < inner; ++i) {
      const auto ui = static_cast<size_t>(i);
      if constexpr (std::is_same_v<Out, int64_t>) {
        out[o * inner + i] = arg[ui];
      } else {
        out[o * inner + i] = static_cast<Out>(acc[ui]);
      }
    }
  }
}

Tensor reduce(Reduce r, const Tensor& x, int64_t axis, bool keepdim) {
  const char* name = reduce_name(r);
  detail::require_float(name, x);
  const int64_t rank = x.rank();
  if (rank == 0) throw Error(std::string(name) + ": input is a scalar (rank 0); nothing to reduce");
  const int64_t a = detail::normalize_axis(name, axis, rank);
  const int64_t n = x.shape()[static_cast<size_t>(a)];
  if (n == 0 && (r == Reduce::Max || r == Reduce::Argmax)) {
    throw Error(std::string(name) + ": axis " + std::to_string(axis) + " of shape " +
                shape_to_string(x.shape()) + " is empty");
  }
  int64_t outer = 1;
  int64_t inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= x.shape()[static_cast<size_t>(d)];
  for (int64_t d = a + 1; d < rank; ++d) inner *= x.shape()[static_cast<size_t>(d)];
  Shape out_shape = x.shape();
  if (keepdim) {
    out_shape[static_cast<size_t>(a)] = 1;
  } else {
    out_shape.erase(out_shape.begin() + a);
  }
  const bool f64 = x.dtype() == DType::F64;
  const Tensor in = f64 ? x.contiguous() : to_f32(x);
  const DType compute = f64 ? DType::F64 : DType::F32;
  Tensor out = Tensor::zeros(r == Reduce::Argmax ? DType::I64 : compute, out_shape);
  if (out.numel() == 0)
    return r == Reduce::Argmax || x.dtype() == compute ? out : out.to(x.dtype());
  // Parallel over outer slices; grain keeps each task around 64K input elements.
  const int64_t per_outer = std::max<int64_t>(1, n * inner);
  const int64_t grain = std::max<int64_t>(1, 65536 / per_outer);
  parallel_for(0, outer, grain, [&](int64_t lo, int64_t hi) {
    if (f64) {
      if (r == Reduce::Argmax) {
        reduce_block(r, in.data_as<double>(), lo, hi, n, inner, out.mutable_data_as<int64_t>());
      } else {
        reduce_block(r, in.data_as<double>(), lo, hi, n, inner, out.mutable_data_as<double>());
      }
    } else if (r == Reduce::Argmax) {
      reduce_block(r, in.data_as<float>(), lo, hi, n, inner, out.mutable_data_as<int64_t>());
    } else {
      reduce_block(r, in.data_as<float>(), lo, hi, n, inner, out.mutable_data_as<float>());
    }
  });
  if (r == Reduce::Argmax || x.dtype() == compute) return out;
  return convert_to(out, x.dtype());
}

}  // namespace

Tensor sum(const Tensor& x, int64_t axis, bool keepdim) {
  return reduce(Reduce::Sum, x, axis, keepdim);
}
Tensor mean(const Tensor& x, int64_t axis, bool keepdim) {
  return reduce(Reduce::Mean, x, axis, keepdim);
}
Tensor max(const Tensor& x, int64_t axis, bool keepdim) {
  return reduce(Reduce::Max, x, axis, keepdim);
}
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  return reduce(Reduce::Argmax, x, axis, keepdim);
}

}  // namespace ember::ops
