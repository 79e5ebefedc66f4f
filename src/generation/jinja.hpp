#pragma once
// The Jinja subset behind ChatTemplate: values with Python's semantics, the parsed template and
// its renderer. Internal to ember_generation.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/generation/chat_template.hpp"

namespace ember::generation::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python's dict

// A Jinja value. Lists and dicts are shared, as Python objects are; the sandbox offers no way to
// mutate them except namespace attributes.
struct Value {
  enum class Type : uint8_t {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    List,
    Dict,
    Namespace,
    Function
  };
  Type type = Type::Undefined;
  bool b = false;  // Bool; for a List: a tuple (only printing differs)
  int64_t i = 0;
  double f = 0;
  std::string s;  // String; the name for Undefined and Function
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // Dict and Namespace
  // Nesting of lists and dicts (a namespace's attributes are not counted: nothing recurses into
  // a namespace), which the renderer bounds so that printing and comparing cannot recurse deeply.
  int depth = 0;

  static Value none() { return with(Type::None); }
  static Value boolean(bool v) {
    Value r = with(Type::Bool);
    r.b = v;
    return r;
  }
  static Value integer(int64_t v) {
    Value r = with(Type::Int);
    r.i = v;
    return r;
  }
  static Value real(double v) {
    Value r = with(Type::Float);
    r.f = v;
    return r;
  }
  static Value string(std::string v) {
    Value r = with(Type::String);
    r.s = std::move(v);
    return r;
  }
  static Value undefined(std::string name) {
    Value r;
    r.s = std::move(name);
    return r;
  }
  static Value make_list(List items) {
    Value r = with(Type::List);
    for (const Value& v : items) r.depth = std::max(r.depth, v.depth + 1);
    r.list = std::make_shared<List>(std::move(items));
    return r;
  }
  static Value make_dict(Dict items, Type type = Type::Dict) {
    Value r = with(type);
    for (const auto& [k, v] : items) r.depth = std::max(r.depth, v.depth + 1);
    r.dict = std::make_shared<Dict>(std::move(items));
    return r;
  }
  static Value function(std::string name) {
    Value r = with(Type::Function);
    r.s = std::move(name);
    return r;
  }

 private:
  static Value with(Type t) {
    Value r;
    r.type = t;
    return r;
  }
};

// A key's value in a dict, or null.
const Value* find_key(const Dict& dict, std::string_view key);

struct Expr;
struct Node;
using ExprPtr = std::unique_ptr<Expr>;
using Body = std::vector<Node>;

struct Expr {
  enum class Kind : uint8_t {
    Literal,
    Name,
    Attr,
    Item,
    Slice,
    Call,
    Filter,
    Test,
    Not,
    Neg,
    Binary,
    And,
    Or,
    Cond,
    ListLit,
    DictLit
  };
  Kind kind = Kind::Literal;
  size_t offset = 0;    // in the source, for error messages
  std::string name;     // Name, Attr, Call's kwargs (per arg), Filter, Test; Binary: the operator
  bool negate = false;  // Test: `is not`; ListLit: a tuple
  Value value;          // Literal
  std::vector<ExprPtr> args;        // operands; null for an omitted slice bound
  std::vector<std::string> kwargs;  // for Call/Filter/Test arguments after args[0]: "" or name
};

struct Node {
  enum class Kind : uint8_t { Text, Output, If, For, Set, SetBlock, Break, Continue, Block };
  Kind kind = Kind::Text;
  size_t offset = 0;
  std::string text;  // Text; Set/SetBlock: the name; For: first target
  std::string attr;  // Set of a namespace attribute; For: second target
  ExprPtr expr;      // Output, Set value, For iterable
  ExprPtr cond;      // For's `if` filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: conditions and bodies
  Body body, else_body;
};

struct Template {
  std::string source;  // normalized as jinja2 does; offsets refer to it
  Body body;
};

// Throws ember::Error naming the line and column.
std::unique_ptr<Template> parse(std::string_view source, const ChatTemplateLimits& limits);

std::string render(const Template& tmpl, const nlohmann::ordered_json& variables,
                   const ChatTemplateLimits& limits);

}  // namespace ember::generation::jinja
