// PyTorch checkpoints: the zip and legacy containers, storages, and the state dict (see
// include/ember/formats/pytorch.hpp).
#include "ember/formats/pytorch.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "ember/base/error.hpp"
#include "ember/formats/mapped_file.hpp"
#include "pytorch_pickle.hpp"
#include "pytorch_zip.hpp"
#include "strict_json.hpp"

namespace ember {

using formats_detail::PickleKind;
using formats_detail::PickleObject;
using formats_detail::PickleResult;

namespace {

constexpr int kMaxWrapperDepth = 4;
constexpr const char* kWrapperKeys[] = {"state_dict", "model_state_dict", "model", "module"};
// The legacy format's first pickle: the integer 0x1950a86a20f9469cfc6c, little-endian.
constexpr std::array<uint8_t, 10> kLegacyMagic = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                                  0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw Error("pytorch: " + source + ": " + message);
}

// The bytes of one storage record and what the persistent ids say it holds.
struct StorageRecord {
  DType dtype = DType::U8;
  int64_t numel = 0;
  std::span<const std::byte> bytes;
};

// Where a persistent id's storage lives: a whole record, or (legacy views) part of one.
struct StorageSlice {
  std::string key;
  int64_t byte_offset = 0;
  int64_t byte_length = 0;
};

std::optional<uint64_t> storage_bytes(DType dtype, int64_t numel) {
  if (numel < 0) return std::nullopt;
  return dtype_bytes(dtype, static_cast<uint64_t>(numel));
}

// Records the dtype and size a persistent id claims for storage `key`; every id naming the same
// key must agree (torch.save refuses to save one storage as two types).
void claim_storage(std::map<std::string, StorageRecord>& records, const std::string& key,
                   DType dtype, int64_t numel, const std::string& source) {
  const auto [it, inserted] = records.try_emplace(key, StorageRecord{dtype, numel, {}});
  if (!inserted && (it->second.dtype != dtype || it->second.numel != numel)) {
    fail(source, "storage " + quote_name(key) + " is named with two different types or sizes");
  }
}

const PickleObject* dict_lookup(const PickleResult& p, const PickleObject& dict,
                                std::string_view key) {
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const PickleObject& k = p.objects[dict.items[i]];
    if (k.kind == PickleKind::String && k.text == key) return &p.objects[dict.items[i + 1]];
  }
  return nullptr;
}

bool holds_tensor(const PickleResult& p, const PickleObject& dict) {
  for (size_t i = 1; i < dict.items.size(); i += 2) {
    if (p.objects[dict.items[i]].kind == PickleKind::Tensor) return true;
  }
  return false;
}

// Reads the zip container: returns the unpickled data.pkl and the storage records it names.
PickleResult read_zip(std::span<const std::byte> bytes, const std::string& source,
                      std::map<std::string, StorageRecord>& records) {
  const std::vector<formats_detail::ZipEntry> entries =
      formats_detail::read_zip_directory(bytes, source);
  std::string prefix;
  for (const auto& e : entries) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.substr(slash) == "/data.pkl") {
      if (!prefix.empty()) fail(source, "two data.pkl records in the archive");
      prefix = e.name.substr(0, slash + 1);
    }
  }
  if (prefix.empty()) fail(source, "no <folder>/data.pkl record (not a torch.save archive)");
  std::map<std::string, const formats_detail::ZipEntry*> by_name;
  for (const auto& e : entries) {
    if (e.name.compare(0, prefix.size(), prefix) != 0) {
      fail(source, "entry " + quote_name(e.name) + " is outside the archive's folder " +
                       quote_name(prefix));
    }
    by_name.emplace(e.name.substr(prefix.size()), &e);
  }
  const auto record = [&](const formats_detail::ZipEntry& e) {
    return bytes.subspan(static_cast<size_t>(e.data_offset), static_cast<size_t>(e.size));
  };
  const auto checked_record = [&](const formats_detail::ZipEntry& e) {
    const auto data = record(e);
    if (formats_detail::crc32(data) != e.crc32) {
      fail(source, "record " + quote_name(e.name) + " fails its CRC-32 check");
    }
    return data;
  };

  if (const auto it = by_name.find("byteorder"); it != by_name.end()) {
    const auto data = checked_record(*it->second);
    const std::string_view order(reinterpret_cast<const char*>(data.data()), data.size());
    if (order == "big") fail(source, "big-endian checkpoints are not supported");
    if (order != "little") fail(source, "byteorder record is " + quote_name(order));
  }
  const auto pickle = checked_record(*by_name.at("data.pkl"));
  PickleResult result = formats_detail::unpickle_restricted(pickle, source + ": data.pkl");
  if (result.consumed != pickle.size()) fail(source, "data.pkl has bytes after its STOP opcode");

  for (const formats_detail::PickleStorageRef& s : result.storages) {
    if (s.is_view)
      fail(source, "storage " + quote_name(s.key) + ": views exist only in the legacy format");
    const bool plain = !s.key.empty() && s.key.size() <= 64 &&
                       s.key.find_first_not_of(
                           "0123456789abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos;
    if (!plain) {
      fail(source, "persistent id names storage " + quote_name(s.key) +
                       ", which is not a record name inside the archive");
    }
    claim_storage(records, s.key, s.dtype, s.numel, source);
  }
  for (auto& [key, r] : records) {
    const auto it = by_name.find("data/" + key);
    if (it == by_name.end()) {
      std::string record_name = prefix;
      record_name.append("data/").append(key);
      fail(source, "storage " + quote_name(key) + " has no record " + quote_name(record_name) +
                       " in the archive");
    }
    const auto need = storage_bytes(r.dtype, r.numel);
    if (!need || *need != it->second->size) {
      fail(source, "storage " + quote_name(key) + ": record holds " +
                       std::to_string(it->second->size) + " bytes, not " + std::to_string(r.numel) +
                       " elements of " + std::string(dtype_name(r.dtype)));
    }
    r.bytes = record(*it->second);
  }
  return result;
}

// Reads the legacy container: magic, protocol, sys_info, the object, the storage keys, then
// each storage as an int64 element count and its bytes.
PickleResult read_legacy(std::span<const std::byte> bytes, const std::string& source,
                         std::map<std::string, StorageRecord>& records) {
  size_t pos = 0;
  const auto next_pickle = [&](const char* what) {
    PickleResult r = formats_detail::unpickle_restricted(bytes.subspan(pos), source + ": " + what);
    pos += r.consumed;
    return r;
  };
  const PickleResult magic = next_pickle("magic number");
  const PickleObject& m = magic.objects[magic.root];
  if (m.kind != PickleKind::BigInt || m.text.size() != kLegacyMagic.size() ||
      std::memcmp(m.text.data(), kLegacyMagic.data(), kLegacyMagic.size()) != 0) {
    fail(source, "not a PyTorch checkpoint (legacy magic number missing)");
  }
  const PickleResult protocol = next_pickle("protocol version");
  const PickleObject& v = protocol.objects[protocol.root];
  if (v.kind != PickleKind::Int || v.integer != kLegacyProtocolVersion) {
    fail(source, "legacy protocol version is not 1001");
  }
  const PickleResult sys_info = next_pickle("sys_info");
  const PickleObject& info = sys_info.objects[sys_info.root];
  const PickleObject* little =
      info.kind == PickleKind::Dict ? dict_lookup(sys_info, info, "little_endian") : nullptr;
  if (little == nullptr || little->kind != PickleKind::Bool) {
    fail(source, "sys_info has no little_endian flag");
  }
  if (little->integer == 0) fail(source, "big-endian checkpoints are not supported");

  PickleResult result = next_pickle("data");
  for (const formats_detail::PickleStorageRef& s : result.storages) {
    claim_storage(records, s.key, s.dtype, s.numel, source);
  }
  const PickleResult keys = next_pickle("storage keys");
  const PickleObject& list = keys.objects[keys.root];
  if (list.kind != PickleKind::List) fail(source, "storage keys are not a list");
  if (list.items.size() != records.size()) {
    fail(source, "the storage key list has " + std::to_string(list.items.size()) +
                     " keys but the data names " + std::to_string(records.size()) + " storages");
  }
  std::set<std::string> read;
  for (const uint32_t id : list.items) {
    const PickleObject& key = keys.objects[id];
    if (key.kind != PickleKind::String) fail(source, "a storage key is not a string");
    const auto it = records.find(key.text);
    if (it == records.end()) fail(source, "storage key " + quote_name(key.text) + " is unused");
    StorageRecord& r = it->second;
    if (!read.insert(key.text).second) {
      fail(source, "storage key " + quote_name(key.text) + " listed twice");
    }
    if (bytes.size() - pos < 8) fail(source, "truncated: storage " + quote_name(key.text));
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<uint8_t>(bytes[pos + i]);
    pos += 8;
    const auto need = storage_bytes(r.dtype, r.numel);
    if (count != static_cast<uint64_t>(r.numel) || !need) {
      fail(source, "storage " + quote_name(key.text) + " holds " + std::to_string(count) +
                       " elements but its persistent id says " + std::to_string(r.numel));
    }
    if (bytes.size() - pos < *need) fail(source, "truncated: storage " + quote_name(key.text));
    r.bytes = bytes.subspan(pos, static_cast<size_t>(*need));
    pos += static_cast<size_t>(*need);
  }
  if (pos != bytes.size()) fail(source, "trailing bytes after the last storage");
  return result;
}

std::vector<StorageSlice> slices_of(const PickleResult& p, const std::string& source) {
  std::vector<StorageSlice> out;
  for (const formats_detail::PickleStorageRef& s : p.storages) {
    // Sizes were checked against the record, so these products fit.
    const auto element = static_cast<int64_t>(dtype_size(s.dtype));
    StorageSlice slice{s.key, 0, s.numel * element};
    if (s.is_view) {
      if (s.view_offset < 0 || s.view_numel < 0 || s.view_offset > s.numel ||
          s.view_numel > s.numel - s.view_offset) {
        fail(source, "storage view " + quote_name(s.view_key) + " lies outside storage " +
                         quote_name(s.key));
      }
      slice.byte_offset = s.view_offset * element;
      slice.byte_length = s.view_numel * element;
    }
    out.push_back(std::move(slice));
  }
  return out;
}

// Checks that every element the tensor's shape and strides reach lies in its storage slice;
// returns the tensor's offset in elements from the start of the storage record.
int64_t check_tensor_bounds(const formats_detail::PickleTensorRef& t, const StorageSlice& slice,
                            const std::string& name, const std::string& source) {
  const std::string who = "tensor " + quote_name(name) + ": ";
  const auto element = static_cast<int64_t>(dtype_size(t.dtype));
  if (slice.byte_offset % element != 0) {
    fail(source, who + "storage view is not aligned to its " + std::string(dtype_name(t.dtype)) +
                     " elements");
  }
  const int64_t available = slice.byte_length / element;
  if (t.offset < 0) fail(source, who + "negative storage offset");
  int64_t last = t.offset;
  bool empty = false;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0) fail(source, who + "negative size");
    if (t.strides[d] < 0) fail(source, who + "negative stride");
    if (t.shape[d] == 0) empty = true;
  }
  shape_numel(t.shape);  // throws on overflow
  if (!empty) {
    for (size_t d = 0; d < t.shape.size(); ++d) {
      int64_t reach = 0;
      if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &reach) ||
          __builtin_add_overflow(last, reach, &last)) {
        fail(source, who + "strides overflow");
      }
    }
  }
  if (empty ? t.offset > available : last >= available) {
    fail(source, who + "size " + shape_to_string(t.shape) + ", stride " +
                     shape_to_string(t.strides) + " and offset " + std::to_string(t.offset) +
                     " reach past its storage of " + std::to_string(available) + " elements");
  }
  return slice.byte_offset / element + t.offset;
}

// A view of the record's bytes where they are aligned for every dtype that views them (always,
// in zip archives: torch aligns records to 64 bytes), else an owned copy.
std::shared_ptr<Storage> make_storage(const StorageRecord& r, size_t alignment,
                                      const std::shared_ptr<const void>& keepalive,
                                      const PageReleaser* pages) {
  const size_t n = r.bytes.size();
  if (reinterpret_cast<uintptr_t>(r.bytes.data()) % alignment == 0) {
    return Storage::borrow(r.bytes.data(), n, keepalive, pages);
  }
  std::shared_ptr<Storage> copy = Storage::allocate_uninitialized(n);
  if (n > 0) std::memcpy(copy->mutable_data(), r.bytes.data(), n);
  return copy;
}

}  // namespace

int64_t PyTorchTensorInfo::numel() const {
  return shape_numel(shape);
}

bool PyTorchTensorInfo::is_contiguous() const {
  return Tensor(dtype, shape, strides, 0, nullptr).is_contiguous();
}

struct PyTorchCheckpointBuilder {
  // `pages`: the mapping `bytes` is, when opened from a file.
  static PyTorchCheckpoint build(std::span<const std::byte> bytes,
                                 const std::shared_ptr<const void>& keepalive,
                                 const std::string& source, const PageReleaser* pages) {
    PyTorchCheckpoint out;
    std::map<std::string, StorageRecord> records;
    PickleResult p;
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0) {
      out.format_ = PyTorchFormat::Zip;
      p = read_zip(bytes, source, records);
    } else if (!bytes.empty() && bytes[0] == std::byte{0x80}) {
      out.format_ = PyTorchFormat::Legacy;
      p = read_legacy(bytes, source, records);
    } else {
      fail(source,
           "not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy "
           "pickle stream)");
    }
    const std::vector<StorageSlice> slices = slices_of(p, source);
    std::map<std::string, size_t> alignment;
    for (const auto& [key, r] : records) alignment[key] = dtype_size(r.dtype);
    for (const formats_detail::PickleTensorRef& t : p.tensors) {
      size_t& a = alignment[slices[t.storage].key];
      a = std::max(a, dtype_size(t.dtype));
    }
    for (const auto& [key, r] : records) {
      out.storages_.emplace(key, make_storage(r, alignment[key], keepalive, pages));
    }

    const PickleObject* dict = &p.objects[p.root];
    if (dict->kind != PickleKind::Dict) {
      fail(source, "the checkpoint holds a pickled object that is not a dict of tensors");
    }
    for (int depth = 0; depth < kMaxWrapperDepth && !holds_tensor(p, *dict); ++depth) {
      const PickleObject* inner = nullptr;
      for (const char* key : kWrapperKeys) {
        const PickleObject* v = dict_lookup(p, *dict, key);
        if (v != nullptr && v->kind == PickleKind::Dict) {
          inner = v;
          out.wrapper_path_.emplace_back(key);
          break;
        }
      }
      if (inner == nullptr) break;
      dict = inner;
    }
    for (size_t i = 0; i + 1 < dict->items.size(); i += 2) {
      const PickleObject& key = p.objects[dict->items[i]];
      const PickleObject& value = p.objects[dict->items[i + 1]];
      if (key.kind != PickleKind::String) fail(source, "a state dict key is not a string");
      if (value.kind != PickleKind::Tensor) {
        out.skipped_.push_back(key.text);
        continue;
      }
      const formats_detail::PickleTensorRef& t = p.tensors[value.index];
      const StorageSlice& slice = slices[t.storage];
      const int64_t offset = check_tensor_bounds(t, slice, key.text, source);
      PyTorchTensorInfo info;
      info.name = key.text;
      info.dtype = t.dtype;
      info.shape = t.shape;
      info.strides = t.strides;
      info.storage_offset = offset;
      info.storage_key = slice.key;
      if (!out.index_.emplace(info.name, out.tensors_.size()).second) {
        fail(source, "duplicate state dict key " + quote_name(info.name));
      }
      out.tensors_.push_back(std::move(info));
    }
    return out;
  }
};

PyTorchCheckpoint PyTorchCheckpoint::open(const std::filesystem::path& path) {
  const std::shared_ptr<const MappedFile> mapped = MappedFile::open(path);
  const auto bytes = mapped->bytes();
  return PyTorchCheckpointBuilder::build(bytes, mapped, path.string(), mapped.get());
}

PyTorchCheckpoint PyTorchCheckpoint::from_bytes(std::span<const std::byte> bytes,
                                                const std::shared_ptr<const void>& keepalive,
                                                const std::string& source) {
  return PyTorchCheckpointBuilder::build(bytes, keepalive, source, nullptr);
}

std::vector<std::string> PyTorchCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

bool PyTorchCheckpoint::contains(std::string_view name) const {
  return index_.find(std::string(name)) != index_.end();
}

const PyTorchTensorInfo& PyTorchCheckpoint::info(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  if (it == index_.end()) throw Error("pytorch: no tensor named " + quote_name(name));
  return tensors_[it->second];
}

Tensor PyTorchCheckpoint::tensor(std::string_view name) const {
  const PyTorchTensorInfo& i = info(name);
  return Tensor(i.dtype, i.shape, i.strides, i.storage_offset, storages_.at(i.storage_key));
}

}  // namespace ember
