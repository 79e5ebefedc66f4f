#pragma once
// Saving a PromptCache to a file and restoring it: a chat or a prompt cache survives the process
// (llama.cpp's --prompt-cache and session files).
//
// Format, little-endian: magic "EMBERKV\0", u32 version (3), u32 length and bytes of the model
// identity, u32 length and bytes of a note (what the application keeps with the cache: `ember
// chat` its conversation; version 1 files have no note), u64 layers, kv_heads, head_dim and
// token count n, u32 element type (0 = F32, 1 = F16, GGML's numbers; versions 1 and 2 have none
// and hold F32), n i64 token ids, then per layer the first n rows of keys and of values
// [n, kv_heads, head_dim] in that type. Nothing follows. Versions 1 and 2 are still read; a file
// whose element type differs from the cache's is converted (F32 into an F16 cache is rounded).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "ember/generation/generate.hpp"

namespace ember::generation {

inline constexpr uint32_t kKvSessionVersion = 3;
inline constexpr size_t kMaxModelIdentityBytes = 4096;
inline constexpr size_t kMaxKvSessionNoteBytes = size_t{16} << 20;

// What a session file records of the model it came from: the model file's (or folder's) name and
// byte sizes. It catches restoring into another model; the cache's shape is checked as well.
std::string model_identity(const std::filesystem::path& model);

std::string serialize_kv_session(std::string_view model_identity, const PromptCache& cached,
                                 std::string_view note = {});

// Restores `cached` (its cache allocated for this model, one sequence) from a file's bytes and
// returns the note. Throws ember::Error naming what is wrong (magic, version, identity, note
// length, shape, more tokens than the cache's capacity or the file holds, a token outside the
// vocabulary, trailing bytes), leaving `cached` empty.
std::string restore_kv_session(std::span<const uint8_t> bytes, std::string_view model_identity,
                               int64_t vocab, PromptCache& cached);

void save_kv_session(const std::filesystem::path& path, std::string_view model_identity,
                     const PromptCache& cached, std::string_view note = {});
// Errors name the path.
std::string load_kv_session(const std::filesystem::path& path, std::string_view model_identity,
                            int64_t vocab, PromptCache& cached);

}  // namespace ember::generation
