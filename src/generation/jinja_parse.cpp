// Lexer and parser of the Jinja subset, with jinja2's whitespace rules under trim_blocks and
// lstrip_blocks (as transformers configures it).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "jinja.hpp"

namespace ember::generation::jinja {
namespace {

enum class Tok : uint8_t {
  Text,
  VarBegin,
  VarEnd,
  BlockBegin,
  BlockEnd,
  Name,
  String,
  Int,
  Float,
  Op,
  Eof
};

struct Token {
  Tok type;
  size_t offset;
  std::string text;  // Text, Name, String (unescaped), Op; numbers as written
};

std::string location(std::string_view source, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++column;  // columns count characters, not UTF-8 continuation bytes
    }
  }
  return "chat template line " + std::to_string(line) + ", column " + std::to_string(column);
}

[[noreturn]] void fail_at(std::string_view source, size_t offset, const std::string& what) {
  throw Error(location(source, offset) + ": " + what);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

class Lexer {
 public:
  explicit Lexer(const std::string& source) : src_(source) {}

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t start = find_tag(pos);
      std::string text = src_.substr(pos, start - pos);
      if (start < src_.size()) {
        const char kind = src_[start + 1];
        const char modifier = start + 2 < src_.size() ? src_[start + 2] : '\0';
        if (modifier == '-') {
          while (!text.empty() && is_space(text.back())) text.pop_back();
        } else if (kind != '{' && modifier != '+') {
          lstrip_line(text, pos);
        }
      }
      if (!text.empty()) tokens_.push_back({Tok::Text, pos, std::move(text)});
      if (start >= src_.size()) break;
      pos = tag(start);
    }
    tokens_.push_back({Tok::Eof, src_.size(), ""});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t pos) const {
    for (size_t i = pos; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  // lstrip_blocks: spaces and tabs between a line's start and a block or comment tag go.
  void lstrip_line(std::string& text, size_t text_start) const {
    const size_t newline = text.rfind('\n');
    const bool line_start = text_start == 0 || src_[text_start - 1] == '\n';
    if (newline == std::string::npos && !line_start) return;
    const size_t from = newline == std::string::npos ? 0 : newline + 1;
    for (size_t i = from; i < text.size(); ++i) {
      if (!is_space(text[i])) return;
    }
    text.resize(from);
  }

  // After a closing delimiter: `-` strips all following whitespace; trim_blocks drops one
  // newline after a block or comment tag unless `+` asks to keep it.
  size_t after_close(size_t end, bool minus, bool plus, bool block) const {
    if (minus) {
      while (end < src_.size() && is_space(src_[end])) ++end;
    } else if (block && !plus && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t tag(size_t start) {
    const char kind = src_[start + 1];
    size_t pos = start + 2;
    if (pos < src_.size() && (src_[pos] == '-' || src_[pos] == '+')) ++pos;
    if (kind == '#') {
      const size_t close = src_.find("#}", pos);
      if (close == std::string::npos) fail_at(src_, start, "unclosed comment");
      const bool minus = close > pos && src_[close - 1] == '-';
      const bool plus = close > pos && src_[close - 1] == '+';
      return after_close(close + 2, minus, plus, true);
    }
    const bool block = kind == '%';
    tokens_.push_back({block ? Tok::BlockBegin : Tok::VarBegin, start, ""});
    const char closer = block ? '%' : '}';
    int depth = 0;
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) fail_at(src_, start, block ? "unclosed '{%'" : "unclosed '{{'");
      const char c = src_[pos];
      // The closing delimiter counts only outside brackets, as in jinja2 ({{ {'a': {}} }}).
      if (depth == 0) {
        const std::string close{closer, '}'};
        const bool sign = (c == '-' || c == '+') && src_.compare(pos + 1, 2, close) == 0;
        if (sign || src_.compare(pos, 2, close) == 0) {
          tokens_.push_back({block ? Tok::BlockEnd : Tok::VarEnd, pos, ""});
          return after_close(pos + (sign ? 3 : 2), sign && c == '-', sign && c == '+', block);
        }
      }
      if (is_name_start(c)) {
        size_t end = pos;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        tokens_.push_back({Tok::Name, pos, src_.substr(pos, end - pos)});
        pos = end;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        pos = number(pos);
      } else if (c == '\'' || c == '"') {
        pos = string(pos);
      } else {
        static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const char* two : kTwo) {
          if (src_.compare(pos, 2, two) == 0) op = two;
        }
        if (op.size() == 1 && !std::strchr("+-*/%~<>=.,:|()[]{}", c)) {
          fail_at(src_, pos, "unexpected character '" + op + "'");
        }
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        tokens_.push_back({Tok::Op, pos, op});
        pos += op.size();
      }
    }
  }

  size_t number(size_t pos) {
    size_t end = pos;
    const auto digits = [&] {
      while (end < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_'))
        ++end;
    };
    digits();
    bool real = false;
    if (end + 1 < src_.size() && src_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      real = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        real = true;
        end = e;
        digits();
      }
    }
    std::string text;
    for (size_t i = pos; i < end; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    tokens_.push_back({real ? Tok::Float : Tok::Int, pos, std::move(text)});
    return end;
  }

  // Python's unicode-escape rules, which jinja2 applies to string literals.
  size_t string(size_t pos) {
    const char quote = src_[pos];
    std::string out;
    size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) fail_at(src_, pos, "unterminated string");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\' || i + 1 >= src_.size()) {
        out += c;
        ++i;
        continue;
      }
      const char e = src_[i + 1];
      i += 2;
      const auto hex = [&](int n) {
        uint32_t cp = 0;
        for (int k = 0; k < n; ++k, ++i) {
          if (i >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[i]))) {
            fail_at(src_, i, "bad escape in string");
          }
          const char h = src_[i];
          cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                   ? h - '0'
                                                   : (std::tolower(h) - 'a' + 10));
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
          fail_at(src_, i, "bad escape in string");
        append_utf8(out, cp);
      };
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;
        case 'x':
          hex(2);
          break;
        case 'u':
          hex(4);
          break;
        case 'U':
          hex(8);
          break;
        default:
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({Tok::String, pos, std::move(out)});
    return i + 1;
  }

  const std::string& src_;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  Parser(const std::string& source, std::vector<Token> tokens, int max_depth)
      : src_(source), toks_(std::move(tokens)), max_depth_(max_depth) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  const Token& peek(size_t ahead = 0) const {
    return toks_[std::min(pos_ + ahead, toks_.size() - 1)];
  }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).type == Tok::Op && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).type == Tok::Name && peek(ahead).text == name;
  }
  [[noreturn]] void fail(const Token& t, const std::string& what) const {
    fail_at(src_, t.offset, what);
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Tok::Eof:
        return "end of template";
      case Tok::BlockEnd:
        return "end of tag";
      case Tok::VarEnd:
        return "'}}'";
      case Tok::Text:
        return "text";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(peek(), std::string("expected '") + op + "', got " + describe(peek()));
    next();
  }
  std::string expect_name() {
    if (peek().type != Tok::Name) fail(peek(), "expected a name, got " + describe(peek()));
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Tok::BlockEnd) fail(peek(), "expected end of tag, got " + describe(peek()));
    next();
  }

  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > p.max_depth_)
        p.fail(at, "nesting deeper than " + std::to_string(p.max_depth_));
    }
    ~DepthGuard() { --p.depth_; }
  };

  // Parses nodes until a block tag named in `ends` (consumed: its name goes to `end`).
  Body parse_body(const std::vector<std::string>& ends, std::string& end) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == Tok::Eof) {
        if (!ends.empty()) fail(t, "missing '{% " + ends.back() + " %}'");
        return body;
      }
      if (t.type == Tok::Text) {
        Node n;
        n.kind = Node::Kind::Text;
        n.offset = t.offset;
        n.text = next().text;
        body.push_back(std::move(n));
      } else if (t.type == Tok::VarBegin) {
        next();
        Node n;
        n.kind = Node::Kind::Output;
        n.offset = t.offset;
        n.expr = expression();
        if (peek().type != Tok::VarEnd) fail(peek(), "expected '}}', got " + describe(peek()));
        next();
        body.push_back(std::move(n));
      } else if (t.type == Tok::BlockBegin) {
        const Token& name = peek(1);
        if (name.type == Tok::Name) {
          for (const auto& e : ends) {
            if (name.text == e) {
              next();
              next();
              end = e;
              return body;
            }
          }
        }
        next();
        body.push_back(statement(t));
      } else {
        fail(t, "unexpected " + describe(t));
      }
    }
  }

  Node statement(const Token& begin) {
    DepthGuard guard(*this, begin);
    const Token& t = peek();
    if (t.type != Tok::Name) fail(t, "expected a tag name, got " + describe(t));
    const std::string tag = next().text;
    Node n;
    n.offset = begin.offset;
    std::string end;
    if (tag == "if") {
      n.kind = Node::Kind::If;
      ExprPtr cond = expression();
      expect_block_end();
      while (true) {
        Body body = parse_body({"elif", "else", "endif"}, end);
        n.branches.emplace_back(std::move(cond), std::move(body));
        if (end == "elif") {
          cond = expression();
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          n.else_body = parse_body({"endif"}, end);
        }
        break;
      }
      expect_block_end();
    } else if (tag == "for") {
      n.kind = Node::Kind::For;
      const bool paren = is_op("(");
      if (paren) next();
      n.text = expect_name();
      if (is_op(",")) {
        next();
        n.attr = expect_name();
      }
      if (paren) expect_op(")");
      if (!is_name("in")) fail(peek(), "expected 'in', got " + describe(peek()));
      next();
      n.expr = or_expr();  // not a conditional: a trailing `if` filters the loop
      if (is_name("if")) {
        next();
        n.cond = expression();
      }
      if (is_name("recursive")) fail(peek(), "recursive loops are not supported");
      expect_block_end();
      n.body = parse_body({"else", "endfor"}, end);
      if (end == "else") {
        expect_block_end();
        n.else_body = parse_body({"endfor"}, end);
      }
      expect_block_end();
    } else if (tag == "set") {
      n.text = expect_name();
      if (is_op(".")) {
        next();
        n.attr = expect_name();
      }
      if (is_op("=")) {
        next();
        n.kind = Node::Kind::Set;
        n.expr = expression();
        expect_block_end();
      } else {
        if (!n.attr.empty()) fail(peek(), "expected '='");
        n.kind = Node::Kind::SetBlock;
        expect_block_end();
        n.body = parse_body({"endset"}, end);
        expect_block_end();
      }
    } else if (tag == "break" || tag == "continue") {
      n.kind = tag == "break" ? Node::Kind::Break : Node::Kind::Continue;
      expect_block_end();
    } else if (tag == "generation") {
      // transformers' marker of assistant text: renders its body unchanged.
      n.kind = Node::Kind::Block;
      expect_block_end();
      n.body = parse_body({"endgeneration"}, end);
      expect_block_end();
    } else {
      fail(t, "unknown or unsupported tag '" + tag + "'");
    }
    return n;
  }

  ExprPtr make(Expr::Kind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  ExprPtr expression() {
    DepthGuard guard(*this, peek());
    ExprPtr value = or_expr();
    while (is_name("if")) {
      const size_t at = next().offset;
      auto cond = make(Expr::Kind::Cond, at);
      ExprPtr test = or_expr();
      ExprPtr other;
      if (is_name("else")) {
        next();
        other = expression();
      }
      cond->args.push_back(std::move(test));
      cond->args.push_back(std::move(value));
      cond->args.push_back(std::move(other));
      value = std::move(cond);
    }
    return value;
  }

  ExprPtr or_expr() {
    ExprPtr left = and_expr();
    while (is_name("or")) {
      auto e = make(Expr::Kind::Or, next().offset);
      e->args.push_back(std::move(left));
      e->args.push_back(and_expr());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr and_expr() {
    ExprPtr left = not_expr();
    while (is_name("and")) {
      auto e = make(Expr::Kind::And, next().offset);
      e->args.push_back(std::move(left));
      e->args.push_back(not_expr());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr not_expr() {
    if (is_name("not")) {
      DepthGuard guard(*this, peek());
      auto e = make(Expr::Kind::Not, next().offset);
      e->args.push_back(not_expr());
      return e;
    }
    return compare();
  }

  ExprPtr compare() {
    ExprPtr left = binary(0);
    while (true) {
      std::string op;
      const Token& t = peek();
      if (t.type == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                t.text == ">" || t.text == "<=" || t.text == ">=")) {
        op = t.text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && is_name("in", 1)) {
        op = "not in";
        next();
        next();
      } else {
        return left;
      }
      auto e = make(Expr::Kind::Binary, t.offset);
      e->name = op;
      e->args.push_back(std::move(left));
      e->args.push_back(binary(0));
      left = std::move(e);
    }
  }

  // jinja2's precedence, loosest first: + -, then ~, then * / // %, then **.
  ExprPtr binary(int level) {
    static const std::vector<std::vector<std::string>> kLevels = {
        {"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
    if (level == static_cast<int>(kLevels.size())) return unary();
    ExprPtr left = binary(level + 1);
    while (peek().type == Tok::Op) {
      const auto& ops = kLevels[static_cast<size_t>(level)];
      if (std::find(ops.begin(), ops.end(), peek().text) == ops.end()) break;
      const Token& t = next();
      auto e = make(Expr::Kind::Binary, t.offset);
      e->name = t.text;
      e->args.push_back(std::move(left));
      e->args.push_back(binary(level + 1));
      left = std::move(e);
    }
    return left;
  }

  // As jinja2: a sign applies to the operand without its filters, and the filters then apply to
  // the signed value (-3|abs is 3).
  ExprPtr unary(bool with_filters = true) {
    DepthGuard guard(*this, peek());
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      node = unary(false);
      if (t.text == "-") {
        auto e = make(Expr::Kind::Neg, t.offset);
        e->args.push_back(std::move(node));
        node = std::move(e);
      }
    } else {
      node = postfix(primary());
    }
    if (with_filters) return filters(std::move(node));
    return node;
  }

  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == Tok::Name && is_op("=", 1)) {
        e.kwargs.push_back(next().text);
        next();
      } else {
        if (!e.kwargs.empty() && !e.kwargs.back().empty())
          fail(peek(), "positional argument after keyword argument");
        e.kwargs.emplace_back();
      }
      e.args.push_back(expression());
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  // A decimal literal's value. Python's integers are unbounded, Ember's are int64: a larger
  // literal is an error rather than a wrapped value.
  int64_t integer_literal(const Token& t) {
    errno = 0;
    const long long v = std::strtoll(t.text.c_str(), nullptr, 10);
    if (errno == ERANGE) fail(t, "integer literal out of range");
    return v;
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const size_t at = next().offset;
        auto a = make(Expr::Kind::Attr, at);
        if (peek().type == Tok::Int) {
          // `x.0` is jinja2's item 0
          a->kind = Expr::Kind::Item;
          auto index = make(Expr::Kind::Literal, peek().offset);
          index->value = Value::integer(integer_literal(next()));
          a->args.push_back(std::move(e));
          a->args.push_back(std::move(index));
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (is_op("[")) {
        const size_t at = next().offset;
        ExprPtr parts[3];
        int colons = 0;
        while (!is_op("]")) {
          if (is_op(":")) {
            if (++colons > 2) fail(peek(), "too many ':' in a slice");
            next();
            continue;
          }
          if (parts[colons]) fail(peek(), "expected ']' or ':', got " + describe(peek()));
          parts[colons] = expression();
        }
        next();
        if (colons == 0 && !parts[0]) fail_at(src_, at, "empty subscript");
        auto s = make(colons == 0 ? Expr::Kind::Item : Expr::Kind::Slice, at);
        s->args.push_back(std::move(e));
        for (int k = 0; k <= (colons == 0 ? 0 : 2); ++k) s->args.push_back(std::move(parts[k]));
        e = std::move(s);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, peek().offset);
        c->args.push_back(std::move(e));
        c->kwargs.emplace_back();
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const size_t at = next().offset;
        auto f = make(Expr::Kind::Filter, at);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        f->kwargs.emplace_back();
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        const size_t at = next().offset;
        auto t = make(Expr::Kind::Test, at);
        if (is_name("not")) {
          next();
          t->negate = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        t->kwargs.emplace_back();
        if (is_op("(")) {
          call_args(*t);
        } else if (starts_bare_argument()) {
          // `is sameas false`, `is equalto 'x'`: one argument without parentheses.
          t->args.push_back(postfix(primary()));
          t->kwargs.emplace_back();
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  bool starts_bare_argument() const {
    const Token& t = peek();
    if (t.type == Tok::String || t.type == Tok::Int || t.type == Tok::Float) return true;
    if (t.type == Tok::Op) return t.text == "[" || t.text == "{";
    if (t.type != Tok::Name) return false;
    for (const char* keyword : {"and", "or", "else", "if", "in", "is", "not"}) {
      if (t.text == keyword) return false;
    }
    return true;
  }

  ExprPtr primary() {
    DepthGuard guard(*this, peek());
    const Token& t = peek();
    auto lit = make(Expr::Kind::Literal, t.offset);
    switch (t.type) {
      case Tok::Name: {
        next();
        if (t.text == "true" || t.text == "True") {
          lit->value = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          lit->value = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          lit->value = Value::none();
        } else {
          lit->kind = Expr::Kind::Name;
          lit->name = t.text;
        }
        return lit;
      }
      case Tok::String: {
        std::string s;
        while (peek().type == Tok::String) s += next().text;  // adjacent literals join
        lit->value = Value::string(std::move(s));
        return lit;
      }
      case Tok::Int: {
        lit->value = Value::integer(integer_literal(next()));
        return lit;
      }
      case Tok::Float:
        next();
        lit->value = Value::real(std::strtod(t.text.c_str(), nullptr));
        return lit;
      case Tok::Op:
        if (t.text == "(") {
          next();
          if (is_op(")")) {
            next();
            lit->kind = Expr::Kind::ListLit;
            lit->negate = true;  // () is an empty tuple
            return lit;
          }
          ExprPtr first = expression();
          if (!is_op(",")) {
            expect_op(")");
            return first;
          }
          // A tuple: a list to the templates (both iterate, index and compare alike).
          lit->kind = Expr::Kind::ListLit;
          lit->negate = true;
          lit->args.push_back(std::move(first));
          while (is_op(",")) {
            next();
            if (is_op(")")) break;
            lit->args.push_back(expression());
          }
          expect_op(")");
          return lit;
        }
        if (t.text == "[") {
          next();
          lit->kind = Expr::Kind::ListLit;
          while (!is_op("]")) {
            lit->args.push_back(expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("]");
          return lit;
        }
        if (t.text == "{") {
          next();
          lit->kind = Expr::Kind::DictLit;
          while (!is_op("}")) {
            lit->args.push_back(expression());
            expect_op(":");
            lit->args.push_back(expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("}");
          return lit;
        }
        break;
      default:
        break;
    }
    fail(t, "unexpected " + describe(t));
  }

  const std::string& src_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int max_depth_;
};

}  // namespace

std::unique_ptr<Template> parse(std::string_view source, const ChatTemplateLimits& limits) {
  if (source.size() > limits.max_template_bytes) {
    throw Error("chat template: " + std::to_string(source.size()) +
                " bytes, more than the limit of " + std::to_string(limits.max_template_bytes));
  }
  auto tmpl = std::make_unique<Template>();
  // jinja2 reads "\r\n" and "\r" as "\n" and, without keep_trailing_newline, drops one final
  // newline.
  std::string& s = tmpl->source;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s += source[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  Parser parser(s, Lexer(s).run(), limits.max_depth);
  tmpl->body = parser.parse_template();
  return tmpl;
}

}  // namespace ember::generation::jinja
