#pragma once
// safetensors (https://github.com/huggingface/safetensors): reader, writer and sharded
// checkpoints.
//
// File layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON header, then the data
// buffer. The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data buffer) plus an optional "__metadata__" string-to-string map.
//
// Validation follows the reference Rust crate (as shipped in the Python package 0.8.0): header
// length <= 100,000,000 and inside the file, UTF-8, one JSON object (nesting <= 128 levels, like
// serde_json), every entry complete and well typed, known dtype, byte length == numel * element
// size without overflow, and the tensors tile the data buffer exactly (no gap, overlap, leading
// hole, trailing bytes or truncation). Unknown extra fields in an entry are ignored, as the
// reference does; Ember is stricter only in rejecting duplicate JSON keys (tensor names, fields,
// metadata keys), which the reference resolves silently (last one wins).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/core/dtype.hpp"
#include "ember/core/tensor.hpp"
#include "ember/formats/mapped_file.hpp"

namespace ember {

using SafeTensorsMetadata = std::map<std::string, std::string>;

inline constexpr uint64_t kSafeTensorsMaxHeaderBytes = 100'000'000;
inline constexpr int kSafeTensorsMaxJsonDepth = 128;

struct SafeTensorInfo {
  // Views the header of the SafeTensors it came from (valid while that object or a copy of it
  // lives, and for from_bytes(span) while the caller's bytes do).
  std::string_view name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t data_begin = 0;  // offsets into the data buffer (after the header)
  uint64_t data_end = 0;

  uint64_t nbytes() const { return data_end - data_begin; }
  int64_t numel() const;
};

// One .safetensors file, memory-mapped or over a caller's byte buffer. Cheap to copy (the
// bytes are shared). Tensors are zero-copy read-only views that keep the bytes alive, except
// when a tensor's bytes are not aligned to its element size (possible only in files not laid out
// by a reference writer), in which case that tensor is copied.
class SafeTensors {
 public:
  // Maps the file and validates its header; reads no tensor data.
  static SafeTensors open(const std::filesystem::path& path);
  // Validates and views `bytes`; `keepalive` (may be null) keeps them valid for tensor views.
  static SafeTensors from_bytes(std::span<const std::byte> bytes,
                                std::shared_ptr<const void> keepalive = nullptr);
  // Takes ownership of a buffer.
  static SafeTensors from_bytes(std::vector<std::byte> bytes);

  // Tensors in data-buffer order.
  const std::vector<SafeTensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }
  bool contains(std::string_view name) const;
  // Throws ember::Error if there is no tensor `name`.
  const SafeTensorInfo& info(std::string_view name) const;
  // The raw little-endian bytes of one tensor.
  std::span<const std::byte> tensor_bytes(std::string_view name) const;
  Tensor tensor(std::string_view name) const;
  // Rows [begin, end) along axis 0, touching only those bytes.
  Tensor slice(std::string_view name, int64_t begin, int64_t end) const;

  const SafeTensorsMetadata& metadata() const { return metadata_; }
  bool has_metadata() const { return has_metadata_; }
  uint64_t header_size() const { return header_size_; }  // N, the JSON header's byte length
  uint64_t file_size() const { return bytes_.size(); }
  std::span<const std::byte> data_buffer() const { return bytes_.subspan(8 + header_size_); }

  // For mapped files: hint the kernel that the whole data buffer is about to be read once.
  void advise_sequential_read() const;
  // The mapping, when opened from a file (null for buffers).
  const std::shared_ptr<const MappedFile>& mapped_file() const { return mapped_; }

 private:
  static SafeTensors parse(std::span<const std::byte> bytes, std::shared_ptr<const void> keepalive,
                           const std::string& source);
  void build_index(const std::string& source);
  const SafeTensorInfo* find(std::string_view name) const;
  Tensor view(const SafeTensorInfo& info, uint64_t byte_begin, uint64_t byte_end,
              Shape shape) const;

  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> keepalive_;
  std::shared_ptr<const MappedFile> mapped_;  // set when opened from a file
  uint64_t header_size_ = 0;
  std::vector<SafeTensorInfo> tensors_;
  std::vector<uint32_t> slots_;             // hash index of tensors_ by name (build_index)
  std::shared_ptr<std::string> unescaped_;  // names written with JSON escapes, decoded
  SafeTensorsMetadata metadata_;
  bool has_metadata_ = false;
};

// Serializes like the reference writer: tensors sorted by dtype (the reference's Dtype order,
// descending: U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL)
// then by name bytewise, packed back to back; compact JSON header with "__metadata__" first
// (keys sorted, which the reference leaves in hash order), padded with spaces to a multiple of 8.
// Non-contiguous tensors are written in row-major order. Throws ember::Error on a quantized
// dtype, a name that is not UTF-8, or the reserved name "__metadata__".
std::vector<std::byte> serialize_safetensors(
    const std::map<std::string, Tensor>& tensors,
    const std::optional<SafeTensorsMetadata>& metadata = std::nullopt);
void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, Tensor>& tensors,
                       const std::optional<SafeTensorsMetadata>& metadata = std::nullopt);

// A checkpoint split over several files by a `model.safetensors.index.json`
// ({"metadata": {...}, "weight_map": {"tensor": "model-00001-of-00002.safetensors", ...}}), or a
// single file seen through the same interface. Every shard is mapped and validated when opened;
// the weight map must name exactly the tensors the shards hold, and shard names must be plain
// file names in the index's directory.
class ShardedSafeTensors {
 public:
  // `path`: an index .json, a .safetensors file, or a directory holding
  // model.safetensors.index.json or model.safetensors.
  static ShardedSafeTensors open(const std::filesystem::path& path);

  bool is_sharded() const { return sharded_; }
  // The file that was read: the index, or the single .safetensors file.
  const std::filesystem::path& path() const { return path_; }
  // Tensors in shard order, then data-buffer order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  const SafeTensorInfo& info(std::string_view name) const;
  // Shard file name (relative to the index's directory) that holds `name`.
  const std::string& file_of(std::string_view name) const;
  Tensor tensor(std::string_view name) const;
  Tensor slice(std::string_view name, int64_t begin, int64_t end) const;

  const std::vector<std::string>& shard_files() const { return shard_files_; }
  const std::vector<SafeTensors>& shards() const { return shards_; }
  // The index's "metadata" object as compact JSON ("{}" when absent or for a single file).
  const std::string& index_metadata_json() const { return index_metadata_json_; }

 private:
  size_t shard_index(std::string_view name) const;

  bool sharded_ = false;
  std::filesystem::path path_;
  std::vector<std::string> shard_files_;
  std::vector<SafeTensors> shards_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> shard_of_;
  std::string index_metadata_json_ = "{}";
};

}  // namespace ember
