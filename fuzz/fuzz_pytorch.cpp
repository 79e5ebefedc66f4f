// libFuzzer target for the PyTorch checkpoint reader (buffer API). Any input either loads or
// throws ember::Error. What loads must be usable: every tensor's elements are read through its
// strided view (ASan checks that views stay inside their storage) and packed, and a safetensors
// file of the state dict parses back with the same names, shapes and bytes.
//
// The input is also given straight to the restricted unpickler: zip archives guard data.pkl with
// a CRC-32, so mutated archives rarely reach it; the legacy seeds and raw data.pkl seeds do.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <string>

#include "../src/formats/pytorch_pickle.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/pytorch.hpp"
#include "ember/formats/safetensors.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void load_checkpoint(std::span<const std::byte> bytes) {
  ember::PyTorchCheckpoint ckpt;
  try {
    ckpt = ember::PyTorchCheckpoint::from_bytes(bytes);
  } catch (const ember::Error&) {
    return;  // refused cleanly
  }
  std::map<std::string, ember::Tensor> tensors;
  for (const ember::PyTorchTensorInfo& info : ckpt.tensors()) {
    const ember::Tensor t = ckpt.tensor(info.name);
    check(t.shape() == info.shape);
    if (t.numel() > 0) {
      // The last element the view reaches; ASan reports it if it lies outside the storage.
      int64_t last = 0;
      for (size_t d = 0; d < info.shape.size(); ++d) last += (info.shape[d] - 1) * info.strides[d];
      volatile std::byte b = t.data()[static_cast<size_t>(last) * ember::dtype_size(t.dtype())];
      (void)b;
    }
    // Stride-0 (expanded) tensors may be far larger than the file; pack only small ones.
    if (t.nbytes() > (size_t{1} << 24)) return;
    const ember::Tensor packed = t.contiguous();
    check(packed.nbytes() == t.nbytes());
    tensors.emplace(info.name, packed);
  }
  std::vector<std::byte> written;
  try {
    written = ember::serialize_safetensors(tensors);
  } catch (const ember::Error&) {
    return;  // e.g. a state dict key safetensors reserves ("__metadata__")
  }
  const ember::SafeTensors again = ember::SafeTensors::from_bytes(written);
  check(again.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    check(again.info(name).shape == t.shape());
    const auto b = again.tensor_bytes(name);
    check(b.size() == t.nbytes() && (b.empty() || std::memcmp(b.data(), t.data(), b.size()) == 0));
  }
}

void unpickle(std::span<const std::byte> bytes) {
  try {
    const auto result = ember::formats_detail::unpickle_restricted(bytes, "fuzz");
    check(result.consumed <= bytes.size() && result.root < result.objects.size());
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  load_checkpoint(bytes);
  unpickle(bytes);
  return 0;
}
