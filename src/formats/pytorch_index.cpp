// Sharded PyTorch checkpoints: pytorch_model.bin.index.json + shard files.
#include "ember/base/error.hpp"
#include "ember/formats/pytorch.hpp"
#include "weight_map_index.hpp"

namespace ember {
namespace {

constexpr const char* kIndexName = "pytorch_model.bin.index.json";
constexpr const char* kSingleName = "pytorch_model.bin";

}  // namespace

ShardedPyTorchCheckpoint ShardedPyTorchCheckpoint::open(const std::filesystem::path& path) {
  const std::filesystem::path target =
      formats_detail::checkpoint_target(path, "pytorch", kIndexName, kSingleName);
  formats_detail::ShardSet<PyTorchCheckpoint> set =
      formats_detail::open_shards<PyTorchCheckpoint>(target, "pytorch");
  ShardedPyTorchCheckpoint out;
  out.path_ = target;
  out.sharded_ = set.sharded;
  out.index_metadata_json_ = std::move(set.metadata_json);
  out.shard_files_ = std::move(set.files);
  out.shards_ = std::move(set.shards);
  out.names_ = std::move(set.names);
  out.shard_of_ = std::move(set.shard_of);
  return out;
}

size_t ShardedPyTorchCheckpoint::shard_index(std::string_view name) const {
  const auto it = shard_of_.find(std::string(name));
  if (it == shard_of_.end()) throw Error("pytorch: no tensor named " + quote_name(name));
  return it->second;
}

bool ShardedPyTorchCheckpoint::contains(std::string_view name) const {
  return shard_of_.find(std::string(name)) != shard_of_.end();
}

const PyTorchTensorInfo& ShardedPyTorchCheckpoint::info(std::string_view name) const {
  return shards_[shard_index(name)].info(name);
}

const std::string& ShardedPyTorchCheckpoint::file_of(std::string_view name) const {
  return shard_files_[shard_index(name)];
}

Tensor ShardedPyTorchCheckpoint::tensor(std::string_view name) const {
  return shards_[shard_index(name)].tensor(name);
}

}  // namespace ember
