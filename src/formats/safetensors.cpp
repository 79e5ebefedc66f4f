#include "ember/formats/safetensors.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "ember/core/atomic_file.hpp"

namespace ember {
namespace {

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

// Dtypes the reference knows that have no Ember element type.
bool is_reference_only_dtype(std::string_view code) {
  for (const char* known :
       {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"}) {
    if (code == known) return true;
  }
  return false;
}

// What the header parse produces: the tensors in header order, their names viewing the header
// text (or `unescaped`, for the rare name written with JSON escapes).
struct ParsedHeader {
  std::vector<SafeTensorInfo> tensors;
  SafeTensorsMetadata metadata;
  bool has_metadata = false;
  std::shared_ptr<std::string> unescaped;
};

// One pass over the header text that checks the JSON grammar (RFC 8259, as strict as serde_json:
// no comments, NaN, leading zeros or raw control characters; escapes and surrogate pairs checked)
// and the safetensors schema together, building only the tensor table. A misplaced value is
// refused where it is met, and unknown entry fields are checked for syntax and depth but not
// built. Nesting is tracked by counting, never by recursion, so no header can exhaust the stack.
// The messages are the ones Ember has always given for each fault.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source, uint64_t data_size)
      : begin_(text.data()),
        p_(text.data()),
        end_(text.data() + text.size()),
        source_(source),
        data_size_(data_size) {}

  ParsedHeader parse() {
    skip_ws();
    if (p_ == end_) syntax("empty header");
    if (*p_ != '{') refuse_value(0, "header is not a JSON object");
    ++p_;
    skip_ws();
    if (peek() == '}') {
      ++p_;
    } else {
      for (;;) {
        const std::string_view key = read_key();
        if (key == "__metadata__") {
          if (seen_metadata_) fail(source_, "duplicate key '__metadata__' in header");
          seen_metadata_ = true;
          parse_metadata();
        } else {
          parse_entry(key);
        }
        skip_ws();
        const char c = peek();
        if (c != '}' && c != ',') syntax("expected ',' or '}' after a header entry");
        ++p_;
        if (c == '}') break;
        skip_ws();
      }
    }
    skip_ws();
    if (p_ != end_) syntax("trailing characters after the header object");
    return std::move(out_);
  }

 private:
  static constexpr int kMaxDepth = kSafeTensorsMaxJsonDepth;

  [[noreturn]] void syntax(const std::string& what) const {
    fail(source_, "header is not valid JSON: " + what + " at byte " + std::to_string(p_ - begin_));
  }
  [[noreturn]] static void too_deep(const std::string& source) {
    fail(source, "header JSON nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  char peek() const { return p_ == end_ ? '\0' : *p_; }
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  void expect(char c, const char* what) {
    skip_ws();
    if (peek() != c) syntax(what);
    ++p_;
  }

  // A value of the wrong kind where the schema wants another: a container is refused at once (a
  // 99 MB array of `{}` is not walked), a scalar once its token is known to be valid JSON.
  void refuse_value(int open, const std::string& message) {
    const char c = peek();
    if (c != '{' && c != '[') skip_value(open);
    fail(source_, message);
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  uint32_t read_hex4() {
    if (end_ - p_ < 4) syntax("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int d = hex_digit(p_[i]);
      if (d < 0) syntax("invalid \\u escape");
      v = (v << 4) | static_cast<uint32_t>(d);
    }
    p_ += 4;
    return v;
  }
  // After a backslash: one escape, appended to `out` when it is not null.
  void read_escape(std::string* out) {
    if (p_ == end_) syntax("unterminated string");
    const char e = *p_++;
    char simple = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        simple = e;
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'u':
        break;
      default:
        syntax("invalid escape in string");
    }
    if (simple != 0) {
      if (out) out->push_back(simple);
      return;
    }
    uint32_t cp = read_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) syntax("lone low surrogate escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') syntax("lone high surrogate escape");
      p_ += 2;
      const uint32_t low = read_hex4();
      if (low < 0xDC00 || low > 0xDFFF) syntax("lone high surrogate escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out) append_utf8(*out, cp);
  }

  // At an opening quote. Returns the decoded text: a view of the header when the string has no
  // escapes (the common case), else a view of `unescaped`. With keep == false the string is only
  // checked.
  std::string_view read_string(bool keep) {
    ++p_;  // the opening quote
    const char* start = p_;
    while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
      ++p_;
    }
    if (p_ == end_) syntax("unterminated string");
    if (*p_ == '"') return {start, static_cast<size_t>(p_++ - start)};
    if (*p_ != '\\') syntax("raw control character in string");
    std::string* out = nullptr;
    size_t from = 0;
    if (keep) {
      // Decoded strings are never longer than their source and the sources are disjoint, so the
      // buffer reserved for the rest of the header never reallocates and earlier views stay valid.
      if (!out_.unescaped) {
        out_.unescaped = std::make_shared<std::string>();
        out_.unescaped->reserve(static_cast<size_t>(end_ - start));
      }
      out = out_.unescaped.get();
      from = out->size();
      out->append(start, p_);
    }
    for (;;) {
      if (p_ == end_) syntax("unterminated string");
      const char c = *p_;
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) syntax("raw control character in string");
      ++p_;
      if (c == '\\') {
        read_escape(out);
      } else if (out) {
        out->push_back(c);
      }
    }
    ++p_;
    if (!out) return {};
    return {out->data() + from, out->size() - from};
  }
  std::string_view read_key() {
    skip_ws();
    if (peek() != '"') syntax("expected a string key");
    const std::string_view key = read_string(true);
    expect(':', "expected ':' after a key");
    skip_ws();
    return key;
  }

  struct Number {
    bool is_index = false;  // a non-negative integer that fits 64 bits
    uint64_t value = 0;
  };
  // At '-' or a digit: one JSON number. serde's usize accepts only plain non-negative integers
  // that fit; "-0", "1.0" and "1e3" are valid JSON but not indices.
  Number read_number() {
    Number n;
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    const auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
    if (!digit()) syntax("invalid number");
    bool overflow = false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (digit()) {
        const auto d = static_cast<uint64_t>(*p_ - '0');
        overflow |= __builtin_mul_overflow(n.value, 10u, &n.value) ||
                    __builtin_add_overflow(n.value, d, &n.value);
        ++p_;
      }
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (!digit()) syntax("invalid number");
      while (digit()) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) syntax("invalid number");
      while (digit()) ++p_;
    }
    n.is_index = integer && !negative && !overflow;
    return n;
  }
  void read_literal() {
    for (const std::string_view word : {"true", "false", "null"}) {
      if (static_cast<size_t>(end_ - p_) >= word.size() &&
          std::string_view(p_, word.size()) == word) {
        p_ += word.size();
        return;
      }
    }
    syntax("unexpected character");
  }

  // Checks one value without building it; `open` containers enclose it. Iterative: the only
  // state is the kind of each open container, at most kMaxDepth of them.
  void skip_value(int open) {
    std::array<char, kMaxDepth> kinds{};
    int top = 0;
    for (;;) {
      skip_ws();
      const char c = peek();
      bool opened = false;
      if (c == '{' || c == '[') {
        if (open + top >= kMaxDepth) too_deep(source_);
        kinds[static_cast<size_t>(top++)] = c;
        ++p_;
        skip_ws();
        if (peek() == (c == '{' ? '}' : ']')) {
          ++p_;
          --top;
        } else {
          opened = true;
          if (c == '{') read_key();
        }
      } else if (c == '"') {
        read_string(false);
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        read_number();
      } else {
        read_literal();
      }
      if (opened) continue;  // its first value comes next
      // After a complete value: close containers until one continues with ','.
      for (;;) {
        if (top == 0) return;
        skip_ws();
        const char kind = kinds[static_cast<size_t>(top - 1)];
        const char next = peek();
        if (next == ',') {
          ++p_;
          if (kind == '{') read_key();
          break;
        }
        if (next != (kind == '{' ? '}' : ']')) syntax("expected ',' or a closing bracket");
        ++p_;
        --top;
      }
    }
  }

  void parse_metadata() {
    if (peek() == 'n') {  // the reference reads `null` as "no metadata"
      read_literal();
      return;
    }
    if (peek() != '{') refuse_value(1, "__metadata__ is not a JSON object of strings");
    ++p_;
    out_.has_metadata = true;
    skip_ws();
    if (peek() == '}') {
      ++p_;
      return;
    }
    for (;;) {
      const std::string_view key = read_key();
      if (peek() != '"') {
        refuse_value(2, "__metadata__: value of key " + quote_name(key) + " is not a string");
      }
      const std::string_view value = read_string(true);
      if (!out_.metadata.emplace(key, value).second) {
        fail(source_, "__metadata__: duplicate metadata key " + quote_name(key));
      }
      skip_ws();
      const char c = peek();
      if (c != '}' && c != ',') syntax("expected ',' or '}' in __metadata__");
      ++p_;
      if (c == '}') return;
    }
  }

  static std::string who(std::string_view name) { return "tensor " + quote_name(name) + ": "; }

  // An array of numbers that must be indices (shape, data_offsets), appended to `out`.
  template <class Sink>
  void read_index_array(std::string_view name, const char* field, Sink&& sink) {
    ++p_;  // '['
    skip_ws();
    if (peek() == ']') {
      ++p_;
      return;
    }
    const auto bad = [&] {
      return who(name) + "field '" + field + "' holds a value that is not a non-negative integer";
    };
    for (;;) {
      skip_ws();
      const char c = peek();
      if (c != '-' && (c < '0' || c > '9')) refuse_value(3, bad());
      const Number n = read_number();
      if (!n.is_index) fail(source_, bad());
      sink(n.value);
      skip_ws();
      const char next = peek();
      if (next != ']' && next != ',') syntax("expected ',' or ']' in an array");
      ++p_;
      if (next == ']') return;
    }
  }

  void parse_entry(std::string_view name) {
    if (peek() != '{') refuse_value(1, who(name) + "entry is not a JSON object");
    ++p_;
    SafeTensorInfo info;
    info.name = name;
    std::string_view dtype_code;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    // Folded left to right with overflow checks, as the reference does. Ember also needs the
    // product of the non-zero dims to fit int64 (row-major strides of an empty tensor such as
    // [0, 2^62, 4] would overflow), which the reference never computes.
    uint64_t numel = 1, nonzero_product = 1;
    bool numel_overflow = false, strides_overflow = false;
    size_t offsets_count = 0;
    unknown_fields_.clear();
    skip_ws();
    if (peek() == '}') {
      ++p_;
    } else {
      for (;;) {
        const std::string_view field = read_key();
        const auto once = [&](bool& seen) {
          if (seen) fail(source_, who(name) + "duplicate field " + quote_name(field));
          seen = true;
        };
        if (field == "dtype") {
          once(has_dtype);
          if (peek() != '"') refuse_value(2, who(name) + "field 'dtype' is not a string");
          dtype_code = read_string(true);
        } else if (field == "shape") {
          once(has_shape);
          if (peek() != '[') refuse_value(2, who(name) + "field 'shape' is not an array");
          read_index_array(name, "shape", [&](uint64_t dim) {
            numel_overflow |= __builtin_mul_overflow(numel, dim, &numel);
            strides_overflow |=
                (dim != 0 && __builtin_mul_overflow(nonzero_product, dim, &nonzero_product)) ||
                nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
            info.shape.push_back(static_cast<int64_t>(dim));
          });
        } else if (field == "data_offsets") {
          once(has_offsets);
          if (peek() != '[') {
            refuse_value(2, who(name) + "field 'data_offsets' is not an array of two integers");
          }
          read_index_array(name, "data_offsets", [&](uint64_t v) {
            if (offsets_count == 0) info.data_begin = v;
            if (offsets_count == 1) info.data_end = v;
            ++offsets_count;
          });
        } else {
          unknown_fields_.push_back(field);  // ignored, as the reference does
          skip_value(2);
        }
        skip_ws();
        const char c = peek();
        if (c != '}' && c != ',') syntax("expected ',' or '}' in a tensor entry");
        ++p_;
        if (c == '}') break;
      }
    }
    if (unknown_fields_.size() > 1) {
      std::sort(unknown_fields_.begin(), unknown_fields_.end());
      const auto dup = std::adjacent_find(unknown_fields_.begin(), unknown_fields_.end());
      if (dup != unknown_fields_.end()) {
        fail(source_, who(name) + "duplicate field " + quote_name(*dup));
      }
    }
    check_entry(info, dtype_code, has_dtype, has_shape, has_offsets);
    if (numel_overflow) {
      fail(source_, who(name) + "shape overflows: the element count does not fit 64 bits");
    }
    if (strides_overflow) {
      fail(source_, who(name) + "shape overflows: the product of its dims does not fit int64");
    }
    const auto expected_bytes = dtype_bytes(info.dtype, numel);
    if (!expected_bytes || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(source_, who(name) + "shape overflows: the byte size does not fit 64 bits");
    }
    if (offsets_count != 2) {
      fail(source_, who(name) + "field 'data_offsets' is not an array of two integers");
    }
    const uint64_t begin = info.data_begin, end = info.data_end;
    if (end < begin)
      fail(source_, who(name) + "data_offsets " + offsets_text(begin, end) + " reversed");
    if (end - begin != *expected_bytes) {
      fail(source_, who(name) + "byte length " + std::to_string(end - begin) + " of data_offsets " +
                        offsets_text(begin, end) + " does not match shape " +
                        shape_to_string(info.shape) + " of " + std::string(dtype_name(info.dtype)) +
                        " (" + std::to_string(*expected_bytes) + " bytes)");
    }
    if (end > data_size_) {
      fail(source_, who(name) + "data_offsets " + offsets_text(begin, end) +
                        " point past the end of the data buffer (" + std::to_string(data_size_) +
                        " bytes): file truncated?");
    }
    out_.tensors.push_back(std::move(info));
  }

  // The fields' presence and the dtype, in the order the reference reports them.
  void check_entry(SafeTensorInfo& info, std::string_view dtype_code, bool has_dtype,
                   bool has_shape, bool has_offsets) const {
    const std::string_view name = info.name;
    if (!has_dtype) fail(source_, who(name) + "missing field 'dtype'");
    if (!has_shape) fail(source_, who(name) + "missing field 'shape'");
    if (!has_offsets) fail(source_, who(name) + "missing field 'data_offsets'");
    const auto dtype = dtype_from_name(dtype_code);
    if (!dtype || is_quantized(*dtype)) {
      if (is_reference_only_dtype(dtype_code)) {
        fail(source_, who(name) + "dtype " + quote_name(dtype_code) + " is not supported by Ember");
      }
      fail(source_, who(name) + "unknown dtype " + quote_name(dtype_code));
    }
    info.dtype = *dtype;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const std::string& source_;
  uint64_t data_size_;
  bool seen_metadata_ = false;
  std::vector<std::string_view> unknown_fields_;  // reused from entry to entry
  ParsedHeader out_;
};

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

  SafeTensors st;
  st.bytes_ = bytes;
  st.keepalive_ = std::move(keepalive);
  st.header_size_ = n;
  ParsedHeader parsed = HeaderParser(text, source, bytes.size() - kLengthPrefix - n).parse();
  st.tensors_ = std::move(parsed.tensors);
  st.metadata_ = std::move(parsed.metadata);
  st.has_metadata_ = parsed.has_metadata;
  st.unescaped_ = std::move(parsed.unescaped);

  // The tensors must tile [0, data_size) exactly, in offset order. Writers lay them out in that
  // order, so the sort is usually skipped.
  const auto by_offset = [](const SafeTensorInfo& a, const SafeTensorInfo& b) {
    if (a.data_begin != b.data_begin) return a.data_begin < b.data_begin;
    if (a.data_end != b.data_end) return a.data_end < b.data_end;
    return a.name < b.name;
  };
  if (!std::is_sorted(st.tensors_.begin(), st.tensors_.end(), by_offset)) {
    std::sort(st.tensors_.begin(), st.tensors_.end(), by_offset);
  }
  st.build_index(source);
  const uint64_t data_size = bytes.size() - kLengthPrefix - n;
  uint64_t covered = 0;
  const SafeTensorInfo* previous = nullptr;
  for (const SafeTensorInfo& t : st.tensors_) {
    if (t.data_begin > covered) {
      const std::string where = offsets_text(t.data_begin, t.data_end);
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
      fail(source, "tensor " + quote_name(t.name) + ": data_offsets " +
                       offsets_text(t.data_begin, t.data_end) +
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
  return st;
}

// Open addressing over indices into tensors_ (slot value i + 1; 0 is empty), at most half full.
void SafeTensors::build_index(const std::string& source) {
  size_t capacity = 2;
  while (capacity < 2 * tensors_.size()) capacity *= 2;
  slots_.assign(capacity, 0);
  const size_t mask = capacity - 1;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const std::string_view name = tensors_[i].name;
    for (size_t s = std::hash<std::string_view>{}(name)&mask;; s = (s + 1) & mask) {
      if (slots_[s] == 0) {
        slots_[s] = static_cast<uint32_t>(i + 1);
        break;
      }
      if (tensors_[slots_[s] - 1].name == name) {
        fail(source, "duplicate tensor name " + quote_name(name) + " in header");
      }
    }
  }
}

const SafeTensorInfo* SafeTensors::find(std::string_view name) const {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t s = std::hash<std::string_view>{}(name)&mask;; s = (s + 1) & mask) {
    if (slots_[s] == 0) return nullptr;
    const SafeTensorInfo& t = tensors_[slots_[s] - 1];
    if (t.name == name) return &t;
  }
}

std::vector<std::string> SafeTensors::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.emplace_back(t.name);
  return out;
}

bool SafeTensors::contains(std::string_view name) const {
  return find(name) != nullptr;
}

const SafeTensorInfo& SafeTensors::info(std::string_view name) const {
  const SafeTensorInfo* t = find(name);
  if (t == nullptr) throw Error("safetensors: no tensor named " + quote_name(name));
  return *t;
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
  return Tensor::borrow(info.dtype, std::move(shape), p, nbytes, keepalive_, mapped_.get());
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
