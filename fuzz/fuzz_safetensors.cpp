// libFuzzer target for the safetensors reader (buffer API). Any input either parses or throws
// ember::Error; what parses must survive a round trip: serialising the parsed tensors and
// parsing that again gives the same names, dtypes, shapes, bytes and metadata, and serialising a
// second time gives the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <string>

#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_same(const ember::SafeTensors& a, const ember::SafeTensors& b) {
  check(a.size() == b.size());
  check(a.metadata() == b.metadata());
  check(a.has_metadata() == b.has_metadata());
  for (const ember::SafeTensorInfo& info : a.tensors()) {
    const ember::SafeTensorInfo& other = b.info(info.name);
    check(info.dtype == other.dtype);
    check(info.shape == other.shape);
    const auto x = a.tensor_bytes(info.name);
    const auto y = b.tensor_bytes(info.name);
    check(x.size() == y.size());
    check(x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  ember::SafeTensors parsed;
  try {
    parsed = ember::SafeTensors::from_bytes(bytes);
  } catch (const ember::Error&) {
    return 0;  // rejected cleanly
  }
  std::map<std::string, ember::Tensor> tensors;
  for (const ember::SafeTensorInfo& info : parsed.tensors()) {
    ember::Tensor t = parsed.tensor(info.name);
    check(t.nbytes() == info.nbytes());
    check(t.shape() == info.shape);
    if (!info.shape.empty()) {
      const int64_t rows = info.shape[0];
      check(parsed.slice(info.name, rows / 2, rows).shape()[0] == rows - rows / 2);
    }
    tensors.emplace(info.name, std::move(t));
  }
  const std::optional<ember::SafeTensorsMetadata> metadata =
      parsed.has_metadata() ? std::optional(parsed.metadata()) : std::nullopt;
  const std::vector<std::byte> written = ember::serialize_safetensors(tensors, metadata);
  const ember::SafeTensors again = ember::SafeTensors::from_bytes(written);
  check_same(parsed, again);
  check_same(again, parsed);

  std::map<std::string, ember::Tensor> again_tensors;
  for (const ember::SafeTensorInfo& info : again.tensors()) {
    again_tensors.emplace(info.name, again.tensor(info.name));
  }
  check(ember::serialize_safetensors(again_tensors, metadata) == written);
  return 0;
}
