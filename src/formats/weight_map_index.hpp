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

// What a checkpoint path names: a file as it is, or in a directory its index (preferred) or its
// single file. Throws ember::Error when a directory holds neither.
std::filesystem::path checkpoint_target(const std::filesystem::path& path,
                                        const std::string& format, const char* index_name,
                                        const char* single_name);

// The opened files of a checkpoint, one or many, and which file holds each tensor.
template <typename File>
struct ShardSet {
  bool sharded = false;
  std::string metadata_json = "{}";
  std::vector<std::string> files;  // relative to the index's directory
  std::vector<File> shards;
  std::vector<std::string> names;  // in shard order, then each shard's own order
  std::unordered_map<std::string, size_t> shard_of;
};

// Opens `target` (from checkpoint_target) with File::open: a single file, or every shard its
// index names, checked against the weight map.
template <typename File>
ShardSet<File> open_shards(const std::filesystem::path& target, const std::string& format) {
  ShardSet<File> out;
  if (target.extension() != ".json") {
    out.shards.push_back(File::open(target));
    out.files.push_back(target.filename().string());
    out.names = out.shards[0].names();
    for (const std::string& name : out.names) out.shard_of.emplace(name, 0);
    return out;
  }
  out.sharded = true;
  const WeightMapIndex index = read_weight_map_index(target, format);
  out.metadata_json = index.metadata_json;
  std::vector<std::vector<std::string>> shard_tensors;
  for (const std::string& file : index.files) {
    out.files.push_back(file);
    out.shards.push_back(File::open(target.parent_path() / file));
    shard_tensors.push_back(out.shards.back().names());
  }
  ShardAssignment assigned = assign_shards(index, target, format, shard_tensors);
  out.names = std::move(assigned.names);
  out.shard_of = std::move(assigned.shard_of);
  return out;
}

}  // namespace ember::formats_detail
