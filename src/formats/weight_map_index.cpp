// Sharded-checkpoint indexes (model.safetensors.index.json, pytorch_model.bin.index.json).
#include "weight_map_index.hpp"

#include <set>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/core/atomic_file.hpp"
#include "strict_json.hpp"

namespace ember::formats_detail {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxIndexBytes = 100'000'000;
constexpr int kMaxIndexDepth = 64;

[[noreturn]] void fail(const std::string& format, const std::filesystem::path& index,
                       const std::string& message) {
  throw Error(format + " index: " + index.string() + ": " + message);
}

std::string read_bounded(const std::filesystem::path& path, const std::string& format) {
  try {
    return read_regular_file(path, kMaxIndexBytes);
  } catch (const Error& e) {
    throw Error(format + " index: " + e.what());
  }
}

// Only "metadata" (kept whole for display) and "weight_map" are read; anything else is skipped
// unbuilt, and a misplaced value is refused as soon as it is met.
JsonVerdict index_schema(const std::vector<std::string>& path, JsonKind kind) {
  using Action = JsonVerdict::Action;
  const auto refuse = [](std::string message) {
    return JsonVerdict{Action::Refuse, std::move(message)};
  };
  if (path.empty()) return kind == JsonKind::Object ? JsonVerdict{} : refuse("not a JSON object");
  if (path[0] == "metadata") {
    if (path.size() > 1 || kind == JsonKind::Object || kind == JsonKind::Null) return {};
    return refuse("'metadata' is not an object");
  }
  if (path[0] != "weight_map") return {Action::Skip, {}};
  if (path.size() == 1) {
    return kind == JsonKind::Object ? JsonVerdict{} : refuse("missing 'weight_map' object");
  }
  return kind == JsonKind::String
             ? JsonVerdict{}
             : refuse("weight_map entry " + quote_name(path[1]) + " is not a file name");
}

// A shard name must stay inside the index's directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

WeightMapIndex read_weight_map_index(const std::filesystem::path& target,
                                     const std::string& format) {
  const std::string text = read_bounded(target, format);
  if (!is_valid_utf8(text)) fail(format, target, "not valid UTF-8");
  StrictJsonResult parsed = parse_strict_json(text, kMaxIndexDepth, index_schema);
  switch (parsed.status) {
    case StrictJsonResult::Status::Ok:
      break;
    case StrictJsonResult::Status::Refused:
      fail(format, target, parsed.message);
    case StrictJsonResult::Status::Syntax:
      fail(format, target, "not valid JSON: " + parsed.message);
    case StrictJsonResult::Status::TooDeep:
      fail(format, target, "JSON nests deeper than " + std::to_string(kMaxIndexDepth) + " levels");
    case StrictJsonResult::Status::DuplicateKey:
      fail(format, target, "duplicate JSON key " + quote_name(parsed.duplicate_key));
  }
  const json& index = parsed.value;
  if (!index.is_object()) fail(format, target, "not a JSON object");
  WeightMapIndex out;
  if (index.contains("metadata")) {
    const json& metadata = index["metadata"];
    if (!metadata.is_null() && !metadata.is_object()) {
      fail(format, target, "'metadata' is not an object");
    }
    if (metadata.is_object()) out.metadata_json = metadata.dump();
  }
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail(format, target, "missing 'weight_map' object");
  }

  // Shards in order of first appearance in the (sorted) weight map would depend on tensor names;
  // sorted shard file names give the natural model-0000k-of-0000n order.
  std::set<std::string> files;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      fail(format, target, "weight_map entry " + quote_name(tensor) + " is not a file name");
    }
    const std::string& name = file.get_ref<const std::string&>();
    if (!is_plain_file_name(name)) {
      fail(format, target,
           "weight_map entry " + quote_name(tensor) + " names " + quote_name(name) +
               ", which is not a plain file name in the index's directory");
    }
    files.insert(name);
    out.file_of.emplace(tensor, name);
  }
  out.files.assign(files.begin(), files.end());
  return out;
}

std::filesystem::path checkpoint_target(const std::filesystem::path& path,
                                        const std::string& format, const char* index_name,
                                        const char* single_name) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  if (std::filesystem::exists(path / index_name, ec)) return path / index_name;
  if (std::filesystem::exists(path / single_name, ec)) return path / single_name;
  throw Error(format + ": directory " + quote_name(path.string()) + " holds neither " + index_name +
              " nor " + single_name);
}

ShardAssignment assign_shards(const WeightMapIndex& index, const std::filesystem::path& target,
                              const std::string& format,
                              const std::vector<std::vector<std::string>>& shard_tensors) {
  ShardAssignment out;
  for (size_t s = 0; s < shard_tensors.size(); ++s) {
    const std::string& shard = index.files[s];
    for (const std::string& name : shard_tensors[s]) {
      const auto it = index.file_of.find(name);
      if (it == index.file_of.end()) {
        fail(format, target,
             "shard " + quote_name(shard) + " holds tensor " + quote_name(name) +
                 ", which weight_map does not list");
      }
      if (it->second != shard) {
        fail(format, target,
             "tensor " + quote_name(name) + " is in shard " + quote_name(shard) +
                 " but weight_map says " + quote_name(it->second));
      }
      out.names.push_back(name);
      out.shard_of.emplace(name, s);
    }
  }
  for (const auto& [tensor, file] : index.file_of) {
    if (out.shard_of.find(tensor) == out.shard_of.end()) {
      fail(format, target,
           "tensor " + quote_name(tensor) + " is missing from shard " + quote_name(file));
    }
  }
  return out;
}

}  // namespace ember::formats_detail
