#pragma once
// GGUF (ggml's single-file model format, versions 2 and 3): reader and writer.
//
// File layout, all little-endian: "GGUF", u32 version, u64 tensor count, u64 metadata count;
// the metadata (key string, u32 value type, value); the tensor infos (name string, u32 n_dims,
// n_dims u64 extents ne[] with ne[0] the innermost, u32 ggml type id, u64 offset into the data
// section); padding to `general.alignment` (a u32 power of two, default 32); the data section.
// A string is a u64 byte length and the bytes; an array is a u32 element type, a u64 count and
// the elements.
//
// The reader is strict and bounded: every count, length and offset is checked against the bytes
// that remain before anything is allocated, keys and tensor names are UTF-8 and unique, arrays
// nest at most kGgufMaxArrayDepth levels, tensors have at most 4 dimensions, each tensor's bytes
// start on the alignment inside the data section and lie in the file, and no two tensors
// overlap. Tensors are zero-copy views whose shape is ne[] reversed (row-major, like every other
// Ember tensor).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ember/core/dtype.hpp"
#include "ember/core/tensor.hpp"
#include "ember/formats/mapped_file.hpp"

namespace ember {

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxArrayDepth = 8;
inline constexpr int kGgufMaxDims = 4;

// The metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// One metadata value. Unsigned integers are held as uint64_t, signed ones as int64_t, floats as
// double (an F32 value converts exactly); `type()` keeps the width the file used, so a value
// read and written again has the same bytes.
class GgufValue {
 public:
  using Array = std::vector<GgufValue>;

  GgufValue() = default;
  // Throw ember::Error if the value does not fit `type` (or `type` is not of that family).
  static GgufValue unsigned_int(GgufType type, uint64_t v);
  static GgufValue signed_int(GgufType type, int64_t v);
  static GgufValue floating(GgufType type, double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // Every item must have type `element_type`.
  static GgufValue array(GgufType element_type, Array items);

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // meaningful for arrays only

  // nullopt when the value is not of that family or does not fit.
  std::optional<uint64_t> as_u64() const;  // any integer type, non-negative
  std::optional<int64_t> as_i64() const;   // any integer type, within int64
  std::optional<double> as_f64() const;    // F32/F64, or any integer type
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;  // null unless a String
  const Array* as_array() const;         // null unless an Array

  // The value as JSON text (strings quoted, invalid UTF-8 replaced by U+FFFD; NaN and
  // infinities as null, which JSON lacks), for `ember inspect`.
  std::string to_json() const;

  friend bool operator==(const GgufValue& a, const GgufValue& b) = default;

 private:
  GgufType type_ = GgufType::U8;
  GgufType element_type_ = GgufType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> value_{uint64_t{0}};
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

// ggml's tensor type ids for the dtypes Ember has (F32 0, F16 1, Q4_0 2, ..., Q8_K 15, I8 24,
// I16 25, I32 26, I64 27, F64 28, BF16 30). nullopt for any other id / dtype.
std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type);
std::optional<uint32_t> ggml_type_of(DType dtype);

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  uint32_t ggml_type = 0;
  Shape shape;          // ne[] reversed: shape.back() == ne[0]
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  int64_t numel() const { return shape_numel(shape); }
};

// True for a path named *.gguf or a regular file that starts with the GGUF magic.
bool looks_like_gguf(const std::filesystem::path& path);

// One GGUF file, memory-mapped or over a caller's bytes. Cheap to copy (the bytes are shared).
class GgufFile {
 public:
  // Maps and validates the file; reads no tensor data.
  static GgufFile open(const std::filesystem::path& path);
  // Validates and views `bytes`; `keepalive` (may be null) keeps them valid for tensor views.
  static GgufFile from_bytes(std::span<const std::byte> bytes,
                             std::shared_ptr<const void> keepalive = nullptr);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section
  uint64_t file_size() const { return bytes_.size(); }

  // Metadata in file order.
  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // null if absent
  // Throws ember::Error naming the key if it is absent.
  const GgufValue& get(std::string_view key) const;

  // Tensors in file (info) order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  bool contains(std::string_view name) const;
  // Throws ember::Error if there is no tensor `name`.
  const GgufTensorInfo& info(std::string_view name) const;
  std::span<const std::byte> tensor_bytes(std::string_view name) const;
  // A zero-copy view (an aligned copy if the bytes are not aligned to the element size).
  Tensor tensor(std::string_view name) const;

  // The mapping, when opened from a file (null for buffers).
  const std::shared_ptr<const MappedFile>& mapped_file() const { return mapped_; }

 private:
  static GgufFile parse(std::span<const std::byte> bytes, std::shared_ptr<const void> keepalive,
                        const std::string& source);

  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> keepalive_;
  std::shared_ptr<const MappedFile> mapped_;
  std::string source_;
  uint32_t version_ = 3;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Writes version 3 files: the metadata in the given order, then the tensors in the given order,
// each padded to the alignment (metadata "general.alignment", a U32 power of two, or 32).
// Tensors may have any layout (written row-major) and any dtype with a ggml type id; at most 4
// dimensions. Throws ember::Error on duplicate keys or names, non-UTF-8 keys or names, a bad
// alignment value, or a tensor GGUF cannot hold.
std::vector<std::byte> serialize_gguf(const std::vector<GgufKeyValue>& metadata,
                                      const std::vector<std::pair<std::string, Tensor>>& tensors);
// The same bytes, written through an AtomicFile (the target is replaced only when complete).
void write_gguf(const std::filesystem::path& path, const std::vector<GgufKeyValue>& metadata,
                const std::vector<std::pair<std::string, Tensor>>& tensors);

// A tensor written by write_gguf_streamed: its header entry, with the bytes produced later.
struct GgufTensorSpec {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;  // row-major; quantized rows must be whole blocks
};
// The bytes of tensor `index` (exactly its size), valid until the next call.
using GgufTensorBytes = std::function<std::span<const std::byte>(size_t index)>;
// write_gguf for files too large to hold: the header is written from the specs, then each
// tensor's bytes are asked for once, in order, so only one tensor need be in memory at a time.
// Throws ember::Error as write_gguf does, and when produced bytes have the wrong size.
void write_gguf_streamed(const std::filesystem::path& path,
                         const std::vector<GgufKeyValue>& metadata,
                         const std::vector<GgufTensorSpec>& tensors,
                         const GgufTensorBytes& bytes_of);

}  // namespace ember
