#include "ember/core/convert.hpp"

#include <string>

#include "ember/base/thread_pool.hpp"

namespace ember {
namespace {

// Large enough that one chunk (>= 256 KiB moved) dwarfs the pool's hand-off cost.
constexpr int64_t kConvertGrain = 1 << 16;

template <typename Src, typename Dst>
void parallel_convert(void (*fn)(const Src*, Dst*, size_t), const Src* src, Dst* dst, int64_t n) {
  parallel_for(0, n, kConvertGrain, [&](int64_t lo, int64_t hi) {
    fn(src + lo, dst + lo, static_cast<size_t>(hi - lo));
  });
}

void require_scalar(const Tensor& x, const char* op) {
  if (!x.defined()) throw Error(std::string(op) + ": undefined tensor");
  if (is_quantized(x.dtype())) {
    throw Error(std::string(op) + ": quantized dtype " + std::string(dtype_name(x.dtype())) +
                " is not supported");
  }
}

}  // namespace

Tensor to_f32(const Tensor& x) {
  require_scalar(x, "to_f32");
  if (x.dtype() == DType::F32) return x.contiguous();
  if (x.dtype() != DType::F16 && x.dtype() != DType::BF16) return x.to(DType::F32);
  const Tensor src = x.contiguous();
  Tensor out = Tensor::empty(DType::F32, x.shape());
  const auto* in = src.data_as<uint16_t>();
  auto* dst = out.mutable_data_as<float>();
  parallel_convert(x.dtype() == DType::F16 ? &convert_f16_to_f32 : &convert_bf16_to_f32, in, dst,
                   out.numel());
  return out;
}

Tensor convert_to(const Tensor& x, DType dtype) {
  require_scalar(x, "convert_to");
  if (x.dtype() == dtype) return x.contiguous();
  if (dtype == DType::F32) return to_f32(x);
  if (x.dtype() == DType::F32 && (dtype == DType::F16 || dtype == DType::BF16)) {
    const Tensor src = x.contiguous();
    Tensor out = Tensor::empty(dtype, x.shape());
    parallel_convert(dtype == DType::F16 ? &convert_f32_to_f16 : &convert_f32_to_bf16,
                     src.data_as<float>(), out.mutable_data_as<uint16_t>(), out.numel());
    return out;
  }
  return x.to(dtype);
}

}  // namespace ember
