#pragma once
// Bounded, strict reading of the small JSON files that sit beside weights (config.json,
// modules.json, sharded indexes, generation_config.json, ...).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>

namespace ember {

inline constexpr uint64_t kJsonFileMaxBytes = 64ull << 20;
inline constexpr int kJsonFileMaxDepth = 64;

// Reads one regular file of at most kJsonFileMaxBytes as UTF-8 JSON with at most
// kJsonFileMaxDepth levels of nesting and no duplicate keys. Throws ember::Error naming the file
// and the broken rule.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace ember
