#pragma once
// PyTorch checkpoints (`pytorch_model.bin`, torch.save of a state dict), read without Python and
// without pickle's dangers.
//
// Formats:
//  - zip (torch.save since PyTorch 1.6): a stored (uncompressed) zip archive whose entries share
//    one top-level folder P: P/data.pkl (the pickled object), P/data/<key> (one raw storage per
//    key), P/byteorder ("little"; absent in files before 1.10, meaning little), P/version and
//    others (ignored). ZIP64 archives are read.
//  - legacy (`_use_new_zipfile_serialization=False`, and torch.save before 1.6): five pickles in a
//    row (magic number, protocol version 1001, sys_info, the object, the list of storage keys),
//    then per key an int64 element count and the raw storage bytes.
//
// data.pkl is read by a restricted unpickler with the semantics of
// torch.load(weights_only=True): only the globals that rebuild tensors and OrderedDicts exist;
// any other global (os.system, builtins.eval, ...) is an error naming it, and nothing is ever
// executed. See src/formats/pytorch_pickle.hpp for the exact rules and bounds.
//
// Which dict holds the tensors: the unpickled object must be a dict. If it holds a tensor value
// it is the state dict. Otherwise, if it has one of the well-known wrapper keys "state_dict",
// "model_state_dict", "model", "module" (tried in that order) whose value is a dict, that dict
// is looked at the same way, up to 4 levels deep ({"model": {"state_dict": ...}}). Keys of the
// state dict must be UTF-8 strings; entries whose value is not a tensor (e.g. a training step
// count) are skipped and listed by `skipped()`.
//
// Tensors are zero-copy views with torch's own layout: the same strides and storage offset, over
// one Storage per storage record that views the mapped file, so tensors that share a storage
// (tied weights, slices of one buffer) share memory here too. A non-contiguous tensor (a saved
// transpose) is therefore a non-contiguous view; call Tensor::contiguous() for a packed copy.
// Expanded (stride-0) tensors stay views too, so their logical size may exceed the file's. A
// storage whose bytes are not aligned to the element size of every tensor viewing it (only
// possible in the legacy format) is copied once into owned memory. Big-endian checkpoints are
// refused.
//
// Dtypes: the typed storages (torch.FloatStorage, HalfStorage, BFloat16Storage, DoubleStorage,
// LongStorage, IntStorage, ShortStorage, CharStorage, ByteStorage, BoolStorage) and, through
// torch._utils._rebuild_tensor_v3 over an untyped storage (what torch 2.x writes for newer
// dtypes), float8_e4m3fn, float8_e5m2, uint16, uint32, uint64. Complex and quantized tensors
// are refused, naming their global.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/core/dtype.hpp"
#include "ember/core/storage.hpp"
#include "ember/core/tensor.hpp"

namespace ember {

enum class PyTorchFormat : uint8_t { Zip, Legacy };

struct PyTorchTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  Shape strides;               // in elements, as torch saved them
  int64_t storage_offset = 0;  // in elements of `dtype` from the start of the storage record
  std::string storage_key;     // tensors with the same key share bytes

  int64_t numel() const;
  bool is_contiguous() const;
};

// One checkpoint file. Cheap to copy (storages are shared).
class PyTorchCheckpoint {
 public:
  // Maps the file and reads its pickle and storage directory; reads no tensor data.
  static PyTorchCheckpoint open(const std::filesystem::path& path);
  // Reads `bytes`; `keepalive` (may be null) keeps them valid for tensor views. `source` names
  // the input in error messages.
  static PyTorchCheckpoint from_bytes(std::span<const std::byte> bytes,
                                      const std::shared_ptr<const void>& keepalive = nullptr,
                                      const std::string& source = "<buffer>");

  PyTorchFormat format() const { return format_; }
  // Tensors in the state dict's order.
  const std::vector<PyTorchTensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }
  bool contains(std::string_view name) const;
  // Throws ember::Error if there is no tensor `name`.
  const PyTorchTensorInfo& info(std::string_view name) const;
  Tensor tensor(std::string_view name) const;
  // State-dict entries that are not tensors, and the wrapper keys descended through.
  const std::vector<std::string>& skipped() const { return skipped_; }
  const std::vector<std::string>& wrapper_path() const { return wrapper_path_; }

 private:
  PyTorchFormat format_ = PyTorchFormat::Zip;
  std::vector<PyTorchTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, std::shared_ptr<Storage>> storages_;
  std::vector<std::string> skipped_;
  std::vector<std::string> wrapper_path_;

  friend struct PyTorchCheckpointBuilder;
};

// A checkpoint split by a `pytorch_model.bin.index.json` (the same index layout as safetensors:
// {"metadata": {...}, "weight_map": {"tensor": "pytorch_model-00001-of-00002.bin", ...}}), or a
// single file through the same interface as ShardedSafeTensors.
class ShardedPyTorchCheckpoint {
 public:
  // `path`: an index .json, a checkpoint file, or a directory holding
  // pytorch_model.bin.index.json or pytorch_model.bin.
  static ShardedPyTorchCheckpoint open(const std::filesystem::path& path);

  bool is_sharded() const { return sharded_; }
  const std::filesystem::path& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  const PyTorchTensorInfo& info(std::string_view name) const;
  const std::string& file_of(std::string_view name) const;
  Tensor tensor(std::string_view name) const;

  const std::vector<std::string>& shard_files() const { return shard_files_; }
  const std::vector<PyTorchCheckpoint>& shards() const { return shards_; }
  const std::string& index_metadata_json() const { return index_metadata_json_; }

 private:
  size_t shard_index(std::string_view name) const;

  bool sharded_ = false;
  std::filesystem::path path_;
  std::vector<std::string> shard_files_;
  std::vector<PyTorchCheckpoint> shards_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> shard_of_;
  std::string index_metadata_json_ = "{}";
};

}  // namespace ember
