#pragma once
// Internal: the sharded-checkpoint index shared by safetensors and PyTorch checkpoints
// ({"metadata": {...}, "weight_map": {"tensor": "shard file", ...}}), read strictly and bounded.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace ember::formats_detail {

struct WeightMapIndex {
  std::string metadata_json = "{}";            // the "metadata" object, compact
  std::vector<std::string> files;              // shard file names, sorted, each a plain file name
  std::map<std::string, std::string> file_of;  // tensor -> shard file
};

// Errors are prefixed "<format> index: <path>: ".
WeightMapIndex read_weight_map_index(const std::filesystem::path& index, const std::string& format);

struct ShardAssignment {
  std::vector<std::string> names;  // in shard order, then each shard's own order
  std::unordered_map<std::string, size_t> shard_of;
};

// Checks that shard k (named index.files[k]) holds exactly the tensors the weight map assigns it.
ShardAssignment assign_shards(const WeightMapIndex& index, const std::filesystem::path& path,
                              const std::string& format,
                              const std::vector<std::vector<std::string>>& shard_tensors);

}  // namespace ember::formats_detail
