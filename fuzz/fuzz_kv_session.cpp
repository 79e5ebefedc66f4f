// libFuzzer target for KV session files (generation/kv_session.hpp). Any input either restores
// or throws ember::Error leaving the cache empty; what restores must serialize back to the same
// bytes (a version 1 input: to the same bytes as version 2 with an empty note).
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
  uint32_t version = 0;
  std::memcpy(&version, data + 8, sizeof version);  // restored, so the header is there
  if (version == 1) {
    // Version 2 adds a u32 note length (0) after the identity.
    const size_t split = 16 + sizeof(kIdentity) - 1;
    check(again.size() == size + 4 && std::memcmp(again.data() + 12, data + 12, split - 12) == 0 &&
          std::memcmp(again.data() + split + 4, data + split, size - split) == 0);
  } else {
    check(again.size() == size && std::memcmp(again.data(), data, size) == 0);
  }
  return 0;
}
