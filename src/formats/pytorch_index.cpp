// Sharded PyTorch checkpoints: pytorch_model.bin.index.json + shard files.
#include "ember/base/error.hpp"
#include "ember/formats/pytorch.hpp"
#include "strict_json.hpp"
#include "weight_map_index.hpp"

namespace ember {
namespace {

constexpr const char* kIndexName = "pytorch_model.bin.index.json";
constexpr const char* kSingleName = "pytorch_model.bin";

}  // namespace

ShardedPyTorchCheckpoint ShardedPyTorchCheckpoint::open(const std::filesystem::path& path) {
  std::filesystem::path target = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path / kIndexName, ec)) {
      target = path / kIndexName;
    } else if (std::filesystem::exists(path / kSingleName, ec)) {
      target = path / kSingleName;
    } else {
      throw Error("pytorch: directory " + quote_name(path.string()) + " holds neither " +
                  kIndexName + " nor " + kSingleName);
    }
  }

  ShardedPyTorchCheckpoint out;
  out.path_ = target;
  if (target.extension() != ".json") {
    out.shards_.push_back(PyTorchCheckpoint::open(target));
    out.shard_files_.push_back(target.filename().string());
    out.names_ = out.shards_[0].names();
    for (size_t i = 0; i < out.names_.size(); ++i) out.shard_of_.emplace(out.names_[i], 0);
    return out;
  }

  out.sharded_ = true;
  const formats_detail::WeightMapIndex index =
      formats_detail::read_weight_map_index(target, "pytorch");
  out.index_metadata_json_ = index.metadata_json;
  const std::filesystem::path dir = target.parent_path();
  std::vector<std::vector<std::string>> shard_tensors;
  for (const std::string& file : index.files) {
    out.shard_files_.push_back(file);
    out.shards_.push_back(PyTorchCheckpoint::open(dir / file));
    shard_tensors.push_back(out.shards_.back().names());
  }
  formats_detail::ShardAssignment assigned =
      formats_detail::assign_shards(index, target, "pytorch", shard_tensors);
  out.names_ = std::move(assigned.names);
  out.shard_of_ = std::move(assigned.shard_of);
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
