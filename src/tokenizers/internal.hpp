#pragma once
// Internal building blocks of the tokenizer pipeline. Mirrors the reference design: a
// NormalizedString keeps, for every byte of the normalized text, the byte range of the original
// text it came from, so offsets survive every transformation.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/base/utf8.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace ember::tokenizers::detail {

[[noreturn]] void fail(const std::string& message);

// ---- UTF-8 -------------------------------------------------------------------------------
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}
// Decodes the (already validated) code point at s[i]; returns it and advances i.
inline char32_t decode_utf8(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  size_t n = utf8_len(b0);
  char32_t c = b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return c;
}
using ember::append_utf8;
size_t count_chars(std::string_view s);

// ---- Byte pieces ---------------------------------------------------------------------------
// "<0xNN>" (uppercase hex) names the vocabulary piece of one byte in byte-fallback vocabularies.
std::string byte_token(unsigned char b);
// The byte a "<0xNN>" piece (either hex case) stands for; nullopt for any other string.
std::optional<unsigned char> parse_byte_token(std::string_view token);

// ---- SentencePiece precompiled charsmap ------------------------------------------------------
// A double-array trie over UTF-8 bytes whose values index NUL-terminated replacement strings.
struct Charsmap {
  std::vector<uint32_t> trie;
  std::string strings;

  // Empty bytes give an empty map (no rules); ctx names the field in errors.
  static Charsmap parse(std::string_view bytes, const std::string& ctx);
  // Calls on_match(key length, replacement) for each key that is a prefix of s, shortest first,
  // until on_match returns true.
  template <class F>
  void for_each_prefix(std::string_view s, F on_match) const;
};

// ---- Unicode predicates (Rust char semantics, data from utf8proc) ----------------------------
bool is_whitespace(char32_t c);    // White_Space property
bool is_alphanumeric(char32_t c);  // Alphabetic || Numeric
bool is_numeric(char32_t c);       // N*
bool is_punctuation(char32_t c);   // P*
bool is_bert_punctuation(char32_t c);
bool is_other_category(char32_t c);   // Cc, Cf, Cs, Co (the reference's tables lack Cn)
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_combining_mark(char32_t c);   // M*
// Rust's char::to_lowercase (full mapping).
void to_lowercase(char32_t c, std::vector<char32_t>& out);

// ---- Regex (PCRE2, UTF + UCP, JIT) ---------------------------------------------------------
class Regex {
 public:
  // Translates onig-isms (\w, \s classes) so that PCRE2 matches what the reference matches.
  explicit Regex(const std::string& pattern, bool literal = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // All non-overlapping matches as byte ranges.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // The same matches, passed to on_match(start, end) one by one as they are found.
  template <class F>
  void for_each_match(std::string_view text, F on_match) const {
    size_t pos = 0, start = 0, end = 0;
    while (next_match(text, pos, start, end)) on_match(start, end);
  }

 private:
  // Finds the next match at or after pos; advances pos past it.
  bool next_match(std::string_view text, size_t& pos, size_t& start, size_t& end) const;
  void* code_ = nullptr;  // pcre2_code*
  std::string literal_;   // a non-empty literal pattern, searched without PCRE2
  std::string pattern_;   // as written in the file, for error messages
};

// ---- NormalizedString ----------------------------------------------------------------------
struct Align {
  uint32_t start, end;
  bool operator==(const Align&) const = default;
};

// Vector of trivially copyable T with N elements stored inline: most words fit, so slicing a
// text into words does not allocate.
template <class T, size_t N>
class SmallVec {
 public:
  SmallVec() = default;
  SmallVec(const SmallVec& o) { assign(o.begin(), o.end()); }
  SmallVec(SmallVec&& o) noexcept { take(o); }
  SmallVec& operator=(const SmallVec& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  SmallVec& operator=(SmallVec&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  ~SmallVec() { release(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return ptr(); }
  const T* data() const { return ptr(); }
  T* begin() { return ptr(); }
  T* end() { return ptr() + size_; }
  const T* begin() const { return ptr(); }
  const T* end() const { return ptr() + size_; }
  T& operator[](size_t i) { return ptr()[i]; }
  const T& operator[](size_t i) const { return ptr()[i]; }
  const T& at(size_t i) const {
    if (i >= size_) fail("internal alignment index out of range");
    return ptr()[i];
  }
  void clear() { size_ = 0; }
  void reserve(size_t n) {
    if (n <= cap_) return;
    size_t cap = std::max(n, cap_ * 2);
    T* mem = static_cast<T*>(::operator new(cap * sizeof(T)));
    if (size_) std::memcpy(mem, ptr(), size_ * sizeof(T));
    release();
    heap_ = mem;
    cap_ = cap;
  }
  void resize(size_t n, const T& value = T{}) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) ptr()[i] = value;
    size_ = n;
  }
  void push_back(const T& v) {
    if (size_ == cap_) reserve(size_ + 1);
    ptr()[size_++] = v;
  }
  void assign(const T* first, const T* last) {
    auto n = static_cast<size_t>(last - first);
    if (n > cap_) {
      size_ = 0;
      reserve(n);
    }
    if (n) std::memmove(ptr(), first, n * sizeof(T));
    size_ = n;
  }
  // Inserts [first, last) (not aliasing this vector) before pos.
  void insert(T* pos, const T* first, const T* last) {
    auto at_i = static_cast<size_t>(pos - ptr());
    auto n = static_cast<size_t>(last - first);
    reserve(size_ + n);
    T* p = ptr();
    if (size_ > at_i) std::memmove(p + at_i + n, p + at_i, (size_ - at_i) * sizeof(T));
    if (n) std::memcpy(p + at_i, first, n * sizeof(T));
    size_ += n;
  }
  void insert(T* pos, size_t n, const T& value) {
    auto at_i = static_cast<size_t>(pos - ptr());
    reserve(size_ + n);
    T* p = ptr();
    if (size_ > at_i) std::memmove(p + at_i + n, p + at_i, (size_ - at_i) * sizeof(T));
    for (size_t i = 0; i < n; ++i) p[at_i + i] = value;
    size_ += n;
  }
  void erase(T* first, T* last) {
    T* e = end();
    if (last < e) std::memmove(first, last, static_cast<size_t>(e - last) * sizeof(T));
    size_ -= static_cast<size_t>(last - first);
  }

 private:
  T* ptr() { return heap_ ? heap_ : reinterpret_cast<T*>(inline_); }
  const T* ptr() const { return heap_ ? heap_ : reinterpret_cast<const T*>(inline_); }
  void release() {
    if (heap_) ::operator delete(heap_);
    heap_ = nullptr;
    cap_ = N;
  }
  void take(SmallVec& o) {
    if (o.heap_) {
      heap_ = o.heap_;
      cap_ = o.cap_;
      size_ = o.size_;
      o.heap_ = nullptr;
      o.cap_ = N;
      o.size_ = 0;
    } else {
      heap_ = nullptr;
      cap_ = N;
      size_ = o.size_;
      std::memcpy(inline_, o.inline_, o.size_ * sizeof(T));
      o.size_ = 0;
    }
  }
  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* heap_ = nullptr;
  size_t size_ = 0, cap_ = N;
};

using AlignVec = SmallVec<Align, 24>;

// A (char, change) transformation step as in the reference: change 0 replaces one char, change
// > 0 inserts, change -n replaces one char and removes n more.
struct CharChange {
  char32_t c;
  int32_t change;
};

struct NormalizedString {
  std::string normalized;
  AlignVec align;  // one per byte of `normalized`, in original-text coordinates
  uint32_t orig_start = 0, orig_end = 0;  // range of the original text this piece covers

  static NormalizedString from_original(std::string_view text, uint32_t shift = 0);
  bool empty() const { return normalized.empty(); }
  // Original range of a normalized byte range (reference's convert_offsets).
  std::optional<std::pair<size_t, size_t>> to_original(size_t start, size_t end) const;
  NormalizedString slice(size_t start, size_t end) const;

  // The reference's transform_range over the whole string.
  void transform(const std::vector<CharChange>& changes, size_t initial_offset);
  void transform_range(size_t start, size_t end, const std::vector<CharChange>& changes,
                       size_t initial_offset);
  // Keeps chars where keep(c); every kept char keeps its own alignment.
  template <class F>
  void filter(F keep);
  // Maps each char to one char (same alignment).
  template <class F>
  void map(F fn);
  // Builds the string anew: per_char(c, byte start, byte end, out, out_align) for each char.
  template <class F>
  void rebuild(F per_char);
  void prepend(std::string_view s);
  void replace_matches(const std::vector<std::pair<size_t, size_t>>& matches,
                       std::string_view content);
  void lowercase();
  void nfd(bool compat);
  void nfc(bool compat);
  void strip(bool left, bool right);
};

// ---- Pattern matching and splits --------------------------------------------------------------
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// (range, is_match) covering the whole string, as the reference's Pattern::find_matches.
using MatchList = std::vector<std::pair<std::pair<size_t, size_t>, bool>>;
template <class Pred>
void find_char_matches(std::string_view s, Pred pred, MatchList& out);
void find_regex_matches(const Regex& re, std::string_view s, MatchList& out);
// Applies a behavior to a match list: the non-empty ranges it keeps, in order.
void kept_ranges(MatchList& matches, SplitBehavior behavior, bool invert,
                 std::vector<std::pair<size_t, size_t>>& out);
// The kept ranges as slices, appended to out.
void split_by_matches(const NormalizedString& ns, MatchList& matches, SplitBehavior behavior,
                      bool invert, std::vector<NormalizedString>& out);

// ---- Plain-text steps (the ids-only path) ---------------------------------------------------
// Each returns false when it leaves text unchanged (out untouched), else true with the result in
// out, like Normalizer::normalize_text.

// Unicode normalization.
bool unicode_normalize_text(std::string_view text, bool compose, bool compat, std::string& out);
// Rust's str::to_lowercase, as NormalizedString::lowercase.
bool lowercase_text(std::string_view text, std::string& out);
// The byte range strip() keeps.
std::pair<size_t, size_t> strip_range(std::string_view s, bool left, bool right);

// Rewrites text char by char: chars where touches(c) are replaced by what replace(c, out)
// appends (possibly nothing); runs of untouched chars are copied as they are, and not at all
// when nothing is touched.
template <class Touches, class Replace>
bool rewrite_chars(std::string_view text, std::string& out, Touches touches, Replace replace) {
  bool changed = false;
  size_t copied = 0, i = 0;
  while (i < text.size()) {
    size_t b = i;
    char32_t c = decode_utf8(text, i);
    if (!touches(c)) continue;
    if (!changed) {
      out.clear();
      out.reserve(text.size() + text.size() / 8 + 8);
      changed = true;
    }
    out.append(text.substr(copied, b - copied));
    replace(c, out);
    copied = i;
  }
  if (changed) out.append(text.substr(copied));
  return changed;
}

// Thread-local objects handed out in stack order: a step that streams its output to the next
// steps keeps its own scratch alive while they (or a nested step of the same kind) use theirs,
// and nothing is allocated once the stack is warm.
template <class T>
class Scratch {
 public:
  Scratch() {
    auto& p = pool();
    if (depth() == p.size()) p.emplace_back();
    obj_ = &p[depth()++];
  }
  ~Scratch() { --depth(); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T& operator*() { return *obj_; }
  T* operator->() { return obj_; }

 private:
  static std::deque<T>& pool() {
    thread_local std::deque<T> p;  // a deque never moves its elements
    return p;
  }
  static size_t& depth() {
    thread_local size_t d = 0;
    return d;
  }
  T* obj_;
};

// Non-owning reference to a callable taking one piece of text (valid only during the call), so
// streaming pieces through the ids-only path allocates nothing per piece.
class PieceSink {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, PieceSink>)
      PieceSink(F& fn)  // NOLINT: implicit, like a function pointer
      : obj_(&fn), call_([](void* o, std::string_view piece) { (*static_cast<F*>(o))(piece); }) {}
  void operator()(std::string_view piece) const { call_(obj_, piece); }

 private:
  void* obj_;
  void (*call_)(void*, std::string_view);
};

// Chains plain-text steps (each step(in, out) -> changed, as above) over two buffers, the
// caller's result and a scratch one, so a chain allocates nothing once warm.
class TextSteps {
 public:
  TextSteps(std::string_view text, std::string& out) : cur_(text), out_(out) {}
  TextSteps(const TextSteps&) = delete;
  TextSteps& operator=(const TextSteps&) = delete;
  template <class Step>
  void apply(Step&& step) {
    std::string& dst = where_ == In::Out ? *tmp_ : out_;
    if (step(cur_, dst)) {
      cur_ = dst;
      where_ = where_ == In::Out ? In::Tmp : In::Out;
    }
  }
  // false when no step changed the text, else true with the result in out.
  bool finish() {
    if (where_ == In::Tmp) out_.swap(*tmp_);
    return where_ != In::Text;
  }

 private:
  enum class In { Text, Out, Tmp };
  std::string_view cur_;
  std::string& out_;
  Scratch<std::string> tmp_;
  In where_ = In::Text;
};

struct Token {
  uint32_t id;
  std::string value;
  size_t start, end;  // byte offsets inside the piece's normalized text
};

struct Split {
  NormalizedString ns;
  std::vector<Token> tokens;
  bool has_tokens = false;
};

// ---- Components ------------------------------------------------------------------------------
// Components that never need alignments to produce their text (text_only()) also implement a
// plain-text variant, used by the ids-only path when the normalizer and the pre-tokenizer both can.
struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& ns) const = 0;
  virtual bool text_only() const { return false; }
  // normalize() on the text alone: false when it leaves text unchanged (out untouched), else
  // true with the result in out.
  virtual bool normalize_text(std::string_view text, std::string& out) const;
};

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // Splits one piece into zero or more pieces (appended to out).
  virtual void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const = 0;
  virtual bool text_only() const { return false; }
  // split() on the text alone: passes the text of each piece to emit, in order.
  virtual void split_text(std::string_view piece, PieceSink emit) const;
};

struct Model {
  virtual ~Model() = default;
  virtual void tokenize(std::string_view text, std::vector<Token>& out) const = 0;
  // Appends only the ids tokenize() would give (no token strings); models override it where
  // that saves work.
  virtual void tokenize_ids(std::string_view text, std::vector<uint32_t>& out) const {
    thread_local std::vector<Token> tokens;
    tokens.clear();
    tokenize(text, tokens);
    for (const auto& t : tokens) out.push_back(t.id);
  }
  virtual std::optional<uint32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string_view> id_to_token(uint32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
  // The prefix marking a word's continuation pieces ("##"), or nullopt / empty when the model
  // has none.
  virtual std::optional<std::string_view> continuing_subword_prefix() const { return {}; }
};

struct PostProcessor {
  virtual ~PostProcessor() = default;
  virtual size_t added_tokens(bool is_pair) const = 0;
  // encodings has 1 or 2 entries; returns the processed list (merged by the caller).
  virtual void process(std::vector<Encoding>& encodings, bool add_special_tokens) const = 0;
};

struct Decoder {
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Byte-level (GPT-2) byte <-> char tables.
const char32_t* byte_to_char_table();
int char_to_byte(char32_t c);  // -1 if not a byte-level char
void byte_level_offsets(Encoding& e, bool add_prefix_space);

// Encoding helpers.
void merge_encodings(Encoding& into, Encoding&& pair, bool growing_offsets);
Encoding merge_all(std::vector<Encoding>&& encodings);
void truncate_encoding(Encoding& e, size_t max_len, size_t stride, bool left);
void pad_encoding(Encoding& e, size_t target, uint32_t pad_id, uint32_t pad_type_id,
                  const std::string& pad_token, bool left);
void set_sequence_id(Encoding& e, int64_t id);

// ---- Templates ---------------------------------------------------------------------------------
template <class Pred>
void find_char_matches(std::string_view s, Pred pred, MatchList& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return;
  }
  size_t last = 0, i = 0;
  while (i < s.size()) {
    size_t b = i;
    char32_t c = decode_utf8(s, i);
    if (pred(c)) {
      if (last < b) out.push_back({{last, b}, false});
      out.push_back({{b, i}, true});
      last = i;
    }
  }
  if (s.size() > last) out.push_back({{last, s.size()}, false});
}

template <class F>
void Charsmap::for_each_prefix(std::string_view s, F on_match) const {
  if (trie.empty()) return;
  auto offset = [](uint32_t unit) -> size_t { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
  size_t node = offset(trie[0]);
  for (size_t k = 0; k < s.size(); ++k) {
    auto c = static_cast<unsigned char>(s[k]);
    if (c == 0) return;
    node ^= c;
    if (node >= trie.size()) return;
    uint32_t unit = trie[node];
    if ((unit & ((1u << 31) | 0xFF)) != c) return;
    node ^= offset(unit);
    if ((unit >> 8) & 1) {
      if (node >= trie.size()) return;
      uint32_t value = trie[node] & ((1u << 31) - 1);
      if (value >= strings.size()) return;
      size_t end = strings.find('\0', value);
      if (end == std::string::npos) end = strings.size();
      if (on_match(k + 1, std::string_view(strings).substr(value, end - value))) return;
    }
  }
}

template <class F>
void NormalizedString::rebuild(F per_char) {
  std::string out;
  AlignVec out_align;
  out.reserve(normalized.size());
  out_align.reserve(align.size());
  size_t i = 0;
  while (i < normalized.size()) {
    size_t b = i;
    char32_t c = decode_utf8(normalized, i);
    per_char(c, b, i, out, out_align);
  }
  normalized = std::move(out);
  align = std::move(out_align);
}

template <class F>
void NormalizedString::filter(F keep) {
  rebuild([&](char32_t c, size_t b, size_t e, std::string& out, AlignVec& out_align) {
    if (!keep(c)) return;
    out.append(normalized, b, e - b);
    out_align.insert(out_align.end(), align.begin() + b, align.begin() + e);
  });
}

template <class F>
void NormalizedString::map(F fn) {
  rebuild([&](char32_t c, size_t b, size_t, std::string& out, AlignVec& out_align) {
    size_t before = out.size();
    append_utf8(out, fn(c));
    out_align.insert(out_align.end(), out.size() - before, align[b]);
  });
}

}  // namespace ember::tokenizers::detail
