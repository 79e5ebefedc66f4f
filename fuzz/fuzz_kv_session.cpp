// libFuzzer target for KV session files (generation/kv_session.hpp). Any input either restores
// or throws ember::Error leaving the cache empty; what restores must serialize back to the same
// bytes (same version and element type) or to a file that restores to itself (older versions,
// F16 elements).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "ember/base/error.hpp"
#include "ember/generation/kv_session.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr char kIdentity[] = "fuzz-model 1";
constexpr int64_t kVocab = 64;

// Two layers, 2 kv heads of 4 dims, room for 8 tokens: small enough that the fuzzer reaches
// files that restore.
ember::generation::PromptCache empty_cache() {
  ember::models::KvCache cache;
  for (int i = 0; i < 2; ++i) {
    cache.layers.push_back({ember::Tensor::zeros(ember::DType::F32, {1, 8, 2, 4}),
                            ember::Tensor::zeros(ember::DType::F32, {1, 8, 2, 4})});
  }
  return ember::generation::PromptCache(std::move(cache));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::generation::PromptCache cached = empty_cache();
  std::string note;
  try {
    note = ember::generation::restore_kv_session(std::span(data, size), kIdentity, kVocab, cached);
  } catch (const ember::Error&) {
    check(cached.cache.length == 0 && cached.tokens.empty());
    return 0;
  }
  const std::string again = ember::generation::serialize_kv_session(kIdentity, cached, note);
  uint32_t version = 0, element = 0;
  std::memcpy(&version, data + 8, sizeof version);  // restored, so the header is there
  // A version 3 file of the cache's own element type (F32) comes back byte for byte; older
  // versions and F16 files are converted, so there the saved file must be a fixed point.
  const size_t type_at = 8 + 4 + 4 + (sizeof(kIdentity) - 1) + 4 + note.size() + 32;
  if (version == 3) std::memcpy(&element, data + type_at, sizeof element);
  if (version == 3 && element == 0) {
    check(again.size() == size && std::memcmp(again.data(), data, size) == 0);
    return 0;
  }
  ember::generation::PromptCache reread = empty_cache();
  const std::span bytes(reinterpret_cast<const uint8_t*>(again.data()), again.size());
  check(ember::generation::restore_kv_session(bytes, kIdentity, kVocab, reread) == note);
  check(reread.tokens == cached.tokens &&
        ember::generation::serialize_kv_session(kIdentity, reread, note) == again);
  return 0;
}
