#include "strict_json.hpp"

#include <cstdint>
#include <utility>

namespace ember::formats_detail {
namespace {

using json = nlohmann::json;

// Builds a DOM like nlohmann's own SAX DOM parser, but stops at the first duplicate key, at
// nesting deeper than max_depth, or at a value the schema refuses.
class StrictDomBuilder : public nlohmann::json_sax<json> {
 public:
  StrictDomBuilder(StrictJsonResult& result, int max_depth, const JsonSchema& schema)
      : result_(result), max_depth_(max_depth), schema_(schema) {}

  bool null() override {
    return add(JsonKind::Null, [] { return json(nullptr); });
  }
  bool boolean(bool v) override {
    return add(JsonKind::Boolean, [v] { return json(v); });
  }
  bool number_integer(number_integer_t v) override {
    return add(JsonKind::Number, [v] { return json(v); });
  }
  bool number_unsigned(number_unsigned_t v) override {
    return add(JsonKind::Number, [v] { return json(v); });
  }
  bool number_float(number_float_t v, const string_t&) override {
    return add(JsonKind::Number, [v] { return json(v); });
  }
  bool string(string_t& v) override {
    return add(JsonKind::String, [&v] { return json(std::move(v)); });
  }
  bool binary(binary_t&) override { return fail_syntax("binary values are not JSON"); }

  bool start_object(std::size_t) override { return open(JsonKind::Object); }
  bool key(string_t& k) override {
    if (skipping_ > 0) return true;
    json& object = *stack_.back();
    if (object.contains(k)) {
      result_.status = StrictJsonResult::Status::DuplicateKey;
      result_.duplicate_key = k;
      result_.key_path.assign(keys_.begin(), keys_.end() - 1);
      return false;
    }
    // Insert now so the slot exists; the value replaces the null when it arrives.
    pending_ = &object[k];
    keys_.back() = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonKind::Array); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail_syntax(e.what());
  }

 private:
  // Places a value where the grammar says it goes: the root, the pending object slot, or the end
  // of the innermost array. Returns where it landed.
  json* place(json&& value) {
    if (stack_.empty()) {
      result_.value = std::move(value);
      return &result_.value;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    *pending_ = std::move(value);
    return pending_;
  }
  JsonVerdict::Action judge(JsonKind kind) {
    if (!schema_) return JsonVerdict::Action::Keep;
    JsonVerdict verdict = schema_(keys_, kind);
    if (verdict.action == JsonVerdict::Action::Refuse) {
      result_.status = StrictJsonResult::Status::Refused;
      result_.message = std::move(verdict.message);
    }
    return verdict.action;
  }
  template <class MakeValue>
  bool add(JsonKind kind, MakeValue make) {
    if (skipping_ > 0) return true;
    switch (judge(kind)) {
      case JsonVerdict::Action::Keep:
        place(make());
        return true;
      case JsonVerdict::Action::Skip:
        return true;
      case JsonVerdict::Action::Refuse:
        return false;
    }
    return false;
  }
  bool open(JsonKind kind) {
    if (static_cast<int>(stack_.size() + skipping_) >= max_depth_) {
      result_.status = StrictJsonResult::Status::TooDeep;
      return false;
    }
    if (skipping_ > 0) {
      ++skipping_;
      return true;
    }
    switch (judge(kind)) {
      case JsonVerdict::Action::Keep:
        break;
      case JsonVerdict::Action::Skip:
        skipping_ = 1;
        return true;
      case JsonVerdict::Action::Refuse:
        return false;
    }
    const bool is_object = kind == JsonKind::Object;
    json* where = place(is_object ? json::object() : json::array());
    stack_.push_back(where);
    keys_.emplace_back(is_object ? "" : "[]");
    return true;
  }
  bool close() {
    if (skipping_ > 0) {
      --skipping_;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool fail_syntax(std::string message) {
    if (result_.status == StrictJsonResult::Status::Ok) {
      result_.status = StrictJsonResult::Status::Syntax;
      result_.message = std::move(message);
    }
    return false;
  }

  StrictJsonResult& result_;
  int max_depth_;
  const JsonSchema& schema_;
  size_t skipping_ = 0;            // open containers inside a skipped value
  std::vector<json*> stack_;       // open containers; pointers stay valid: we only append to
                                   // the innermost container, never to an ancestor
  std::vector<std::string> keys_;  // current key of each open object ("[]" for arrays)
  json* pending_ = nullptr;
};

}  // namespace

StrictJsonResult parse_strict_json(std::string_view text, int max_depth, const JsonSchema& schema) {
  StrictJsonResult result;
  // nlohmann's lexer takes a NUL byte for the end of input, which would silently drop whatever
  // follows it. JSON allows NUL nowhere unescaped, so refuse it up front.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    result.status = StrictJsonResult::Status::Syntax;
    result.message = "NUL byte at offset " + std::to_string(nul);
    return result;
  }
  StrictDomBuilder builder(result, max_depth, schema);
  const bool ok = json::sax_parse(text.begin(), text.end(), &builder,
                                  nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (!ok && result.status == StrictJsonResult::Status::Ok) {
    result.status = StrictJsonResult::Status::Syntax;
    result.message = "invalid JSON";
  }
  if (result.status != StrictJsonResult::Status::Ok) result.value = nullptr;
  return result;
}

}  // namespace ember::formats_detail
