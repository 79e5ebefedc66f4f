#include "ember/core/convert.hpp"

#include <algorithm>
#include <string>

#include "ember/base/thread_pool.hpp"
#include "ember/core/dtype_traits.hpp"

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

void require_defined(const Tensor& x, const char* op) {
  if (!x.defined()) throw Error(std::string(op) + ": undefined tensor");
}

// Block-quantized tensors widen through their dtype traits, a run of whole blocks per task.
Tensor to_f32_blocks(const Tensor& x) {
  const Tensor src = x.contiguous();
  Tensor out = Tensor::empty(DType::F32, x.shape());
  const DTypeInfo& info = dtype_info(x.dtype());
  const auto block = static_cast<int64_t>(info.block_elems);
  const auto widen = dtype_traits(x.dtype()).to_f32;
  const std::byte* in = src.data();
  float* dst = out.mutable_data_as<float>();
  parallel_for(0, out.numel() / block, std::max<int64_t>(1, kConvertGrain / block),
               [&](int64_t lo, int64_t hi) {
                 widen(in + static_cast<uint64_t>(lo) * info.block_bytes, dst + lo * block,
                       static_cast<size_t>((hi - lo) * block));
               });
  return out;
}

}  // namespace

Tensor to_f32(const Tensor& x) {
  require_defined(x, "to_f32");
  if (x.dtype() == DType::F32) return x.contiguous();
  if (is_quantized(x.dtype())) return to_f32_blocks(x);
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
  require_defined(x, "convert_to");
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
