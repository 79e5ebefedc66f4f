#include "ember/formats/gguf.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/core/atomic_file.hpp"

namespace ember {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader and writer copy little-endian values as they are");

namespace {

constexpr std::array<std::byte, 4> kMagic = {std::byte{'G'}, std::byte{'G'}, std::byte{'U'},
                                             std::byte{'F'}};
constexpr const char* kAlignmentKey = "general.alignment";

struct GgmlTypeId {
  uint32_t id;
  DType dtype;
};
constexpr GgmlTypeId kGgmlTypes[] = {
    {0, DType::F32},   {1, DType::F16},   {2, DType::Q4_0},  {3, DType::Q4_1},  {6, DType::Q5_0},
    {7, DType::Q5_1},  {8, DType::Q8_0},  {9, DType::Q8_1},  {10, DType::Q2_K}, {11, DType::Q3_K},
    {12, DType::Q4_K}, {13, DType::Q5_K}, {14, DType::Q6_K}, {15, DType::Q8_K}, {24, DType::I8},
    {25, DType::I16},  {26, DType::I32},  {27, DType::I64},  {28, DType::F64},  {30, DType::BF16},
};

// Byte size of a fixed-size value type; 0 for String and Array.
size_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:
    case GgufType::Array:
      return 0;
  }
  return 0;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
bool is_signed(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}

// The fewest bytes an encoded value of `type` can take, so a count can be checked against the
// bytes left before anything is allocated for it.
uint64_t min_encoded_size(GgufType type) {
  if (type == GgufType::String) return 8;
  if (type == GgufType::Array) return 12;
  return scalar_size(type);
}

uint64_t align_up(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

// A bounds-checked little-endian cursor over the header bytes.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw Error("gguf: " + (source_.empty() ? std::string() : source_ + ": ") + message);
  }

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  std::span<const std::byte> take(uint64_t n, const std::string& what) {
    if (n > left()) {
      fail(what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           " but the file has " + std::to_string(left()) + " left");
    }
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  template <typename T>
  T scalar(const std::string& what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what).data(), sizeof(T));
    return v;
  }

  std::string string(const std::string& what) {
    const uint64_t n = scalar<uint64_t>(what + " length");
    if (n > left()) {
      fail(what + " is " + std::to_string(n) + " bytes long but the file has " +
           std::to_string(left()) + " left");
    }
    const auto b = take(n, what);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

  // A count of items of at least `min_size` bytes each, checked against the bytes left.
  uint64_t count(const std::string& what, uint64_t min_size) {
    const uint64_t n = scalar<uint64_t>(what);
    if (min_size > 0 && n > left() / min_size) {
      fail(what + " " + std::to_string(n) + " cannot fit in the " + std::to_string(left()) +
           " bytes left");
    }
    return n;
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

GgufType read_type(Reader& r, const std::string& what) {
  const auto raw = r.scalar<uint32_t>(what + " type");
  if (raw > static_cast<uint32_t>(GgufType::F64)) {
    r.fail(what + " has unknown value type " + std::to_string(raw));
  }
  return static_cast<GgufType>(raw);
}

GgufValue read_value(Reader& r, GgufType type, const std::string& what, int depth) {
  switch (type) {
    case GgufType::U8:
      return GgufValue::unsigned_int(type, r.scalar<uint8_t>(what));
    case GgufType::U16:
      return GgufValue::unsigned_int(type, r.scalar<uint16_t>(what));
    case GgufType::U32:
      return GgufValue::unsigned_int(type, r.scalar<uint32_t>(what));
    case GgufType::U64:
      return GgufValue::unsigned_int(type, r.scalar<uint64_t>(what));
    case GgufType::I8:
      return GgufValue::signed_int(type, r.scalar<int8_t>(what));
    case GgufType::I16:
      return GgufValue::signed_int(type, r.scalar<int16_t>(what));
    case GgufType::I32:
      return GgufValue::signed_int(type, r.scalar<int32_t>(what));
    case GgufType::I64:
      return GgufValue::signed_int(type, r.scalar<int64_t>(what));
    case GgufType::F32:
      return GgufValue::floating(type, r.scalar<float>(what));
    case GgufType::F64:
      return GgufValue::floating(type, r.scalar<double>(what));
    case GgufType::Bool: {
      const auto b = r.scalar<uint8_t>(what);
      if (b > 1) r.fail(what + " is a bool with byte value " + std::to_string(b));
      return GgufValue::boolean(b == 1);
    }
    case GgufType::String:
      return GgufValue::string(r.string(what));
    case GgufType::Array: {
      if (depth >= kGgufMaxArrayDepth) {
        r.fail(what + " nests arrays deeper than " + std::to_string(kGgufMaxArrayDepth) +
               " levels");
      }
      const GgufType element = read_type(r, what + " element");
      const uint64_t n = r.count(what + " element count", min_encoded_size(element));
      GgufValue::Array items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        items.push_back(read_value(r, element, what + "[" + std::to_string(i) + "]", depth + 1));
      }
      return GgufValue::array(element, std::move(items));
    }
  }
  r.fail(what + " has unknown value type");
}

// Writes the encoded bytes through `sink(const void*, size_t)`.
template <typename Sink>
class Encoder {
 public:
  explicit Encoder(Sink& sink) : sink_(sink) {}
  uint64_t written() const { return written_; }

  void raw(const void* p, size_t n) {
    sink_(p, n);
    written_ += n;
  }
  template <typename T>
  void scalar(T v) {
    raw(&v, sizeof(T));
  }
  void string(std::string_view s) {
    scalar<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void zeros(uint64_t n) {
    static constexpr std::array<char, 64> kZeros{};
    while (n > 0) {
      const size_t k = std::min<uint64_t>(n, kZeros.size());
      raw(kZeros.data(), k);
      n -= k;
    }
  }
  void value(const GgufValue& v) {
    switch (v.type()) {
      case GgufType::U8:
        return scalar(static_cast<uint8_t>(*v.as_u64()));
      case GgufType::U16:
        return scalar(static_cast<uint16_t>(*v.as_u64()));
      case GgufType::U32:
        return scalar(static_cast<uint32_t>(*v.as_u64()));
      case GgufType::U64:
        return scalar(*v.as_u64());
      case GgufType::I8:
        return scalar(static_cast<int8_t>(*v.as_i64()));
      case GgufType::I16:
        return scalar(static_cast<int16_t>(*v.as_i64()));
      case GgufType::I32:
        return scalar(static_cast<int32_t>(*v.as_i64()));
      case GgufType::I64:
        return scalar(*v.as_i64());
      case GgufType::F32:
        return scalar(static_cast<float>(*v.as_f64()));
      case GgufType::F64:
        return scalar(*v.as_f64());
      case GgufType::Bool:
        return scalar<uint8_t>(*v.as_bool() ? 1 : 0);
      case GgufType::String:
        return string(*v.as_string());
      case GgufType::Array:
        scalar(static_cast<uint32_t>(v.element_type()));
        scalar<uint64_t>(v.as_array()->size());
        for (const GgufValue& item : *v.as_array()) value(item);
        return;
    }
  }

 private:
  Sink& sink_;
  uint64_t written_ = 0;
};

[[noreturn]] void write_fail(const std::string& message) {
  throw Error("gguf: cannot write: " + message);
}

uint32_t writer_alignment(const std::vector<GgufKeyValue>& metadata) {
  for (const GgufKeyValue& kv : metadata) {
    if (kv.key != kAlignmentKey) continue;
    const auto a = kv.value.as_u64();
    if (kv.value.type() != GgufType::U32 || !a || *a == 0 || !std::has_single_bit(*a)) {
      write_fail(std::string(kAlignmentKey) + " must be a U32 power of two");
    }
    return static_cast<uint32_t>(*a);
  }
  return kGgufDefaultAlignment;
}

struct PlannedTensor {
  const GgufTensorSpec* spec;
  uint32_t ggml_type;
  uint64_t nbytes;
  uint64_t offset;
};

// Checks everything and lays the tensors out; throws before any byte is written.
std::vector<PlannedTensor> plan(const std::vector<GgufKeyValue>& metadata,
                                const std::vector<GgufTensorSpec>& specs, uint32_t alignment) {
  std::unordered_map<std::string_view, int> seen;
  for (const GgufKeyValue& kv : metadata) {
    if (!is_valid_utf8(kv.key)) write_fail("metadata key " + quote_name(kv.key) + " is not UTF-8");
    if (!seen.emplace(kv.key, 0).second) write_fail("duplicate metadata key " + quote_name(kv.key));
  }
  seen.clear();
  std::vector<PlannedTensor> out;
  uint64_t offset = 0;
  for (const GgufTensorSpec& spec : specs) {
    const std::string& name = spec.name;
    if (!is_valid_utf8(name)) write_fail("tensor name " + quote_name(name) + " is not UTF-8");
    if (!seen.emplace(name, 0).second) write_fail("duplicate tensor name " + quote_name(name));
    const auto type = ggml_type_of(spec.dtype);
    if (!type) {
      write_fail("tensor " + quote_name(name) + " has dtype " +
                 std::string(dtype_name(spec.dtype)) + ", which GGUF cannot hold");
    }
    if (std::ssize(spec.shape) > kGgufMaxDims) {
      write_fail("tensor " + quote_name(name) + " has " + std::to_string(spec.shape.size()) +
                 " dimensions; GGUF allows at most " + std::to_string(kGgufMaxDims));
    }
    const auto nbytes = dtype_bytes(spec.dtype, static_cast<uint64_t>(shape_numel(spec.shape)));
    if (!nbytes || (is_quantized(spec.dtype) && !spec.shape.empty() &&
                    spec.shape.back() % dtype_info(spec.dtype).block_elems != 0)) {
      write_fail("tensor " + quote_name(name) + "'s rows are not whole " +
                 std::string(dtype_name(spec.dtype)) + " blocks");
    }
    out.push_back({&spec, *type, *nbytes, offset});
    offset = align_up(offset + *nbytes, alignment);
  }
  return out;
}

template <typename Sink>
void encode(const std::vector<GgufKeyValue>& metadata, const std::vector<GgufTensorSpec>& specs,
            const GgufTensorBytes& bytes_of, Sink& sink) {
  const uint32_t alignment = writer_alignment(metadata);
  const std::vector<PlannedTensor> planned = plan(metadata, specs, alignment);
  Encoder<Sink> e(sink);
  e.raw(kMagic.data(), kMagic.size());
  e.template scalar<uint32_t>(3);
  e.template scalar<uint64_t>(specs.size());
  e.template scalar<uint64_t>(metadata.size());
  for (const GgufKeyValue& kv : metadata) {
    e.string(kv.key);
    e.template scalar<uint32_t>(static_cast<uint32_t>(kv.value.type()));
    e.value(kv.value);
  }
  for (const PlannedTensor& p : planned) {
    e.string(p.spec->name);
    const Shape& shape = p.spec->shape;
    e.template scalar<uint32_t>(static_cast<uint32_t>(shape.size()));
    for (auto it = shape.rbegin(); it != shape.rend(); ++it) {
      e.template scalar<uint64_t>(static_cast<uint64_t>(*it));
    }
    e.template scalar<uint32_t>(p.ggml_type);
    e.template scalar<uint64_t>(p.offset);
  }
  const uint64_t data_start = align_up(e.written(), alignment);
  e.zeros(data_start - e.written());
  for (size_t i = 0; i < planned.size(); ++i) {
    const PlannedTensor& p = planned[i];
    e.zeros(data_start + p.offset - e.written());
    const std::span<const std::byte> bytes = bytes_of(i);
    if (bytes.size() != p.nbytes) {
      write_fail("tensor " + quote_name(p.spec->name) + " came with " +
                 std::to_string(bytes.size()) + " bytes, not " + std::to_string(p.nbytes));
    }
    e.raw(bytes.data(), bytes.size());
  }
  if (!planned.empty()) e.zeros(align_up(e.written(), alignment) - e.written());
}

// The specs of in-memory tensors, which are made contiguous once so their bytes can be handed
// out as they are.
struct HeldTensors {
  std::vector<GgufTensorSpec> specs;
  std::vector<Tensor> data;
  explicit HeldTensors(const std::vector<std::pair<std::string, Tensor>>& tensors) {
    for (const auto& [name, t] : tensors) {
      specs.push_back({name, t.dtype(), t.shape()});
      data.push_back(t.contiguous());
    }
  }
  std::span<const std::byte> operator()(size_t i) const {
    return {static_cast<const std::byte*>(data[i].data()), data[i].nbytes()};
  }
};

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "U8",   "I8",     "U16",   "I16", "U32", "I32", "F32",
      "BOOL", "STRING", "ARRAY", "U64", "I64", "F64"};
  const auto i = static_cast<uint32_t>(type);
  return i < kNames.size() ? kNames[i] : "UNKNOWN";
}

GgufValue GgufValue::unsigned_int(GgufType type, uint64_t v) {
  if (!is_unsigned(type))
    throw Error("gguf: " + std::string(gguf_type_name(type)) + " is not unsigned");
  const size_t bits = scalar_size(type) * 8;
  if (bits < 64 && v >> bits != 0) {
    throw Error("gguf: " + std::to_string(v) + " does not fit " +
                std::string(gguf_type_name(type)));
  }
  GgufValue out;
  out.type_ = type;
  out.value_ = v;
  return out;
}

GgufValue GgufValue::signed_int(GgufType type, int64_t v) {
  if (!is_signed(type))
    throw Error("gguf: " + std::string(gguf_type_name(type)) + " is not signed");
  const size_t bits = scalar_size(type) * 8;
  if (bits < 64) {
    const int64_t lo = -(int64_t{1} << (bits - 1));
    const int64_t hi = (int64_t{1} << (bits - 1)) - 1;
    if (v < lo || v > hi) {
      throw Error("gguf: " + std::to_string(v) + " does not fit " +
                  std::string(gguf_type_name(type)));
    }
  }
  GgufValue out;
  out.type_ = type;
  out.value_ = v;
  return out;
}

GgufValue GgufValue::floating(GgufType type, double v) {
  if (type != GgufType::F32 && type != GgufType::F64) {
    throw Error("gguf: " + std::string(gguf_type_name(type)) + " is not a float type");
  }
  GgufValue out;
  out.type_ = type;
  // An F32 value is kept as the float the file holds, so it is written back bit for bit.
  out.value_ = type == GgufType::F32 ? static_cast<double>(static_cast<float>(v)) : v;
  return out;
}

GgufValue GgufValue::boolean(bool v) {
  GgufValue out;
  out.type_ = GgufType::Bool;
  out.value_ = v;
  return out;
}

GgufValue GgufValue::string(std::string v) {
  GgufValue out;
  out.type_ = GgufType::String;
  out.value_ = std::move(v);
  return out;
}

GgufValue GgufValue::array(GgufType element_type, Array items) {
  for (const GgufValue& item : items) {
    if (item.type_ != element_type) {
      throw Error("gguf: an array of " + std::string(gguf_type_name(element_type)) + " holds a " +
                  std::string(gguf_type_name(item.type_)));
    }
  }
  GgufValue out;
  out.type_ = GgufType::Array;
  out.element_type_ = element_type;
  out.value_ = std::move(items);
  return out;
}

std::optional<uint64_t> GgufValue::as_u64() const {
  if (const auto* u = std::get_if<uint64_t>(&value_)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value_); i && *i >= 0) return static_cast<uint64_t>(*i);
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_i64() const {
  if (const auto* i = std::get_if<int64_t>(&value_)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&value_);
      u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_f64() const {
  if (const auto* d = std::get_if<double>(&value_)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value_)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value_)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&value_)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  return std::get_if<std::string>(&value_);
}

const GgufValue::Array* GgufValue::as_array() const {
  return std::get_if<Array>(&value_);
}

std::string GgufValue::to_json() const {
  std::string out;
  if (const auto* u = std::get_if<uint64_t>(&value_)) {
    out = std::to_string(*u);
  } else if (const auto* i = std::get_if<int64_t>(&value_)) {
    out = std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&value_)) {
    out = nlohmann::json(*d).dump();  // null for NaN and infinities, which JSON lacks
  } else if (const auto* b = std::get_if<bool>(&value_)) {
    out = *b ? "true" : "false";
  } else if (const auto* s = std::get_if<std::string>(&value_)) {
    // Metadata strings need not be UTF-8: invalid bytes become U+FFFD rather than an exception.
    out = nlohmann::json(*s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    out = "[";
    const Array& items = std::get<Array>(value_);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0) out += ", ";
      out += items[k].to_json();
    }
    out += "]";
  }
  return out;
}

std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type) {
  for (const GgmlTypeId& t : kGgmlTypes) {
    if (t.id == ggml_type) return t.dtype;
  }
  return std::nullopt;
}

std::optional<uint32_t> ggml_type_of(DType dtype) {
  for (const GgmlTypeId& t : kGgmlTypes) {
    if (t.dtype == dtype) return t.id;
  }
  return std::nullopt;
}

bool looks_like_gguf(const std::filesystem::path& path) {
  if (path.extension() == ".gguf") return true;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size());
  return in.gcount() == 4 && std::memcmp(magic.data(), kMagic.data(), 4) == 0;
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  auto mapped = MappedFile::open(path);
  GgufFile out = parse(mapped->bytes(), mapped, path.string());
  out.mapped_ = std::move(mapped);
  return out;
}

GgufFile GgufFile::from_bytes(std::span<const std::byte> bytes,
                              std::shared_ptr<const void> keepalive) {
  return parse(bytes, std::move(keepalive), "");
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, std::shared_ptr<const void> keepalive,
                         const std::string& source) {
  GgufFile f;
  f.bytes_ = bytes;
  f.keepalive_ = std::move(keepalive);
  f.source_ = source;
  Reader r(bytes, f.source_);

  const auto magic = r.take(4, "magic");
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin()))
    r.fail("bad magic (not a GGUF file)");
  f.version_ = r.scalar<uint32_t>("version");
  if (f.version_ != 2 && f.version_ != 3) {
    // A big-endian file (ggml writes those for s390x) shows its version byte-swapped.
    const bool swapped = f.version_ == 0x02000000 || f.version_ == 0x03000000;
    r.fail("unsupported version " + std::to_string(f.version_) +
           (swapped ? " (a big-endian file, which Ember does not read)" : " (2 and 3 are read)"));
  }
  // A tensor info takes at least 24 bytes (name length, n_dims, type, offset), a key-value
  // at least 13 (key length, type, a one-byte value).
  const uint64_t n_tensors = r.count("tensor count", 24);
  const uint64_t n_kv = r.count("metadata count", 13);

  f.metadata_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string what = "metadata entry " + std::to_string(k);
    std::string key = r.string(what + " key");
    if (!is_valid_utf8(key)) r.fail(what + ": key " + quote_name(key) + " is not UTF-8");
    const std::string named = "metadata " + quote_name(key);
    if (f.metadata_index_.count(key) != 0) r.fail("duplicate metadata key " + quote_name(key));
    const GgufType type = read_type(r, named);
    GgufValue value = read_value(r, type, named, 0);
    f.metadata_index_.emplace(key, f.metadata_.size());
    f.metadata_.push_back({std::move(key), std::move(value)});
  }
  if (const GgufValue* a = f.find(kAlignmentKey)) {
    const auto v = a->as_u64();
    if (a->type() != GgufType::U32 || !v || *v == 0 || !std::has_single_bit(*v)) {
      r.fail(std::string(kAlignmentKey) + " must be a U32 power of two, not " + a->to_json() +
             " of type " + std::string(gguf_type_name(a->type())));
    }
    f.alignment_ = static_cast<uint32_t>(*v);
  }

  f.tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.name = r.string("tensor " + std::to_string(k) + " name");
    const std::string named = "tensor " + quote_name(t.name);
    if (!is_valid_utf8(t.name)) r.fail(named + ": name is not UTF-8");
    if (f.tensor_index_.count(t.name) != 0) r.fail("duplicate tensor name " + quote_name(t.name));
    const auto n_dims = r.scalar<uint32_t>(named + " dimension count");
    if (n_dims > static_cast<uint32_t>(kGgufMaxDims)) {
      r.fail(named + " has " + std::to_string(n_dims) + " dimensions; at most " +
             std::to_string(kGgufMaxDims) + " are allowed");
    }
    t.shape.assign(n_dims, 0);
    // The non-zero extents' product must fit as well, not just the element count: tensor code
    // multiplies extents in its own order, where a zero extent need not come first.
    constexpr auto kMaxCount = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t nonzero_product = 1;
    bool empty = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = r.scalar<uint64_t>(named + " extent");
      if (ne > kMaxCount || (ne != 0 && nonzero_product > kMaxCount / ne)) {
        r.fail(named + ": element count overflows");
      }
      empty = empty || ne == 0;
      nonzero_product *= ne == 0 ? 1 : ne;
      t.shape[n_dims - 1 - d] = static_cast<int64_t>(ne);
    }
    const uint64_t numel = empty ? 0 : nonzero_product;
    t.ggml_type = r.scalar<uint32_t>(named + " type");
    const auto dtype = dtype_from_ggml_type(t.ggml_type);
    if (!dtype) r.fail(named + " has unsupported ggml type id " + std::to_string(t.ggml_type));
    t.dtype = *dtype;
    const uint32_t block = dtype_info(t.dtype).block_elems;
    if (n_dims > 0 && static_cast<uint64_t>(t.shape.back()) % block != 0) {
      r.fail(named + ": innermost extent " + std::to_string(t.shape.back()) +
             " is not a multiple of " + std::string(dtype_name(t.dtype)) + "'s block of " +
             std::to_string(block));
    }
    const auto nbytes = dtype_bytes(t.dtype, numel);
    if (!nbytes) r.fail(named + ": byte size overflows");
    t.nbytes = *nbytes;
    t.offset = r.scalar<uint64_t>(named + " offset");
    if (t.offset % f.alignment_ != 0) {
      r.fail(named + ": offset " + std::to_string(t.offset) +
             " is not a multiple of the alignment " + std::to_string(f.alignment_));
    }
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  f.data_offset_ = align_up(r.pos(), f.alignment_);
  const uint64_t size = bytes.size();
  const uint64_t data_size = f.data_offset_ <= size ? size - f.data_offset_ : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(f.tensors_.size());
  for (const GgufTensorInfo& t : f.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      r.fail("tensor " + quote_name(t.name) + ": bytes [" + std::to_string(t.offset) + ", +" +
             std::to_string(t.nbytes) + ") lie past the end of the data section (" +
             std::to_string(data_size) + " bytes from offset " + std::to_string(f.data_offset_) +
             ")");
    }
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& prev = *by_offset[k - 1];
    const GgufTensorInfo& cur = *by_offset[k];
    if (cur.offset < prev.offset + prev.nbytes) {
      r.fail("tensors " + quote_name(prev.name) + " and " + quote_name(cur.name) + " overlap");
    }
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  throw Error("gguf: " + (source_.empty() ? std::string() : source_ + ": ") + "no metadata key " +
              quote_name(key));
}

bool GgufFile::contains(std::string_view name) const {
  return tensor_index_.count(std::string(name)) != 0;
}

const GgufTensorInfo& GgufFile::info(std::string_view name) const {
  const auto it = tensor_index_.find(std::string(name));
  if (it == tensor_index_.end()) {
    throw Error("gguf: " + (source_.empty() ? std::string() : source_ + ": ") + "no tensor " +
                quote_name(name));
  }
  return tensors_[it->second];
}

std::span<const std::byte> GgufFile::tensor_bytes(std::string_view name) const {
  const GgufTensorInfo& t = info(name);
  return bytes_.subspan(data_offset_ + t.offset, t.nbytes);
}

Tensor GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo& t = info(name);
  const std::span<const std::byte> b = tensor_bytes(name);
  // Block types are read bytewise by their kernels; scalar types need element alignment.
  const size_t align = is_quantized(t.dtype) ? 1 : dtype_size(t.dtype);
  if (reinterpret_cast<uintptr_t>(b.data()) % align != 0) {
    Tensor copy = Tensor::empty(t.dtype, t.shape);
    if (!b.empty()) std::memcpy(copy.mutable_data(), b.data(), b.size());
    return copy;
  }
  return Tensor::borrow(t.dtype, t.shape, b.data(), b.size(), keepalive_, mapped_.get());
}

std::vector<std::byte> serialize_gguf(const std::vector<GgufKeyValue>& metadata,
                                      const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const HeldTensors held(tensors);
  std::vector<std::byte> out;
  auto sink = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  };
  encode(metadata, held.specs, held, sink);
  return out;
}

void write_gguf_streamed(const std::filesystem::path& path,
                         const std::vector<GgufKeyValue>& metadata,
                         const std::vector<GgufTensorSpec>& tensors,
                         const GgufTensorBytes& bytes_of) {
  AtomicFile file(path);
  // Small header pieces are gathered so the file sees few large writes.
  std::vector<std::byte> pending;
  auto flush = [&] {
    file.write(pending);
    pending.clear();
  };
  auto sink = [&](const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    if (n >= (1u << 16)) {
      flush();
      file.write(std::span<const std::byte>(b, n));
      return;
    }
    pending.insert(pending.end(), b, b + n);
    if (pending.size() >= (1u << 20)) flush();
  };
  encode(metadata, tensors, bytes_of, sink);
  flush();
  file.commit();
}

void write_gguf(const std::filesystem::path& path, const std::vector<GgufKeyValue>& metadata,
                const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const HeldTensors held(tensors);
  write_gguf_streamed(path, metadata, held.specs, held);
}

}  // namespace ember
