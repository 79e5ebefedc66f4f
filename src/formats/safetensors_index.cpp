// Sharded safetensors checkpoints: model.safetensors.index.json + shard files.
#include <fstream>
#include <iterator>
#include <set>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/formats/safetensors.hpp"
#include "strict_json.hpp"

namespace ember {
namespace {

using json = nlohmann::json;
using formats_detail::quote_name;
using formats_detail::StrictJsonResult;

constexpr uint64_t kMaxIndexBytes = 100'000'000;
constexpr int kMaxIndexDepth = 64;
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

[[noreturn]] void fail(const std::filesystem::path& index, const std::string& message) {
  throw Error("safetensors index: " + index.string() + ": " + message);
}

std::string read_bounded(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  if (size > kMaxIndexBytes) fail(path, "larger than " + std::to_string(kMaxIndexBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() != size) fail(path, "changed while being read");
  return text;
}

// A shard name must stay inside the index's directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

ShardedSafeTensors ShardedSafeTensors::open(const std::filesystem::path& path) {
  std::filesystem::path target = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path / kIndexName, ec)) {
      target = path / kIndexName;
    } else if (std::filesystem::exists(path / kSingleName, ec)) {
      target = path / kSingleName;
    } else {
      throw Error("safetensors: directory " + quote_name(path.string()) + " holds neither " +
                  kIndexName + " nor " + kSingleName);
    }
  }

  ShardedSafeTensors out;
  out.path_ = target;
  if (target.extension() != ".json") {
    out.shards_.push_back(SafeTensors::open(target));
    out.shard_files_.push_back(target.filename().string());
    for (const SafeTensorInfo& t : out.shards_[0].tensors()) {
      out.names_.push_back(t.name);
      out.shard_of_.emplace(t.name, 0);
    }
    return out;
  }

  out.sharded_ = true;
  const std::string text = read_bounded(target);
  if (!is_valid_utf8(text)) fail(target, "not valid UTF-8");
  StrictJsonResult parsed = formats_detail::parse_strict_json(text, kMaxIndexDepth);
  switch (parsed.status) {
    case StrictJsonResult::Status::Ok:
      break;
    case StrictJsonResult::Status::Syntax:
      fail(target, "not valid JSON: " + parsed.message);
    case StrictJsonResult::Status::TooDeep:
      fail(target, "JSON nests deeper than " + std::to_string(kMaxIndexDepth) + " levels");
    case StrictJsonResult::Status::DuplicateKey:
      fail(target, "duplicate JSON key " + quote_name(parsed.duplicate_key));
  }
  const json& index = parsed.value;
  if (!index.is_object()) fail(target, "not a JSON object");
  if (index.contains("metadata")) {
    const json& metadata = index["metadata"];
    if (!metadata.is_null() && !metadata.is_object()) fail(target, "'metadata' is not an object");
    if (metadata.is_object()) out.index_metadata_json_ = metadata.dump();
  }
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail(target, "missing 'weight_map' object");
  }

  // Shards in order of first appearance in the (sorted) weight map would depend on tensor names;
  // sorted shard file names give the natural model-0000k-of-0000n order.
  std::set<std::string> files;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string())
      fail(target, "weight_map entry " + quote_name(tensor) + " is not a file name");
    const std::string& name = file.get_ref<const std::string&>();
    if (!is_plain_file_name(name)) {
      fail(target, "weight_map entry " + quote_name(tensor) + " names " + quote_name(name) +
                       ", which is not a plain file name in the index's directory");
    }
    files.insert(name);
  }
  const std::filesystem::path dir = target.parent_path();
  for (const std::string& file : files) {
    out.shard_files_.push_back(file);
    out.shards_.push_back(SafeTensors::open(dir / file));
  }
  const json& weight_map = index["weight_map"];
  for (size_t s = 0; s < out.shards_.size(); ++s) {
    for (const SafeTensorInfo& t : out.shards_[s].tensors()) {
      const auto it = weight_map.find(t.name);
      if (it == weight_map.end()) {
        fail(target, "shard " + quote_name(out.shard_files_[s]) + " holds tensor " +
                         quote_name(t.name) + ", which weight_map does not list");
      }
      if (it->get_ref<const std::string&>() != out.shard_files_[s]) {
        fail(target, "tensor " + quote_name(t.name) + " is in shard " +
                         quote_name(out.shard_files_[s]) + " but weight_map says " +
                         quote_name(it->get<std::string>()));
      }
      out.names_.push_back(t.name);
      out.shard_of_.emplace(t.name, s);
    }
  }
  for (const auto& [tensor, file] : weight_map.items()) {
    if (out.shard_of_.find(tensor) == out.shard_of_.end()) {
      fail(target, "tensor " + quote_name(tensor) + " is missing from shard " +
                       quote_name(file.get<std::string>()));
    }
  }
  return out;
}

size_t ShardedSafeTensors::shard_index(std::string_view name) const {
  const auto it = shard_of_.find(std::string(name));
  if (it == shard_of_.end()) throw Error("safetensors: no tensor named " + quote_name(name));
  return it->second;
}

bool ShardedSafeTensors::contains(std::string_view name) const {
  return shard_of_.find(std::string(name)) != shard_of_.end();
}

const SafeTensorInfo& ShardedSafeTensors::info(std::string_view name) const {
  return shards_[shard_index(name)].info(name);
}

const std::string& ShardedSafeTensors::file_of(std::string_view name) const {
  return shard_files_[shard_index(name)];
}

Tensor ShardedSafeTensors::tensor(std::string_view name) const {
  return shards_[shard_index(name)].tensor(name);
}

Tensor ShardedSafeTensors::slice(std::string_view name, int64_t begin, int64_t end) const {
  return shards_[shard_index(name)].slice(name, begin, end);
}

}  // namespace ember
