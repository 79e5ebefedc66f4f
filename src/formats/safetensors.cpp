#include "ember/formats/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/core/atomic_file.hpp"
#include "strict_json.hpp"

namespace ember {
namespace {

using json = nlohmann::json;
using formats_detail::StrictJsonResult;

constexpr size_t kLengthPrefix = 8;

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw Error("safetensors: " + (source.empty() ? std::string() : source + ": ") + message);
}

std::string offsets_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A JSON value that is a non-negative integer. nlohmann reports "-0" and other negative numbers
// as number_integer and "1.0"/"1e3" as floats; serde's usize accepts none of them.
std::optional<uint64_t> as_index(const json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;
  return v.get<uint64_t>();
}

// Dtypes the reference knows that have no Ember element type.
bool is_reference_only_dtype(std::string_view code) {
  for (const char* known :
       {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"}) {
    if (code == known) return true;
  }
  return false;
}

std::string duplicate_key_message(const StrictJsonResult& r) {
  const auto& path = r.key_path;
  const std::string key = quote_name(r.duplicate_key);
  if (path.empty()) {
    if (r.duplicate_key == "__metadata__") return "duplicate key '__metadata__' in header";
    return "duplicate tensor name " + key + " in header";
  }
  if (path.size() == 1 && path[0] == "__metadata__") {
    return "__metadata__: duplicate metadata key " + key;
  }
  if (path.size() == 1) return "tensor " + quote_name(path[0]) + ": duplicate field " + key;
  return "duplicate JSON key " + key + " inside tensor " + quote_name(path[0]);
}

// The header's shape, checked while it is parsed: what the reference's typed deserializer refuses
// at once is refused at once, and the unknown entry fields it ignores are skipped unbuilt. The
// messages are the ones parse_entry and parse_metadata give for the same faults.
formats_detail::JsonVerdict header_schema(const std::vector<std::string>& path,
                                          formats_detail::JsonKind kind) {
  using formats_detail::JsonKind;
  using Action = formats_detail::JsonVerdict::Action;
  const auto keep = [] { return formats_detail::JsonVerdict{}; };
  const auto refuse = [](std::string message) {
    return formats_detail::JsonVerdict{Action::Refuse, std::move(message)};
  };
  if (path.empty())
    return kind == JsonKind::Object ? keep() : refuse("header is not a JSON object");
  const std::string& name = path[0];
  const bool metadata = name == "__metadata__";
  if (path.size() == 1) {
    if (metadata) {
      return kind == JsonKind::Object || kind == JsonKind::Null
                 ? keep()
                 : refuse("__metadata__ is not a JSON object of strings");
    }
    return kind == JsonKind::Object
               ? keep()
               : refuse("tensor " + quote_name(name) + ": entry is not a JSON object");
  }
  if (metadata) {
    return kind == JsonKind::String
               ? keep()
               : refuse("__metadata__: value of key " + quote_name(path[1]) + " is not a string");
  }
  const std::string who = "tensor " + quote_name(name) + ": ";
  const std::string& field = path[1];
  if (path.size() == 2) {
    if (field == "dtype") {
      return kind == JsonKind::String ? keep() : refuse(who + "field 'dtype' is not a string");
    }
    if (field == "shape") {
      return kind == JsonKind::Array ? keep() : refuse(who + "field 'shape' is not an array");
    }
    if (field == "data_offsets") {
      return kind == JsonKind::Array
                 ? keep()
                 : refuse(who + "field 'data_offsets' is not an array of two integers");
    }
    return {Action::Skip, {}};
  }
  // An element of shape or data_offsets (nothing else below an entry is kept).
  return kind == JsonKind::Number ? keep()
                                  : refuse(who + "field '" + field +
                                           "' holds a value that is not a non-negative integer");
}

// Checks one header entry's fields and their types; returns the tensor description.
SafeTensorInfo parse_entry(const std::string& source, const std::string& name, const json& entry) {
  const std::string who = "tensor " + quote_name(name) + ": ";
  if (!entry.is_object()) fail(source, who + "entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) fail(source, who + "missing field '" + field + "'");
  }
  SafeTensorInfo info;
  info.name = name;

  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) fail(source, who + "field 'dtype' is not a string");
  const auto parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
  if (!parsed_dtype || is_quantized(*parsed_dtype)) {
    const std::string& code = dtype.get_ref<const std::string&>();
    if (is_reference_only_dtype(code)) {
      fail(source, who + "dtype " + quote_name(code) + " is not supported by Ember");
    }
    fail(source, who + "unknown dtype " + quote_name(code));
  }
  info.dtype = *parsed_dtype;

  const json& shape = entry["shape"];
  if (!shape.is_array()) fail(source, who + "field 'shape' is not an array");
  // The element count is folded left to right with overflow checks, as the reference does.
  // Ember also needs the product of the non-zero dims to fit int64 (row-major strides of an
  // empty tensor such as [0, 2^62, 4] would overflow), which the reference never computes.
  uint64_t numel = 1;
  uint64_t nonzero_product = 1;
  for (const json& d : shape) {
    const auto dim = as_index(d);
    if (!dim) fail(source, who + "field 'shape' holds a value that is not a non-negative integer");
    if (__builtin_mul_overflow(numel, *dim, &numel)) {
      fail(source, who + "shape overflows: the element count does not fit 64 bits");
    }
    if ((*dim != 0 && __builtin_mul_overflow(nonzero_product, *dim, &nonzero_product)) ||
        nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(source, who + "shape overflows: the product of its dims does not fit int64");
    }
    info.shape.push_back(static_cast<int64_t>(*dim));
  }
  const auto expected_bytes = dtype_bytes(info.dtype, numel);
  if (!expected_bytes || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(source, who + "shape overflows: the byte size does not fit 64 bits");
  }

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    fail(source, who + "field 'data_offsets' is not an array of two integers");
  }
  const auto begin = as_index(offsets[0]);
  const auto end = as_index(offsets[1]);
  if (!begin || !end) {
    fail(source, who + "field 'data_offsets' holds a value that is not a non-negative integer");
  }
  info.data_begin = *begin;
  info.data_end = *end;
  if (*end < *begin) fail(source, who + "data_offsets " + offsets_text(*begin, *end) + " reversed");
  if (*end - *begin != *expected_bytes) {
    fail(source, who + "byte length " + std::to_string(*end - *begin) + " of data_offsets " +
                     offsets_text(*begin, *end) + " does not match shape " +
                     shape_to_string(info.shape) + " of " + std::string(dtype_name(info.dtype)) +
                     " (" + std::to_string(*expected_bytes) + " bytes)");
  }
  return info;
}

void parse_metadata(const std::string& source, const json& value, SafeTensorsMetadata& out,
                    bool& present) {
  if (value.is_null()) return;  // the reference reads `null` as "no metadata"
  if (!value.is_object()) fail(source, "__metadata__ is not a JSON object of strings");
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      fail(source, "__metadata__: value of key " + quote_name(key) + " is not a string");
    out.emplace(key, v.get<std::string>());
  }
  present = true;
}

// The reference writer's sort key: its Dtype enum order (BOOL < ... < U64), sorted descending.
int reference_dtype_rank(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return 0;
    case DType::U8:
      return 4;
    case DType::I8:
      return 5;
    case DType::F8_E5M2:
      return 6;
    case DType::F8_E4M3:
      return 7;
    case DType::I16:
      return 11;
    case DType::U16:
      return 12;
    case DType::F16:
      return 13;
    case DType::BF16:
      return 14;
    case DType::I32:
      return 15;
    case DType::U32:
      return 16;
    case DType::F32:
      return 17;
    case DType::F64:
      return 19;
    case DType::I64:
      return 20;
    case DType::U64:
      return 21;
    default:  // quantized types are rejected before sorting
      break;
  }
  return -1;
}

// JSON string escaping as serde_json writes it: \" \\ \b \f \n \r \t, other control bytes as
// \u00XX (lowercase hex), everything else (including DEL and non-ASCII UTF-8) verbatim.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

struct PlannedTensor {
  const std::string* name;
  Tensor tensor;  // contiguous
  uint64_t begin;
  uint64_t end;
};

// Orders and places the tensors and builds the padded header (without the length prefix).
std::string plan_layout(const std::map<std::string, Tensor>& tensors,
                        const std::optional<SafeTensorsMetadata>& metadata,
                        std::vector<PlannedTensor>& planned) {
  const auto check_text = [](const std::string& s, const char* what) {
    if (!is_valid_utf8(s)) {
      throw Error(std::string("safetensors: cannot write ") + what + " " + quote_name(s) +
                  ": not valid UTF-8");
    }
  };
  planned.clear();
  for (const auto& [name, tensor] : tensors) {
    check_text(name, "tensor name");
    if (name == "__metadata__") throw Error("safetensors: '__metadata__' is a reserved name");
    if (!tensor.defined()) throw Error("safetensors: tensor " + quote_name(name) + " is undefined");
    if (is_quantized(tensor.dtype())) {
      throw Error("safetensors: tensor " + quote_name(name) + " has dtype " +
                  std::string(dtype_name(tensor.dtype())) + ", which safetensors cannot store");
    }
    planned.push_back({&name, tensor.contiguous(), 0, 0});
  }
  std::stable_sort(planned.begin(), planned.end(), [](const auto& a, const auto& b) {
    const int ra = reference_dtype_rank(a.tensor.dtype());
    const int rb = reference_dtype_rank(b.tensor.dtype());
    if (ra != rb) return ra > rb;
    return *a.name < *b.name;  // std::string compares bytewise, like Rust's String
  });

  std::string header = "{";
  if (metadata) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : *metadata) {
      check_text(key, "metadata key");
      check_text(value, "metadata value");
      if (!first) header.push_back(',');
      first = false;
      append_json_string(header, key);
      header.push_back(':');
      append_json_string(header, value);
    }
    header += "}";
    if (!planned.empty()) header.push_back(',');
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < planned.size(); ++i) {
    PlannedTensor& p = planned[i];
    p.begin = offset;
    p.end = offset + p.tensor.nbytes();
    offset = p.end;
    if (i > 0) header.push_back(',');
    append_json_string(header, *p.name);
    header += ":{\"dtype\":\"";
    header += dtype_name(p.tensor.dtype());
    header += "\",\"shape\":[";
    for (size_t d = 0; d < p.tensor.shape().size(); ++d) {
      if (d > 0) header.push_back(',');
      header += std::to_string(p.tensor.shape()[d]);
    }
    header += "],\"data_offsets\":[" + std::to_string(p.begin) + "," + std::to_string(p.end) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kSafeTensorsMaxHeaderBytes) {
    throw Error("safetensors: header of " + std::to_string(header.size()) +
                " bytes exceeds the limit readers enforce (" +
                std::to_string(kSafeTensorsMaxHeaderBytes) + " bytes)");
  }
  return header;
}

void append_le64(std::vector<std::byte>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xffu));
}

}  // namespace

int64_t SafeTensorInfo::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;  // validated not to overflow when parsed
  return n;
}

SafeTensors SafeTensors::open(const std::filesystem::path& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  SafeTensors st = parse(file->bytes(), file, path.string());
  st.mapped_ = std::move(file);
  return st;
}

SafeTensors SafeTensors::from_bytes(std::span<const std::byte> bytes,
                                    std::shared_ptr<const void> keepalive) {
  return parse(bytes, std::move(keepalive), "");
}

SafeTensors SafeTensors::from_bytes(std::vector<std::byte> bytes) {
  auto owned = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
  const std::span<const std::byte> view(owned->data(), owned->size());
  return parse(view, std::move(owned), "");
}

SafeTensors SafeTensors::parse(std::span<const std::byte> bytes,
                               std::shared_ptr<const void> keepalive, const std::string& source) {
  // Same checks, in the same order, as the reference's read_metadata + validate.
  if (bytes.size() < kLengthPrefix) {
    fail(source, "file too short: " + std::to_string(bytes.size()) +
                     " bytes, less than the 8-byte header length");
  }
  const uint64_t n = read_le64(bytes.data());
  if (n > kSafeTensorsMaxHeaderBytes) {
    fail(source, "header length " + std::to_string(n) + " exceeds the limit of " +
                     std::to_string(kSafeTensorsMaxHeaderBytes) + " bytes");
  }
  if (n > bytes.size() - kLengthPrefix) {
    fail(source, "header length " + std::to_string(n) + " runs past the end of the file (" +
                     std::to_string(bytes.size()) + " bytes)");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + kLengthPrefix, n);
  if (!is_valid_utf8(text)) fail(source, "header is not valid UTF-8");

  StrictJsonResult parsed =
      formats_detail::parse_strict_json(text, kSafeTensorsMaxJsonDepth, header_schema);
  switch (parsed.status) {
    case StrictJsonResult::Status::Ok:
      break;
    case StrictJsonResult::Status::Refused:
      fail(source, parsed.message);
    case StrictJsonResult::Status::Syntax:
      fail(source, "header is not valid JSON: " + parsed.message);
    case StrictJsonResult::Status::TooDeep:
      fail(source,
           "header JSON nests deeper than " + std::to_string(kSafeTensorsMaxJsonDepth) + " levels");
    case StrictJsonResult::Status::DuplicateKey:
      fail(source, duplicate_key_message(parsed));
  }
  const json& header = parsed.value;
  if (!header.is_object()) fail(source, "header is not a JSON object");

  SafeTensors st;
  st.bytes_ = bytes;
  st.keepalive_ = std::move(keepalive);
  st.header_size_ = n;
  const uint64_t data_size = bytes.size() - kLengthPrefix - n;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      parse_metadata(source, entry, st.metadata_, st.has_metadata_);
      continue;
    }
    SafeTensorInfo info = parse_entry(source, name, entry);
    if (info.data_end > data_size) {
      fail(source, "tensor " + quote_name(name) + ": data_offsets " +
                       offsets_text(info.data_begin, info.data_end) +
                       " point past the end of the data buffer (" + std::to_string(data_size) +
                       " bytes): file truncated?");
    }
    st.tensors_.push_back(std::move(info));
  }

  // The tensors must tile [0, data_size) exactly, in offset order.
  std::sort(st.tensors_.begin(), st.tensors_.end(), [](const auto& a, const auto& b) {
    if (a.data_begin != b.data_begin) return a.data_begin < b.data_begin;
    if (a.data_end != b.data_end) return a.data_end < b.data_end;
    return a.name < b.name;
  });
  uint64_t covered = 0;
  const SafeTensorInfo* previous = nullptr;
  for (const SafeTensorInfo& t : st.tensors_) {
    const std::string where = offsets_text(t.data_begin, t.data_end);
    if (t.data_begin > covered) {
      if (previous == nullptr) {
        fail(source, "tensor " + quote_name(t.name) + ": data_offsets " + where +
                         " leave a leading hole: the data buffer must start with a tensor");
      }
      fail(source, "tensor " + quote_name(t.name) + ": data_offsets " + where + " leave a gap of " +
                       std::to_string(t.data_begin - covered) + " bytes after tensor " +
                       quote_name(previous->name));
    }
    if (t.data_begin < covered) {
      const bool alias = previous->data_begin == t.data_begin && previous->data_end == t.data_end;
      fail(source, "tensor " + quote_name(t.name) + ": data_offsets " + where +
                       (alias ? " alias tensor " : " overlap tensor ") +
                       quote_name(previous->name));
    }
    covered = t.data_end;
    previous = &t;
  }
  if (covered != data_size) {
    fail(source, "trailing bytes: tensors cover " + std::to_string(covered) + " of the " +
                     std::to_string(data_size) + " bytes of the data buffer");
  }
  for (size_t i = 0; i < st.tensors_.size(); ++i) st.index_.emplace(st.tensors_[i].name, i);
  return st;
}

std::vector<std::string> SafeTensors::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

bool SafeTensors::contains(std::string_view name) const {
  return index_.find(std::string(name)) != index_.end();
}

const SafeTensorInfo& SafeTensors::info(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  if (it == index_.end()) throw Error("safetensors: no tensor named " + quote_name(name));
  return tensors_[it->second];
}

std::span<const std::byte> SafeTensors::tensor_bytes(std::string_view name) const {
  const SafeTensorInfo& i = info(name);
  return data_buffer().subspan(i.data_begin, i.nbytes());
}

Tensor SafeTensors::view(const SafeTensorInfo& info, uint64_t byte_begin, uint64_t byte_end,
                         Shape shape) const {
  const std::byte* p = data_buffer().data() + byte_begin;
  const size_t nbytes = byte_end - byte_begin;
  const size_t elem = dtype_size(info.dtype);
  if (reinterpret_cast<uintptr_t>(p) % elem != 0) {
    // Typed access through a misaligned pointer is undefined: hand out an aligned copy.
    Tensor copy = Tensor::empty(info.dtype, std::move(shape));
    if (nbytes > 0) std::memcpy(copy.mutable_data(), p, nbytes);
    return copy;
  }
  return Tensor::borrow(info.dtype, std::move(shape), p, nbytes, keepalive_);
}

Tensor SafeTensors::tensor(std::string_view name) const {
  const SafeTensorInfo& i = info(name);
  return view(i, i.data_begin, i.data_end, i.shape);
}

Tensor SafeTensors::slice(std::string_view name, int64_t begin, int64_t end) const {
  const SafeTensorInfo& i = info(name);
  if (i.shape.empty()) {
    throw Error("safetensors: cannot slice 0-d tensor " + quote_name(name) + " along axis 0");
  }
  const int64_t rows = i.shape[0];
  if (begin < 0 || end < begin || end > rows) {
    throw Error("safetensors: slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") of tensor " + quote_name(name) + " is outside axis 0 of length " +
                std::to_string(rows));
  }
  const uint64_t row_bytes = rows == 0 ? 0 : i.nbytes() / static_cast<uint64_t>(rows);
  Shape shape = i.shape;
  shape[0] = end - begin;
  return view(i, i.data_begin + static_cast<uint64_t>(begin) * row_bytes,
              i.data_begin + static_cast<uint64_t>(end) * row_bytes, std::move(shape));
}

void SafeTensors::advise_sequential_read() const {
  if (!mapped_) return;
  const size_t start = kLengthPrefix + header_size_;
  mapped_->advise_sequential(start, mapped_->size() - start);
  mapped_->advise_willneed(start, mapped_->size() - start);
}

std::vector<std::byte> serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                             const std::optional<SafeTensorsMetadata>& metadata) {
  std::vector<PlannedTensor> planned;
  const std::string header = plan_layout(tensors, metadata, planned);
  const uint64_t data_size = planned.empty() ? 0 : planned.back().end;
  std::vector<std::byte> out;
  out.reserve(kLengthPrefix + header.size() + data_size);
  append_le64(out, header.size());
  const auto* h = reinterpret_cast<const std::byte*>(header.data());
  out.insert(out.end(), h, h + header.size());
  for (const PlannedTensor& p : planned) {
    const std::byte* d = p.tensor.data();
    out.insert(out.end(), d, d + p.tensor.nbytes());
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, Tensor>& tensors,
                       const std::optional<SafeTensorsMetadata>& metadata) {
  std::vector<PlannedTensor> planned;
  const std::string header = plan_layout(tensors, metadata, planned);
  std::vector<std::byte> prefix;
  append_le64(prefix, header.size());
  try {
    AtomicFile file(path);
    file.write(prefix);
    file.write(header);
    for (const PlannedTensor& p : planned) file.write({p.tensor.data(), p.tensor.nbytes()});
    file.commit();
  } catch (const Error& e) {
    throw Error(std::string("safetensors: ") + e.what());
  }
}

}  // namespace ember
