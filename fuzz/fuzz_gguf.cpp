// libFuzzer target for the GGUF reader (buffer API). Any input either parses or throws
// ember::Error; what parses must survive a round trip: writing the parsed metadata and tensors
// and parsing that again gives the same metadata, names, dtypes, shapes and bytes, and writing a
// second time gives the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

std::vector<std::pair<std::string, ember::Tensor>> tensors_of(const ember::GgufFile& f) {
  std::vector<std::pair<std::string, ember::Tensor>> out;
  for (const ember::GgufTensorInfo& info : f.tensors()) {
    ember::Tensor t = f.tensor(info.name);
    check(t.nbytes() == info.nbytes);
    check(t.shape() == info.shape);
    out.emplace_back(info.name, std::move(t));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  ember::GgufFile parsed;
  try {
    parsed = ember::GgufFile::from_bytes(bytes);
  } catch (const ember::Error&) {
    return 0;  // rejected cleanly
  }
  const auto tensors = tensors_of(parsed);
  // The writer accepts everything the reader does (keys, names, alignment, dims, dtypes): an
  // exception here escapes and is reported as a crash.
  const std::vector<std::byte> written = ember::serialize_gguf(parsed.metadata(), tensors);
  const ember::GgufFile again = ember::GgufFile::from_bytes(written);
  check(again.metadata().size() == parsed.metadata().size());
  for (size_t k = 0; k < parsed.metadata().size(); ++k) {
    check(again.metadata()[k].key == parsed.metadata()[k].key);
    check(again.metadata()[k].value.to_json() == parsed.metadata()[k].value.to_json());
    check(again.metadata()[k].value.type() == parsed.metadata()[k].value.type());
  }
  check(again.tensors().size() == parsed.tensors().size());
  for (const ember::GgufTensorInfo& info : parsed.tensors()) {
    const ember::GgufTensorInfo& other = again.info(info.name);
    check(other.dtype == info.dtype && other.shape == info.shape);
    const auto x = parsed.tensor_bytes(info.name);
    const auto y = again.tensor_bytes(info.name);
    check(x.size() == y.size());
    check(x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
  }
  check(ember::serialize_gguf(again.metadata(), tensors_of(again)) == written);
  return 0;
}
