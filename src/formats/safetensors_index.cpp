// Sharded safetensors checkpoints: model.safetensors.index.json + shard files.
#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"
#include "strict_json.hpp"
#include "weight_map_index.hpp"

namespace ember {
namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

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
  const formats_detail::WeightMapIndex index =
      formats_detail::read_weight_map_index(target, "safetensors");
  out.index_metadata_json_ = index.metadata_json;
  const std::filesystem::path dir = target.parent_path();
  std::vector<std::vector<std::string>> shard_tensors;
  for (const std::string& file : index.files) {
    out.shard_files_.push_back(file);
    out.shards_.push_back(SafeTensors::open(dir / file));
    shard_tensors.push_back(out.shards_.back().names());
  }
  formats_detail::ShardAssignment assigned =
      formats_detail::assign_shards(index, target, "safetensors", shard_tensors);
  out.names_ = std::move(assigned.names);
  out.shard_of_ = std::move(assigned.shard_of);
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
