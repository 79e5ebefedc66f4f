// Sharded safetensors checkpoints: model.safetensors.index.json + shard files.
#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"
#include "weight_map_index.hpp"

namespace ember {
namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

}  // namespace

ShardedSafeTensors ShardedSafeTensors::open(const std::filesystem::path& path) {
  const std::filesystem::path target =
      formats_detail::checkpoint_target(path, "safetensors", kIndexName, kSingleName);
  formats_detail::ShardSet<SafeTensors> set =
      formats_detail::open_shards<SafeTensors>(target, "safetensors");
  ShardedSafeTensors out;
  out.path_ = target;
  out.sharded_ = set.sharded;
  out.index_metadata_json_ = std::move(set.metadata_json);
  out.shard_files_ = std::move(set.files);
  out.shards_ = std::move(set.shards);
  out.names_ = std::move(set.names);
  out.shard_of_ = std::move(set.shard_of);
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
