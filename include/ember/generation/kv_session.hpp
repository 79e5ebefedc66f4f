#pragma once
// Saving a PromptCache to a file and restoring it: a chat or a prompt cache survives the process
// (llama.cpp's --prompt-cache and session files).
//
// Format, little-endian: magic "EMBERKV\0", u32 version (1), u32 length and bytes of the model
// identity, u64 layers, kv_heads, head_dim and token count n, n i64 token ids, then per layer the
// first n rows of keys and of values as F32 [n, kv_heads, head_dim]. Nothing follows.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "ember/generation/generate.hpp"

namespace ember::generation {

inline constexpr uint32_t kKvSessionVersion = 1;
inline constexpr size_t kMaxModelIdentityBytes = 4096;

// What a session file records of the model it came from: the model file's (or folder's) name and
// byte sizes. It catches restoring into another model; the cache's shape is checked as well.
std::string model_identity(const std::filesystem::path& model);

std::string serialize_kv_session(std::string_view model_identity, const PromptCache& cached);

// Restores `cached` (its cache allocated for this model, one sequence) from a file's bytes.
// Throws ember::Error naming what is wrong (magic, version, identity, shape, more tokens than
// the cache's capacity or the file holds, a token outside the vocabulary, trailing bytes),
// leaving `cached` empty.
void restore_kv_session(std::span<const uint8_t> bytes, std::string_view model_identity,
                        int64_t vocab, PromptCache& cached);

void save_kv_session(const std::filesystem::path& path, std::string_view model_identity,
                     const PromptCache& cached);
// Errors name the path.
void load_kv_session(const std::filesystem::path& path, std::string_view model_identity,
                     int64_t vocab, PromptCache& cached);

}  // namespace ember::generation
