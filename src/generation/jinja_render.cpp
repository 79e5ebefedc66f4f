// Renders a parsed template with Python's semantics for values (what jinja2 inherits), bounded
// by ChatTemplateLimits.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <unordered_map>

#include "ember/base/error.hpp"
#include "jinja.hpp"

namespace ember::generation::jinja {

const Value* find_key(const Dict& dict, std::string_view key) {
  for (const auto& [k, v] : dict) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

using Type = Value::Type;

// ---- UTF-8 and Python string helpers -----------------------------------------------------------

// Python indexes strings by code point; these are the byte offsets where each one starts.
std::vector<size_t> code_point_starts(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  return starts;
}

uint32_t decode_at(const std::string& s, size_t i, size_t& len) {
  const auto b = static_cast<unsigned char>(s[i]);
  len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  if (i + len > s.size()) {
    len = 1;
    return b;
  }
  uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

// str.isspace() of Python, which strip() and split() use.
bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto drop = [&](uint32_t cp, size_t at, size_t len) {
    if (!chars || chars->type == Type::None) return is_py_space(cp);
    return chars->s.find(s.substr(at, len)) != std::string::npos;
  };
  size_t begin = 0, end = s.size();
  while (left && begin < end) {
    size_t len;
    const uint32_t cp = decode_at(s, begin, len);
    if (!drop(cp, begin, len)) break;
    begin += len;
  }
  while (right && end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    const uint32_t cp = decode_at(s, start, len);
    if (!drop(cp, start, len)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// Case mapping is ASCII-only: other letters keep their case (a documented difference from
// Python's full Unicode tables; the templates apply it to roles and keywords).
char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string map_case(std::string s, char (*f)(char)) {
  for (char& c : s) c = f(c);
  return s;
}

std::string capitalize(const std::string& s) {
  std::string r = map_case(s, lower);
  if (!r.empty()) r[0] = upper(r[0]);
  return r;
}

// Python's str.title(): a letter after a non-letter is upper case, the others lower.
std::string py_title(const std::string& s) {
  std::string r = s;
  bool prev_letter = false;
  for (char& c : r) {
    c = prev_letter ? lower(c) : upper(c);
    prev_letter = is_alpha(c) || (static_cast<unsigned char>(c) >= 0x80);
  }
  return r;
}

// jinja2's title filter: words start after whitespace, '-', and opening brackets.
std::string jinja_title(const std::string& s) {
  std::string r = s;
  bool start = true;
  for (char& c : r) {
    const bool sep = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
                     c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      start = true;
    } else {
      c = start ? upper(c) : lower(c);
      start = false;
    }
  }
  return r;
}

std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Python's repr: the shortest round-trip digits, fixed notation for exponents in [-4, 16).
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  const int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (std::isdigit(static_cast<unsigned char>(sci[i]))) digits += sci[i];
  }
  const std::string sign = v < 0 ? "-" : "";
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
            digits.substr(static_cast<size_t>(exp) + 1);
    }
    return sign + out;
  }
  std::string mantissa = digits.substr(0, 1);
  if (digits.size() > 1) mantissa += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return sign + mantissa + exp_buf;
}

std::string py_repr_string(const std::string& s) {
  const char quote =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + quote;
}

std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 && ensure_ascii) {
      size_t len;
      uint32_t cp = decode_at(s, i, len);
      i += len;
      char buf[16];
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
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
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20 || (u == 0x7F && ensure_ascii)) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// ---- The renderer -----------------------------------------------------------------------------

class Renderer {
 public:
  Renderer(const Template& tmpl, const ChatTemplateLimits& limits) : tmpl_(tmpl), limits_(limits) {}
  // A namespace can hold itself (set ns.me = ns); emptying them breaks such cycles.
  ~Renderer() {
    for (const auto& dict : namespaces_) dict->clear();
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  std::string run(const nlohmann::ordered_json& variables) {
    if (!variables.is_object()) throw Error("chat template: variables must be a JSON object");
    for (const char* name : {"raise_exception", "namespace", "range", "dict", "strftime_now"}) {
      globals_[name] = Value::function(name);
    }
    for (const auto& [key, value] : variables.items()) globals_[key] = from_json(value, 0);
    scopes_.emplace_back();
    std::string out;
    render_body(tmpl_.body, out);
    return out;
  }

 private:
  enum class Signal : uint8_t { None, Break, Continue };

  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < tmpl_.source.size(); ++i) {
      if (tmpl_.source[i] == '\n') {
        line = line + 1;
        column = 1;
      } else if ((static_cast<unsigned char>(tmpl_.source[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    throw Error("chat template line " + std::to_string(line) + ", column " +
                std::to_string(column) + ": " + what);
  }

  const Value& bounded(const Value& v, size_t offset) const {
    if (v.depth > limits_.max_depth) {
      fail(offset, "values nest deeper than " + std::to_string(limits_.max_depth));
    }
    return v;
  }
  Value bounded(Value&& v, size_t offset) const {
    bounded(static_cast<const Value&>(v), offset);
    return std::move(v);
  }

  void step(size_t offset, int64_t n = 1) {
    steps_ += n;
    if (steps_ > limits_.max_steps) {
      fail(offset,
           "more than " + std::to_string(limits_.max_steps) + " steps (loop iterations and calls)");
    }
  }
  // Every string and list built counts its size, so repeated copying is bounded too.
  void charge(size_t offset, size_t bytes) {
    if (bytes > limits_.max_output_bytes) {
      fail(offset, "a value of more than " + std::to_string(limits_.max_output_bytes) + " bytes");
    }
    work_ += bytes;
    if (work_ > limits_.max_output_bytes * 64) fail(offset, "too much text built");
  }

  Value from_json(const nlohmann::ordered_json& j, int depth) {
    if (depth > limits_.max_depth) throw Error("chat template: variables nest too deeply");
    switch (j.type()) {
      case nlohmann::ordered_json::value_t::null:
        return Value::none();
      case nlohmann::ordered_json::value_t::boolean:
        return Value::boolean(j.get<bool>());
      case nlohmann::ordered_json::value_t::number_integer:
        return Value::integer(j.get<int64_t>());
      case nlohmann::ordered_json::value_t::number_unsigned: {
        const auto u = j.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return Value::real(static_cast<double>(u));
        return Value::integer(static_cast<int64_t>(u));
      }
      case nlohmann::ordered_json::value_t::number_float:
        return Value::real(j.get<double>());
      case nlohmann::ordered_json::value_t::string:
        return Value::string(j.get<std::string>());
      case nlohmann::ordered_json::value_t::array: {
        List items;
        for (const auto& e : j) items.push_back(from_json(e, depth + 1));
        return Value::make_list(std::move(items));
      }
      case nlohmann::ordered_json::value_t::object: {
        Dict items;
        for (const auto& [k, v] : j.items()) items.emplace_back(k, from_json(v, depth + 1));
        return Value::make_dict(std::move(items));
      }
      default:
        throw Error("chat template: unsupported value in variables");
    }
  }

  // ---- Python semantics ----

  static bool truthy(const Value& v) {
    switch (v.type) {
      case Type::Undefined:
      case Type::None:
        return false;
      case Type::Bool:
        return v.b;
      case Type::Int:
        return v.i != 0;
      case Type::Float:
        return v.f != 0;
      case Type::String:
        return !v.s.empty();
      case Type::List:
        return !v.list->empty();
      case Type::Dict:
        return !v.dict->empty();
      default:
        return true;
    }
  }

  static bool is_number(const Value& v) {
    return v.type == Type::Int || v.type == Type::Float || v.type == Type::Bool;
  }
  static int64_t as_int(const Value& v) { return v.type == Type::Bool ? (v.b ? 1 : 0) : v.i; }
  static double as_double(const Value& v) {
    return v.type == Type::Float ? v.f : static_cast<double>(as_int(v));
  }

  static std::string type_name(const Value& v) {
    switch (v.type) {
      case Type::Undefined:
        return "undefined";
      case Type::None:
        return "NoneType";
      case Type::Bool:
        return "bool";
      case Type::Int:
        return "int";
      case Type::Float:
        return "float";
      case Type::String:
        return "str";
      case Type::List:
        return "list";
      case Type::Dict:
        return "dict";
      case Type::Namespace:
        return "Namespace";
      case Type::Function:
        return "function";
    }
    return "?";
  }

  void require_defined(const Value& v, size_t offset) const {
    if (v.type == Type::Undefined) fail(offset, "'" + v.s + "' is undefined");
  }

  static bool equal(const Value& a, const Value& b) {
    if (is_number(a) && is_number(b)) {
      if (a.type == Type::Float || b.type == Type::Float) return as_double(a) == as_double(b);
      return as_int(a) == as_int(b);
    }
    if (a.type != b.type) return false;
    switch (a.type) {
      case Type::Undefined:
      case Type::None:
        return true;
      case Type::String:
      case Type::Function:
        return a.s == b.s;
      case Type::List:
        if (a.list->size() != b.list->size()) return false;
        for (size_t i = 0; i < a.list->size(); ++i) {
          if (!equal((*a.list)[i], (*b.list)[i])) return false;
        }
        return true;
      case Type::Dict:
        if (a.dict->size() != b.dict->size()) return false;
        for (const auto& [k, v] : *a.dict) {
          const Value* other = find_key(*b.dict, k);
          if (!other || !equal(v, *other)) return false;
        }
        return true;
      default:
        return a.dict == b.dict;
    }
  }

  // -1, 0, 1 as Python's <, or an error for types it does not order.
  int order(const Value& a, const Value& b, size_t offset) const {
    if (is_number(a) && is_number(b)) {
      if (a.type == Type::Float || b.type == Type::Float) {
        const double x = as_double(a), y = as_double(b);
        return x < y ? -1 : x > y ? 1 : 0;
      }
      return as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b) ? 1 : 0;
    }
    if (a.type == Type::String && b.type == Type::String) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    if (a.type == Type::List && b.type == Type::List) {
      for (size_t i = 0; i < a.list->size() && i < b.list->size(); ++i) {
        if (const int c = order((*a.list)[i], (*b.list)[i], offset); c != 0) return c;
      }
      return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
    }
    fail(offset, "cannot compare " + type_name(a) + " and " + type_name(b));
  }

  std::string to_str(const Value& v) const {
    switch (v.type) {
      case Type::Undefined:
        return "";
      case Type::None:
        return "None";
      case Type::Bool:
        return v.b ? "True" : "False";
      case Type::Int:
        return std::to_string(v.i);
      case Type::Float:
        return format_float(v.f);
      case Type::String:
        return v.s;
      default:
        return repr(v);
    }
  }

  std::string repr(const Value& v) const {
    switch (v.type) {
      case Type::String:
        return py_repr_string(v.s);
      case Type::List: {
        std::string out = v.b ? "(" : "[";
        for (size_t i = 0; i < v.list->size(); ++i) out += (i ? ", " : "") + repr((*v.list)[i]);
        if (v.b && v.list->size() == 1) out += ",";
        return out + (v.b ? ")" : "]");
      }
      case Type::Dict: {
        std::string out = "{";
        bool first = true;
        for (const auto& [k, e] : *v.dict) {
          out += (first ? "" : ", ") + py_repr_string(k) + ": " + repr(e);
          first = false;
        }
        return out + "}";
      }
      case Type::Namespace:
        return "<Namespace>";
      case Type::Function:
        return "<function " + v.s + ">";
      default:
        return to_str(v);
    }
  }

  struct JsonStyle {
    int indent = -1;  // -1: one line
    std::string item_sep = ", ", key_sep = ": ", indent_unit;
    bool sort_keys = false, ensure_ascii = false;
  };

  void to_json(const Value& v, const JsonStyle& style, int level, std::string& out,
               size_t offset) const {
    if (out.size() > limits_.max_output_bytes) fail(offset, "tojson output too large");
    if (level > limits_.max_depth) fail(offset, "tojson: value nests too deeply");
    const auto newline = [&](int l) {
      if (style.indent < 0) return;
      out += '\n';
      for (int k = 0; k < l; ++k) out += style.indent_unit;
    };
    switch (v.type) {
      case Type::None:
        out += "null";
        return;
      case Type::Bool:
        out += v.b ? "true" : "false";
        return;
      case Type::Int:
        out += std::to_string(v.i);
        return;
      case Type::Float:
        out += std::isnan(v.f)   ? "NaN"
               : std::isinf(v.f) ? (v.f < 0 ? "-Infinity" : "Infinity")
                                 : format_float(v.f);
        return;
      case Type::String:
        out += json_string(v.s, style.ensure_ascii);
        return;
      case Type::List: {
        if (v.list->empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < v.list->size(); ++i) {
          if (i) out += style.item_sep;
          newline(level + 1);
          to_json((*v.list)[i], style, level + 1, out, offset);
        }
        newline(level);
        out += ']';
        return;
      }
      case Type::Dict: {
        if (v.dict->empty()) {
          out += "{}";
          return;
        }
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& item : *v.dict) items.push_back(&item);
        if (style.sort_keys) {
          std::stable_sort(items.begin(), items.end(),
                           [](auto* a, auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += style.item_sep;
          newline(level + 1);
          out += json_string(items[i]->first, style.ensure_ascii) + style.key_sep;
          to_json(items[i]->second, style, level + 1, out, offset);
        }
        newline(level);
        out += '}';
        return;
      }
      default:
        fail(offset, "tojson: a " + type_name(v) + " is not JSON serializable");
    }
  }

  // ---- Scopes ----

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      if (const auto found = it->find(name); found != it->end()) return found->second;
    }
    if (const auto found = globals_.find(name); found != globals_.end()) return found->second;
    return Value::undefined(name);
  }

  // ---- Expressions ----

  struct Args {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> named;
    const Value* get(size_t index, const char* name) const {
      if (index < positional.size()) return &positional[index];
      for (const auto& [k, v] : named) {
        if (k == name) return &v;
      }
      return nullptr;
    }
  };

  Args eval_args(const Expr& e) {
    Args args;
    for (size_t k = 1; k < e.args.size(); ++k) {
      Value v = eval(*e.args[k]);
      if (e.kwargs[k].empty()) {
        args.positional.push_back(std::move(v));
      } else {
        args.named.emplace_back(e.kwargs[k], std::move(v));
      }
    }
    return args;
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal:
        return e.value;
      case Expr::Kind::Name:
        return lookup(e.name);
      case Expr::Kind::Attr:
        return attribute(eval(*e.args[0]), e.name, e.offset);
      case Expr::Kind::Item:
        return item(eval(*e.args[0]), eval(*e.args[1]), e.offset);
      case Expr::Kind::Slice:
        return slice(e);
      case Expr::Kind::Call:
        return call(e);
      case Expr::Kind::Filter: {
        Value operand = eval(*e.args[0]);
        return filter(e.name, operand, eval_args(e), e.offset);
      }
      case Expr::Kind::Test: {
        Value operand = eval(*e.args[0]);
        return Value::boolean(test(e.name, operand, eval_args(e), e.offset) != e.negate);
      }
      case Expr::Kind::Not:
        return Value::boolean(!truthy(eval(*e.args[0])));
      case Expr::Kind::Neg: {
        const Value v = eval(*e.args[0]);
        if (v.type == Type::Float) return Value::real(-v.f);
        if (!is_number(v)) fail(e.offset, "bad operand type for unary -: " + type_name(v));
        if (as_int(v) == INT64_MIN) fail(e.offset, "integer overflow");
        return Value::integer(-as_int(v));
      }
      case Expr::Kind::And: {
        Value left = eval(*e.args[0]);
        return truthy(left) ? eval(*e.args[1]) : left;
      }
      case Expr::Kind::Or: {
        Value left = eval(*e.args[0]);
        return truthy(left) ? left : eval(*e.args[1]);
      }
      case Expr::Kind::Cond:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("");
      case Expr::Kind::Binary:
        return binary(e);
      case Expr::Kind::ListLit: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        Value list = bounded(Value::make_list(std::move(items)), e.offset);
        list.b = e.negate;  // a tuple prints as one
        return list;
      }
      case Expr::Kind::DictLit: {
        Dict items;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k]);
          if (key.type != Type::String) fail(e.args[k]->offset, "dict keys must be strings");
          set_key(items, key.s, eval(*e.args[k + 1]));
        }
        return bounded(Value::make_dict(std::move(items)), e.offset);
      }
    }
    fail(e.offset, "bad expression");
  }

  static void set_key(Dict& dict, const std::string& key, Value value) {
    for (auto& [k, v] : dict) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
    dict.emplace_back(key, std::move(value));
  }

  Value attribute(const Value& obj, const std::string& name, size_t offset) const {
    require_defined(obj, offset);
    if (obj.type == Type::Dict || obj.type == Type::Namespace) {
      if (const Value* v = find_key(*obj.dict, name)) return *v;
    }
    return Value::undefined(name);
  }

  Value item(const Value& obj, const Value& key, size_t offset) const {
    require_defined(obj, offset);
    if ((obj.type == Type::Dict || obj.type == Type::Namespace) && key.type == Type::String) {
      if (const Value* v = find_key(*obj.dict, key.s)) return *v;
      return Value::undefined(key.s);
    }
    if ((obj.type == Type::List || obj.type == Type::String) &&
        (key.type == Type::Int || key.type == Type::Bool)) {
      int64_t i = as_int(key);
      if (obj.type == Type::List) {
        const auto n = static_cast<int64_t>(obj.list->size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined(to_str(key));
        return (*obj.list)[static_cast<size_t>(i)];
      }
      const auto starts = code_point_starts(obj.s);
      const auto n = static_cast<int64_t>(starts.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined(to_str(key));
      const size_t at = starts[static_cast<size_t>(i)];
      const size_t end = static_cast<size_t>(i + 1) < starts.size()
                             ? starts[static_cast<size_t>(i + 1)]
                             : obj.s.size();
      return Value::string(obj.s.substr(at, end - at));
    }
    return Value::undefined(to_str(key));
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    require_defined(obj, e.offset);
    int64_t bound[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[static_cast<size_t>(k) + 1]) continue;
      const Value v = eval(*e.args[static_cast<size_t>(k) + 1]);
      if (v.type == Type::None) continue;
      if (v.type != Type::Int && v.type != Type::Bool)
        fail(e.offset, "slice indices must be integers");
      bound[k] = as_int(v);
      given[k] = true;
    }
    const int64_t stride = bound[2];
    if (stride == 0) fail(e.offset, "slice step cannot be zero");
    std::vector<size_t> starts;
    int64_t n;
    if (obj.type == Type::List) {
      n = static_cast<int64_t>(obj.list->size());
    } else if (obj.type == Type::String) {
      starts = code_point_starts(obj.s);
      n = static_cast<int64_t>(starts.size());
    } else {
      fail(e.offset, "cannot slice a " + type_name(obj));
    }
    // Python's slice.indices().
    const auto adjust = [&](int64_t v, bool is_given, int64_t fallback) {
      if (!is_given) return fallback;
      if (v < 0) v += n;
      if (stride > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = adjust(bound[0], given[0], stride > 0 ? 0 : n - 1);
    const int64_t stop = adjust(bound[1], given[1], stride > 0 ? n : -1);
    std::vector<int64_t> picks;
    for (int64_t i = start; stride > 0 ? i < stop : i > stop;) {
      picks.push_back(i);
      if (__builtin_add_overflow(i, stride, &i)) break;  // a huge step leaves the range
    }
    charge(e.offset, picks.size());
    if (obj.type == Type::List) {
      List items;
      for (const int64_t i : picks) items.push_back((*obj.list)[static_cast<size_t>(i)]);
      return Value::make_list(std::move(items));
    }
    std::string out;
    for (const int64_t i : picks) {
      const auto u = static_cast<size_t>(i);
      const size_t end = u + 1 < starts.size() ? starts[u + 1] : obj.s.size();
      out += obj.s.substr(starts[u], end - starts[u]);
    }
    return Value::string(std::move(out));
  }

  bool contains(const Value& container, const Value& needle, size_t offset) const {
    switch (container.type) {
      case Type::String:
        if (needle.type != Type::String)
          fail(offset, "'in <string>' requires a string on the left");
        return container.s.find(needle.s) != std::string::npos;
      case Type::List:
        return std::any_of(container.list->begin(), container.list->end(),
                           [&](const Value& v) { return equal(v, needle); });
      case Type::Dict:
        return needle.type == Type::String && find_key(*container.dict, needle.s) != nullptr;
      default:
        require_defined(container, offset);
        fail(offset, "a " + type_name(container) + " is not a container");
    }
  }

  // A string or list repeated, as Python's `*` (either operand order).
  Value repeat(const Value& a, const Value& b, size_t at) {
    const int64_t times = std::max<int64_t>(0, as_int(b));
    const size_t unit = a.type == Type::String ? a.s.size() : a.list->size() * sizeof(Value);
    if (unit == 0) return a.type == Type::String ? Value::string("") : Value::make_list({});
    if (static_cast<uint64_t>(times) > limits_.max_output_bytes / unit) {
      fail(at, "a value of more than " + std::to_string(limits_.max_output_bytes) + " bytes");
    }
    charge(at, unit * static_cast<size_t>(times));
    if (a.type == Type::String) {
      std::string s;
      for (int64_t k = 0; k < times; ++k) s += a.s;
      return Value::string(std::move(s));
    }
    List items;
    for (int64_t k = 0; k < times; ++k) items.insert(items.end(), a.list->begin(), a.list->end());
    return Value::make_list(std::move(items));
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    const size_t at = e.offset;
    if (op == "==") return Value::boolean(equal(a, b));
    if (op == "!=") return Value::boolean(!equal(a, b));
    if (op == "<") return Value::boolean(order(a, b, at) < 0);
    if (op == ">") return Value::boolean(order(a, b, at) > 0);
    if (op == "<=") return Value::boolean(order(a, b, at) <= 0);
    if (op == ">=") return Value::boolean(order(a, b, at) >= 0);
    if (op == "in") return Value::boolean(contains(b, a, at));
    if (op == "not in") return Value::boolean(!contains(b, a, at));
    if (op == "~") {
      std::string s = to_str(a) + to_str(b);
      charge(at, s.size());
      return Value::string(std::move(s));
    }
    if (op == "+" && a.type == Type::String && b.type == Type::String) {
      charge(at, a.s.size() + b.s.size());
      return Value::string(a.s + b.s);
    }
    if (op == "+" && a.type == Type::List && b.type == Type::List) {
      charge(at, (a.list->size() + b.list->size()) * sizeof(Value));
      List items = *a.list;
      items.insert(items.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(items));
    }
    const bool seq_a = a.type == Type::String || a.type == Type::List;
    const bool seq_b = b.type == Type::String || b.type == Type::List;
    const bool int_a = a.type == Type::Int || a.type == Type::Bool;
    const bool int_b = b.type == Type::Int || b.type == Type::Bool;
    if (op == "*" && seq_a && int_b) return repeat(a, b, at);
    if (op == "*" && seq_b && int_a) return repeat(b, a, at);
    if (!is_number(a) || !is_number(b)) {
      require_defined(a, at);
      require_defined(b, at);
      fail(at,
           "unsupported operand types for " + op + ": " + type_name(a) + " and " + type_name(b));
    }
    const bool real = a.type == Type::Float || b.type == Type::Float;
    if (op == "/") {
      if (as_double(b) == 0) fail(at, "division by zero");
      return Value::real(as_double(a) / as_double(b));
    }
    if (real) {
      const double x = as_double(a), y = as_double(b);
      if (op == "+") return Value::real(x + y);
      if (op == "-") return Value::real(x - y);
      if (op == "*") return Value::real(x * y);
      if (op == "**") return Value::real(std::pow(x, y));
      if (y == 0) fail(at, "division by zero");
      const double q = std::floor(x / y);
      if (op == "//") return Value::real(q);
      return Value::real(x - q * y);  // %, with the divisor's sign as in Python
    }
    const int64_t x = as_int(a), y = as_int(b);
    int64_t r = 0;
    bool overflow = false;
    if (op == "+") {
      overflow = __builtin_add_overflow(x, y, &r);
    } else if (op == "-") {
      overflow = __builtin_sub_overflow(x, y, &r);
    } else if (op == "*") {
      overflow = __builtin_mul_overflow(x, y, &r);
    } else if (op == "**") {
      if (y < 0) return Value::real(std::pow(static_cast<double>(x), static_cast<double>(y)));
      // By squaring: for |x| >= 2 a squared base that overflows means the result does too.
      r = 1;
      int64_t base = x;
      for (int64_t e = y; e > 0 && !overflow; e >>= 1) {
        if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
        if (e > 1 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
      }
    } else {
      if (y == 0) fail(at, "division by zero");
      if (x == INT64_MIN && y == -1) fail(at, "integer overflow");
      // Floor division and a remainder with the divisor's sign, as Python.
      const bool adjust = x % y != 0 && ((x < 0) != (y < 0));
      r = op == "//" ? x / y - (adjust ? 1 : 0) : x % y + (adjust ? y : 0);
    }
    if (overflow) fail(at, "integer overflow");
    return Value::integer(r);
  }

  std::vector<Value> iterate(const Value& v, size_t offset) const {
    switch (v.type) {
      case Type::Undefined:
        return {};  // jinja2 iterates an undefined as empty
      case Type::List:
        return *v.list;
      case Type::Dict: {
        std::vector<Value> keys;
        for (const auto& [k, e] : *v.dict) keys.push_back(Value::string(k));
        return keys;
      }
      case Type::String: {
        std::vector<Value> chars;
        const auto starts = code_point_starts(v.s);
        for (size_t k = 0; k < starts.size(); ++k) {
          const size_t end = k + 1 < starts.size() ? starts[k + 1] : v.s.size();
          chars.push_back(Value::string(v.s.substr(starts[k], end - starts[k])));
        }
        return chars;
      }
      default:
        fail(offset, "a " + type_name(v) + " is not iterable");
    }
  }

  static Value dict_items(const Dict& d) {
    List items;
    for (const auto& [k, v] : d) items.push_back(Value::make_list({Value::string(k), v}));
    return Value::make_list(std::move(items));
  }

  void arity(const Args& args, size_t most, const std::string& what, size_t offset) const {
    if (args.positional.size() + args.named.size() > most)
      fail(offset, what + ": too many arguments");
  }

  const Value& string_arg(const Args& args, size_t index, const char* name, const std::string& what,
                          size_t offset) const {
    const Value* v = args.get(index, name);
    if (!v || v->type != Type::String) fail(offset, what + ": expected a string argument");
    return *v;
  }

  Value call(const Expr& e) {
    step(e.offset);
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::Kind::Attr) {
      const Value obj = eval(*callee.args[0]);
      require_defined(obj, callee.offset);
      Args args = eval_args(e);
      if (obj.type == Type::String) return string_method(obj.s, callee.name, args, e.offset);
      if (obj.type == Type::Dict) return dict_method(*obj.dict, callee.name, args, e.offset);
      fail(e.offset, "'" + type_name(obj) + "' has no method '" + callee.name + "'");
    }
    const Value f = eval(callee);
    if (f.type != Type::Function) {
      require_defined(f, callee.offset);
      fail(e.offset, "a " + type_name(f) + " is not callable");
    }
    Args args = eval_args(e);
    if (f.s == "raise_exception") {
      const Value* message = args.get(0, "message");
      throw Error("chat template: " + (message ? to_str(*message) : std::string()));
    }
    if (f.s == "namespace" || f.s == "dict") {
      Dict items;
      for (const Value& p : args.positional) {
        if (p.type != Type::Dict) fail(e.offset, f.s + "() takes only keyword arguments or a dict");
        for (const auto& [k, v] : *p.dict) set_key(items, k, v);
      }
      for (auto& [k, v] : args.named) set_key(items, k, v);
      Value made = bounded(
          Value::make_dict(std::move(items), f.s == "namespace" ? Type::Namespace : Type::Dict),
          e.offset);
      if (made.type == Type::Namespace) namespaces_.push_back(made.dict);
      return made;
    }
    if (f.s == "range") {
      int64_t b[3] = {0, 0, 1};
      const size_t n = args.positional.size();
      if (n < 1 || n > 3 || !args.named.empty()) fail(e.offset, "range() takes 1 to 3 integers");
      for (size_t k = 0; k < n; ++k) {
        if (args.positional[k].type != Type::Int) fail(e.offset, "range() takes integers");
      }
      if (n == 1) {
        b[1] = args.positional[0].i;
      } else {
        b[0] = args.positional[0].i;
        b[1] = args.positional[1].i;
        if (n == 3) b[2] = args.positional[2].i;
      }
      if (b[2] == 0) fail(e.offset, "range() step must not be zero");
      List items;
      for (int64_t i = b[0]; b[2] > 0 ? i < b[1] : i > b[1]; i += b[2]) {
        step(e.offset);
        items.push_back(Value::integer(i));
        if (__builtin_add_overflow(i, b[2], &i)) break;
        i -= b[2];
      }
      return Value::make_list(std::move(items));
    }
    // strftime_now(format): the local time, as transformers provides it.
    const Value& format = string_arg(args, 0, "format", "strftime_now", e.offset);
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    const size_t len = std::strftime(buf, sizeof buf, format.s.c_str(), &local);
    return Value::string(std::string(buf, len));
  }

  Value string_method(const std::string& s, const std::string& name, const Args& args,
                      size_t offset) {
    charge(offset, s.size());
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      arity(args, 1, name, offset);
      return Value::string(strip(s, args.get(0, "chars"), name != "rstrip", name != "lstrip"));
    }
    if (name == "upper") return Value::string(map_case(s, upper));
    if (name == "lower") return Value::string(map_case(s, lower));
    if (name == "title") return Value::string(py_title(s));
    if (name == "capitalize") return Value::string(capitalize(s));
    if (name == "startswith" || name == "endswith") {
      const Value* p = args.get(0, "prefix");
      if (!p) fail(offset, name + ": missing argument");
      std::vector<Value> options = p->type == Type::List ? *p->list : std::vector<Value>{*p};
      for (const Value& o : options) {
        if (o.type != Type::String) fail(offset, name + ": expected strings");
        const bool hit =
            name == "startswith"
                ? s.compare(0, o.s.size(), o.s) == 0
                : s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
        if (hit) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "split") {
      const Value* sep = args.get(0, "sep");
      const Value* max = args.get(1, "maxsplit");
      int64_t left = max && max->type == Type::Int && max->i >= 0 ? max->i : INT64_MAX;
      List parts;
      if (!sep || sep->type == Type::None) {
        // Runs of whitespace separate; none at the ends.
        size_t i = 0;
        while (i < s.size()) {
          size_t len;
          while (i < s.size() && is_py_space(decode_at(s, i, len))) i += len;
          if (i >= s.size()) break;
          if (left-- == 0) {
            parts.push_back(Value::string(strip(s.substr(i), nullptr, false, true)));
            break;
          }
          size_t j = i;
          while (j < s.size() && !is_py_space(decode_at(s, j, len))) j += len;
          parts.push_back(Value::string(s.substr(i, j - i)));
          i = j;
        }
        return Value::make_list(std::move(parts));
      }
      if (sep->type != Type::String || sep->s.empty()) fail(offset, "split: empty separator");
      size_t from = 0;
      while (true) {
        const size_t at = left-- > 0 ? s.find(sep->s, from) : std::string::npos;
        if (at == std::string::npos) break;
        parts.push_back(Value::string(s.substr(from, at - from)));
        from = at + sep->s.size();
      }
      parts.push_back(Value::string(s.substr(from)));
      return Value::make_list(std::move(parts));
    }
    if (name == "replace") {
      const Value& old_s = string_arg(args, 0, "old", name, offset);
      const Value& new_s = string_arg(args, 1, "new", name, offset);
      const Value* count = args.get(2, "count");
      return Value::string(
          replace(s, old_s.s, new_s.s, count && count->type == Type::Int ? count->i : -1, offset));
    }
    if (name == "find") {
      const Value& sub = string_arg(args, 0, "sub", name, offset);
      const size_t at = s.find(sub.s);
      if (at == std::string::npos) return Value::integer(-1);
      return Value::integer(static_cast<int64_t>(code_point_starts(s.substr(0, at)).size()));
    }
    if (name == "join") {
      const Value* items = args.get(0, "iterable");
      if (!items) fail(offset, "join: missing argument");
      return join(iterate(*items, offset), s, offset);
    }
    fail(offset, "str has no method '" + name + "'");
  }

  std::string replace(const std::string& s, const std::string& from, const std::string& to,
                      int64_t count, size_t offset) {
    std::string out;
    size_t pos = 0;
    if (from.empty()) {
      // Python inserts `to` around every code point.
      const auto starts = code_point_starts(s);
      for (size_t k = 0; k <= starts.size(); ++k) {
        if (count >= 0 && static_cast<int64_t>(k) >= count) {
          out += s.substr(k < starts.size() ? starts[k] : s.size());
          break;
        }
        out += to;
        if (k < starts.size()) {
          const size_t end = k + 1 < starts.size() ? starts[k + 1] : s.size();
          out += s.substr(starts[k], end - starts[k]);
        }
        charge(offset, to.size());
      }
      return out;
    }
    while (count != 0) {
      const size_t at = s.find(from, pos);
      if (at == std::string::npos) break;
      out.append(s, pos, at - pos);
      out += to;
      charge(offset, to.size() + at - pos);
      pos = at + from.size();
      if (count > 0) --count;
    }
    out.append(s, pos, std::string::npos);
    return out;
  }

  Value dict_method(const Dict& d, const std::string& name, const Args& args, size_t offset) {
    step(offset, static_cast<int64_t>(d.size()));
    if (name == "items") return dict_items(d);
    if (name == "keys" || name == "values") {
      List items;
      for (const auto& [k, v] : d) items.push_back(name == "keys" ? Value::string(k) : v);
      return Value::make_list(std::move(items));
    }
    if (name == "get") {
      const Value* key = args.get(0, "key");
      if (!key) fail(offset, "get: missing argument");
      if (key->type == Type::String) {
        if (const Value* v = find_key(d, key->s)) return *v;
      }
      const Value* fallback = args.get(1, "default");
      return fallback ? *fallback : Value::none();
    }
    fail(offset, "dict has no method '" + name + "'");
  }

  Value join(const std::vector<Value>& items, const std::string& sep, size_t offset) {
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += sep;
      out += to_str(items[k]);
      charge(offset, out.size() > 0 ? sep.size() + to_str(items[k]).size() : 0);
    }
    return Value::string(std::move(out));
  }

  Value filter(const std::string& name, const Value& v, const Args& args, size_t offset) {
    step(offset);
    if (name == "default" || name == "d") {
      const Value* fallback = args.get(0, "default_value");
      const Value* boolean = args.get(1, "boolean");
      const bool use = v.type == Type::Undefined || (boolean && truthy(*boolean) && !truthy(v));
      return use ? (fallback ? *fallback : Value::string("")) : v;
    }
    if (name == "length" || name == "count") {
      switch (v.type) {
        case Type::Undefined:
          return Value::integer(0);
        case Type::String:
          return Value::integer(static_cast<int64_t>(code_point_starts(v.s).size()));
        case Type::List:
          return Value::integer(static_cast<int64_t>(v.list->size()));
        case Type::Dict:
        case Type::Namespace:
          return Value::integer(static_cast<int64_t>(v.dict->size()));
        default:
          fail(offset, "length: a " + type_name(v) + " has no length");
      }
    }
    if (name == "tojson") return Value::string(tojson(v, args, offset));
    if (name == "safe" || name == "e" || name == "escape") {
      // Autoescaping is off in transformers' environment, so escape would change text: refuse it.
      if (name != "safe") fail(offset, "filter '" + name + "' is not supported");
      return v;
    }
    if (name == "list") return Value::make_list(iterate(v, offset));
    if (name == "first" || name == "last") {
      const std::vector<Value> items = iterate(v, offset);
      if (items.empty()) return Value::undefined(name);
      return name == "first" ? items.front() : items.back();
    }
    if (name == "reverse") {
      if (v.type == Type::String) {
        std::vector<Value> chars = iterate(v, offset);
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->s;
        return Value::string(std::move(out));
      }
      std::vector<Value> items = iterate(v, offset);
      std::reverse(items.begin(), items.end());
      return Value::make_list(std::move(items));
    }
    if (name == "items") {
      if (v.type == Type::Undefined) return Value::make_list({});
      if (v.type != Type::Dict) fail(offset, "items: expected a mapping");
      return dict_items(*v.dict);
    }
    if (name == "join") {
      const Value* sep = args.get(0, "d");
      const Value* attr = args.get(1, "attribute");
      std::vector<Value> items = iterate(v, offset);
      if (attr) {
        for (Value& item : items) item = attribute(item, to_str(*attr), offset);
      }
      return join(items, sep ? to_str(*sep) : std::string(), offset);
    }
    if (name == "selectattr" || name == "rejectattr") {
      const Value& attr = string_arg(args, 0, "attribute", name, offset);
      Args rest;
      rest.positional.assign(args.positional.begin() + std::min<size_t>(2, args.positional.size()),
                             args.positional.end());
      List items;
      for (const Value& item : iterate(v, offset)) {
        step(offset);
        const Value field = attribute(item, attr.s, offset);
        const bool pass =
            args.positional.size() >= 2
                ? test(string_arg(args, 1, "test", name, offset).s, field, rest, offset)
                : truthy(field);
        if (pass == (name == "selectattr")) items.push_back(item);
      }
      return Value::make_list(std::move(items));
    }
    if (name == "map") {
      const Value* attr = args.get(99, "attribute");
      if (!attr || attr->type != Type::String)
        fail(offset, "map: only map(attribute='name') is supported");
      List items;
      for (const Value& item : iterate(v, offset))
        items.push_back(attribute(item, attr->s, offset));
      return Value::make_list(std::move(items));
    }
    if (name == "int") {
      if (v.type == Type::Float) {
        if (!std::isfinite(v.f) || std::fabs(v.f) > 9.2e18) fail(offset, "int: out of range");
        return Value::integer(static_cast<int64_t>(v.f));
      }
      if (is_number(v)) return Value::integer(as_int(v));
      if (v.type == Type::String) {
        int64_t r = 0;
        const std::string t = strip(v.s, nullptr, true, true);
        const auto res = std::from_chars(t.data(), t.data() + t.size(), r);
        if (res.ec == std::errc() && res.ptr == t.data() + t.size()) return Value::integer(r);
      }
      const Value* fallback = args.get(0, "default");
      return fallback ? *fallback : Value::integer(0);
    }
    if (name == "float") {
      if (is_number(v)) return Value::real(as_double(v));
      if (v.type == Type::String) {
        const std::string t = strip(v.s, nullptr, true, true);
        char* end = nullptr;
        const double r = std::strtod(t.c_str(), &end);
        if (!t.empty() && end == t.c_str() + t.size()) return Value::real(r);
      }
      const Value* fallback = args.get(0, "default");
      return fallback ? *fallback : Value::real(0);
    }
    if (name == "abs") {
      if (v.type == Type::Float) return Value::real(std::fabs(v.f));
      if (!is_number(v) || as_int(v) == INT64_MIN) fail(offset, "abs: expected a number");
      return Value::integer(std::llabs(as_int(v)));
    }
    if (name == "string") return Value::string(to_str(v));
    // The remaining filters take text.
    require_defined(v, offset);
    const std::string s = to_str(v);
    charge(offset, s.size());
    if (name == "trim") return Value::string(strip(s, args.get(0, "chars"), true, true));
    if (name == "upper") return Value::string(map_case(s, upper));
    if (name == "lower") return Value::string(map_case(s, lower));
    if (name == "capitalize") return Value::string(capitalize(s));
    if (name == "title") return Value::string(jinja_title(s));
    if (name == "replace") {
      const Value& from = string_arg(args, 0, "old", name, offset);
      const Value& to = string_arg(args, 1, "new", name, offset);
      const Value* count = args.get(2, "count");
      return Value::string(
          replace(s, from.s, to.s, count && count->type == Type::Int ? count->i : -1, offset));
    }
    fail(offset, "unknown filter '" + name + "'");
  }

  std::string tojson(const Value& v, const Args& args, size_t offset) {
    JsonStyle style;
    if (const Value* indent = args.get(0, "indent"); indent && indent->type != Type::None) {
      if (indent->type == Type::String) {
        style.indent_unit = indent->s;
      } else if (indent->type == Type::Int && indent->i >= 0 && indent->i <= 64) {
        style.indent_unit = std::string(static_cast<size_t>(indent->i), ' ');
      } else {
        fail(offset, "tojson: indent must be a small integer or a string");
      }
      style.indent = 1;
      style.item_sep = ",";
    }
    if (const Value* sort = args.get(99, "sort_keys")) style.sort_keys = truthy(*sort);
    if (const Value* ascii = args.get(99, "ensure_ascii")) style.ensure_ascii = truthy(*ascii);
    if (const Value* seps = args.get(99, "separators"); seps && seps->type != Type::None) {
      if (seps->type != Type::List || seps->list->size() != 2 ||
          (*seps->list)[0].type != Type::String || (*seps->list)[1].type != Type::String) {
        fail(offset, "tojson: separators must be two strings");
      }
      style.item_sep = (*seps->list)[0].s;
      style.key_sep = (*seps->list)[1].s;
    }
    std::string out;
    to_json(v, style, 0, out, offset);
    charge(offset, out.size());
    return out;
  }

  bool test(const std::string& name, const Value& v, const Args& args, size_t offset) const {
    const auto arg = [&]() -> const Value& {
      const Value* a = args.get(0, "other");
      if (!a) fail(offset, "test '" + name + "' needs an argument");
      return *a;
    };
    if (name == "defined") return v.type != Type::Undefined;
    if (name == "undefined") return v.type == Type::Undefined;
    if (name == "none") return v.type == Type::None;
    if (name == "boolean") return v.type == Type::Bool;
    if (name == "true") return v.type == Type::Bool && v.b;
    if (name == "false") return v.type == Type::Bool && !v.b;
    if (name == "string") return v.type == Type::String;
    if (name == "number") return is_number(v) && v.type != Type::Bool;
    if (name == "integer") return v.type == Type::Int;
    if (name == "float") return v.type == Type::Float;
    if (name == "mapping") return v.type == Type::Dict;
    if (name == "sequence")
      return v.type == Type::List || v.type == Type::String || v.type == Type::Dict;
    if (name == "iterable")
      return v.type == Type::List || v.type == Type::String || v.type == Type::Dict;
    if (name == "callable") return v.type == Type::Function;
    if (name == "lower") return v.type == Type::String && map_case(v.s, lower) == v.s;
    if (name == "upper") return v.type == Type::String && map_case(v.s, upper) == v.s;
    if (name == "even" || name == "odd" || name == "divisibleby") {
      if (v.type != Type::Int) fail(offset, "test '" + name + "' needs an integer");
      if (name == "divisibleby") {
        const Value& d = arg();
        if (d.type != Type::Int || d.i == 0) fail(offset, "divisibleby needs a non-zero integer");
        return v.i % d.i == 0;
      }
      return (v.i % 2 == 0) == (name == "even");
    }
    if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg());
    if (name == "ne" || name == "!=") return !equal(v, arg());
    if (name == "lt" || name == "lessthan" || name == "<") return order(v, arg(), offset) < 0;
    if (name == "le" || name == "<=") return order(v, arg(), offset) <= 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return order(v, arg(), offset) > 0;
    if (name == "ge" || name == ">=") return order(v, arg(), offset) >= 0;
    if (name == "in") return contains(arg(), v, offset);
    if (name == "sameas") {
      const Value& o = arg();
      if (o.type != v.type) return false;
      return v.type == Type::None || v.type == Type::Undefined ||
             (v.type == Type::Bool && v.b == o.b) || ((v.type == Type::List) && v.list == o.list) ||
             ((v.type == Type::Dict || v.type == Type::Namespace) && v.dict == o.dict);
    }
    fail(offset, "unknown test '" + name + "'");
  }

  // ---- Statements ----

  void emit(std::string& out, const std::string& text, size_t offset) {
    if (out.size() + text.size() > limits_.max_output_bytes) {
      fail(offset, "output of more than " + std::to_string(limits_.max_output_bytes) + " bytes");
    }
    out += text;
  }

  Signal render_body(const Body& body, std::string& out) {
    for (const Node& n : body) {
      const Signal s = render_node(n, out);
      if (s != Signal::None) return s;
    }
    return Signal::None;
  }

  Signal render_node(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::Text:
        emit(out, n.text, n.offset);
        return Signal::None;
      case Node::Kind::Output:
        emit(out, to_str(eval(*n.expr)), n.offset);
        return Signal::None;
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches) {
          if (truthy(eval(*cond))) return render_body(body, out);
        }
        return render_body(n.else_body, out);
      case Node::Kind::For:
        return render_for(n, out);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        assign(n, std::move(v));
        return Signal::None;
      }
      case Node::Kind::SetBlock: {
        std::string captured;
        const Signal s = render_body(n.body, captured);
        assign(n, Value::string(std::move(captured)));
        return s;
      }
      case Node::Kind::Break:
        return Signal::Break;
      case Node::Kind::Continue:
        return Signal::Continue;
      case Node::Kind::Block:
        return render_body(n.body, out);
    }
    return Signal::None;
  }

  void assign(const Node& n, Value v) {
    if (n.attr.empty()) {
      scopes_.back()[n.text] = std::move(v);
      return;
    }
    const Value target = lookup(n.text);
    if (target.type != Type::Namespace)
      fail(n.offset, "cannot set attribute '" + n.attr + "' on a " + type_name(target) +
                         ": only on a namespace");
    bounded(v, n.offset);
    set_key(*target.dict, n.attr, std::move(v));
  }

  Signal render_for(const Node& n, std::string& out) {
    const Value iterable = eval(*n.expr);
    std::vector<Value> items = iterable.type == Type::Dict && !n.attr.empty()
                                   ? *dict_items(*iterable.dict).list
                                   : iterate(iterable, n.offset);
    // The loop's own `if` filters first, so `loop` counts only the items that pass.
    if (n.cond) {
      std::vector<Value> kept;
      for (Value& item : items) {
        step(n.offset);
        scopes_.emplace_back();
        bind(n, item);
        const bool keep = truthy(eval(*n.cond));
        scopes_.pop_back();
        if (keep) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return render_body(n.else_body, out);
    const auto count = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < count; ++i) {
      step(n.offset);
      const auto u = static_cast<size_t>(i);
      scopes_.emplace_back();
      bind(n, items[u]);
      scopes_.back()["loop"] = Value::make_dict({
          {"index0", Value::integer(i)},
          {"index", Value::integer(i + 1)},
          {"revindex0", Value::integer(count - i - 1)},
          {"revindex", Value::integer(count - i)},
          {"first", Value::boolean(i == 0)},
          {"last", Value::boolean(i + 1 == count)},
          {"length", Value::integer(count)},
          {"previtem", i > 0 ? items[u - 1] : Value::undefined("previtem")},
          {"nextitem", i + 1 < count ? items[u + 1] : Value::undefined("nextitem")},
      });
      const Signal s = render_body(n.body, out);
      scopes_.pop_back();
      if (s == Signal::Break) break;
    }
    return Signal::None;
  }

  void bind(const Node& n, const Value& item) {
    if (n.attr.empty()) {
      scopes_.back()[n.text] = item;
      return;
    }
    const std::vector<Value> parts = iterate(item, n.offset);
    if (parts.size() != 2)
      fail(n.offset, "cannot unpack " + std::to_string(parts.size()) + " values into 2 names");
    scopes_.back()[n.text] = parts[0];
    scopes_.back()[n.attr] = parts[1];
  }

  const Template& tmpl_;
  const ChatTemplateLimits& limits_;
  std::unordered_map<std::string, Value> globals_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::vector<std::shared_ptr<Dict>> namespaces_;
  int64_t steps_ = 0;
  size_t work_ = 0;
};

}  // namespace

std::string render(const Template& tmpl, const nlohmann::ordered_json& variables,
                   const ChatTemplateLimits& limits) {
  return Renderer(tmpl, limits).run(variables);
}

}  // namespace ember::generation::jinja
