// UTF-8 and Unicode helpers, the PCRE2 wrapper and NormalizedString transformations.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>

#include "ember/tokenizers/lowercase.hpp"
#include "internal.hpp"

namespace ember::tokenizers::detail {

void fail(const std::string& message) {
  throw TokenizerError(message);
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

// ---- Unicode predicates ---------------------------------------------------------------------
static utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_whitespace(char32_t c) {
  // The White_Space property (Rust's char::is_whitespace).
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_alphanumeric(char32_t c) {
  auto cat = category(c);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || is_numeric(c);
}

bool is_punctuation(char32_t c) {
  auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_bert_punctuation(char32_t c) {
  if (c < 0x80)
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
  return is_punctuation(c);
}

bool is_other_category(char32_t c) {
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO;
}

bool is_mark_nonspacing(char32_t c) {
  return c >= 0x300 && category(c) == UTF8PROC_CATEGORY_MN;
}

bool is_combining_mark(char32_t c) {
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

void to_lowercase(char32_t c, std::vector<char32_t>& out) {
  if (c < 0x80) {
    out.push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
    return;
  }
  // utf8proc has only the simple mapping; U+0130 is the one unconditional multi-char lowercase.
  if (c == 0x130) {
    out.push_back(0x69);
    out.push_back(0x307);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

// ---- Regex ------------------------------------------------------------------------------------
// onig's Unicode \w is Alphabetic|Mark|Decimal_Number|Connector_Punctuation and \s is White_Space;
// PCRE2's UCP classes differ at the edges, so spell them out.
static std::string translate_pattern(const std::string& p) {
  static const std::string kWordItems = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200c}\\x{200d}";
  static const std::string kSpaceItems =
      "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
      "\\x{205f}\\x{3000}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char ch = p[i];
    if (ch == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      if (n == 'w' || n == 's') {
        const std::string& items = n == 'w' ? kWordItems : kSpaceItems;
        out += in_class ? items : "[" + items + "]";
        ++i;
        continue;
      }
      if ((n == 'W' || n == 'S') && !in_class) {
        out += "[^" + (n == 'W' ? kWordItems : kSpaceItems) + "]";
        ++i;
        continue;
      }
      out += ch;
      out += n;
      ++i;
      continue;
    }
    if (ch == '[' && !in_class) {
      in_class = true;
      out += ch;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (ch == ']' && in_class) in_class = false;
    out += ch;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  if (literal && !pattern.empty()) {
    // Both pattern and text are valid UTF-8, so every byte match starts on a char boundary.
    literal_ = pattern;
    return;
  }
  std::string translated = literal ? pattern : translate_pattern(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  uint32_t flags = PCRE2_UTF | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             flags, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    fail("invalid regex '" + pattern + "': " + reinterpret_cast<char*>(buf));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

namespace {
struct MatchData {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(data); }
};
}  // namespace

bool Regex::next_match(std::string_view text, size_t& pos, size_t& start, size_t& end) const {
  if (pos > text.size()) return false;
  if (!literal_.empty()) {
    size_t at = text.find(literal_, pos);
    if (at == std::string_view::npos) {
      pos = text.size() + 1;
      return false;
    }
    start = at;
    end = pos = at + literal_.size();
    return true;
  }
  thread_local MatchData md;
  int rc = pcre2_match(static_cast<pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(text.data()),
                       text.size(), pos, PCRE2_NO_UTF_CHECK, md.data, nullptr);
  if (rc < 0) {
    if (rc == PCRE2_ERROR_NOMATCH) {
      pos = text.size() + 1;
      return false;
    }
    // PCRE2's match limit stops catastrophic backtracking, e.g. (a+)+$ on a long run of a's.
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(rc, buf, sizeof(buf));
    constexpr size_t kShown = 200;
    const std::string shown =
        pattern_.size() > kShown ? pattern_.substr(0, kShown) + "..." : pattern_;
    fail(
        "regex '" + shown + "' failed on this input: " + reinterpret_cast<char*>(buf) +
        (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT
             ? " (the pattern backtracks too much; PCRE2's default limits apply)"
             : ""));
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
  start = ov[0];
  end = ov[1];
  if (end != start)
    pos = end;
  else if (end >= text.size())
    pos = text.size() + 1;
  else
    pos = end + utf8_len(static_cast<unsigned char>(text[end]));
  return true;
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  for_each_match(text, [&](size_t s, size_t e) { out.push_back({s, e}); });
}

void find_regex_matches(const Regex& re, std::string_view s, MatchList& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return;
  }
  thread_local std::vector<std::pair<size_t, size_t>> found;
  found.clear();
  re.find_all(s, found);
  size_t prev = 0;
  for (auto [b, e] : found) {
    if (prev != b) out.push_back({{prev, b}, false});
    out.push_back({{b, e}, true});
    prev = e;
  }
  if (prev != s.size()) out.push_back({{prev, s.size()}, false});
}

void kept_ranges(MatchList& m, SplitBehavior behavior, bool invert,
                 std::vector<std::pair<size_t, size_t>>& out) {
  out.clear();
  if (invert)
    for (auto& x : m) x.second = !x.second;
  // (range, remove)
  thread_local MatchList merged;
  merged.clear();
  MatchList* res = &merged;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (auto& x : m) x.second = false;
      res = &m;
      break;
    case SplitBehavior::Removed:
      res = &m;
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (auto& [r, is_match] : m) {
        if (is_match == prev && !merged.empty())
          merged.back().first.second = r.second;
        else
          merged.push_back({r, false});
        prev = is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (auto& [r, is_match] : m) {
        if (is_match && !prev && !merged.empty())
          merged.back().first.second = r.second;
        else
          merged.push_back({r, false});
        prev = is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (size_t k = m.size(); k-- > 0;) {
        auto& [r, is_match] = m[k];
        if (is_match && !prev && !merged.empty())
          merged.back().first.first = r.first;
        else
          merged.push_back({r, false});
        prev = is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
  }
  for (auto& [r, remove] : *res)
    if (!remove && r.first != r.second) out.push_back(r);  // the caller drops empty pieces anyway
}

void split_by_matches(const NormalizedString& ns, MatchList& m, SplitBehavior behavior, bool invert,
                      std::vector<NormalizedString>& out) {
  thread_local std::vector<std::pair<size_t, size_t>> ranges;
  kept_ranges(m, behavior, invert, ranges);
  for (auto [b, e] : ranges) out.push_back(ns.slice(b, e));
}

// ---- NormalizedString -------------------------------------------------------------------------
NormalizedString NormalizedString::from_original(std::string_view text, uint32_t shift) {
  NormalizedString ns;
  ns.normalized.assign(text);
  ns.align.resize(text.size());
  ns.orig_start = shift;
  ns.orig_end = shift + static_cast<uint32_t>(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t n = utf8_len(static_cast<unsigned char>(text[i]));
    Align a{static_cast<uint32_t>(shift + i), static_cast<uint32_t>(shift + i + n)};
    for (size_t k = 0; k < n; ++k) ns.align[i + k] = a;
    i += n;
  }
  return ns;
}

std::optional<std::pair<size_t, size_t>> NormalizedString::to_original(size_t start,
                                                                       size_t end) const {
  if (start == end) return std::pair<size_t, size_t>{start, end};  // reference quirk
  if (start > end) return std::nullopt;
  if (normalized.empty() && start == 0 && end == 0)
    return std::pair<size_t, size_t>{orig_start, orig_end};
  if (end > align.size()) return std::nullopt;
  return std::pair<size_t, size_t>{align[start].start, align[end - 1].end};
}

NormalizedString NormalizedString::slice(size_t start, size_t end) const {
  NormalizedString s;
  s.normalized.assign(normalized, start, end - start);
  s.align.assign(align.begin() + start, align.begin() + end);
  if (start < end) {
    s.orig_start = align[start].start;
    s.orig_end = align[end - 1].end;
  } else {
    s.orig_start = s.orig_end = start < align.size() ? align[start].start : orig_end;
  }
  return s;
}

void NormalizedString::transform(const std::vector<CharChange>& changes, size_t initial_offset) {
  transform_range(0, normalized.size(), changes, initial_offset);
}

void NormalizedString::transform_range(size_t start, size_t end,
                                       const std::vector<CharChange>& changes,
                                       size_t initial_offset) {
  thread_local std::vector<uint8_t> lens;
  lens.clear();
  for (size_t i = start; i < end;) {
    size_t n = utf8_len(static_cast<unsigned char>(normalized[i]));
    lens.push_back(static_cast<uint8_t>(n));
    i += n;
  }
  size_t ri = 0;
  size_t offset = start;
  for (; ri < initial_offset && ri < lens.size(); ++ri) offset += lens[ri];
  std::string out;
  AlignVec out_align;
  out.reserve(end - start);
  out_align.reserve(end - start);
  for (const auto& [c, change] : changes) {
    Align a;
    if (change > 0) {
      a = offset < 1 ? Align{orig_start, orig_start} : align.at(offset - 1);
    } else {
      if (offset >= align.size()) fail("normalization produced an inconsistent alignment");
      a = align[offset];
      if (ri < lens.size()) offset += lens[ri++];
      for (int32_t k = 0; k < -change && ri < lens.size(); ++k) offset += lens[ri++];
    }
    size_t before = out.size();
    append_utf8(out, c);
    out_align.insert(out_align.end(), out.size() - before, a);
  }
  normalized.replace(start, end - start, out);
  align.erase(align.begin() + start, align.begin() + end);
  align.insert(align.begin() + start, out_align.begin(), out_align.end());
}

void NormalizedString::prepend(std::string_view s) {
  if (normalized.empty() || s.empty()) return;
  // The first new char takes the place of the first char; the rest (and the old first char)
  // are insertions aligned with it.
  size_t i = 0;
  char32_t next = decode_utf8(normalized, i);
  std::vector<CharChange> changes;
  size_t k = 0;
  bool first = true;
  while (k < s.size()) {
    changes.push_back({decode_utf8(s, k), first ? 0 : 1});
    first = false;
  }
  changes.push_back({next, 1});
  transform_range(0, i, changes, 0);
}

void NormalizedString::replace_matches(const std::vector<std::pair<size_t, size_t>>& matches,
                                       std::string_view content) {
  if (matches.empty()) return;
  std::string out;
  AlignVec out_align;
  out.reserve(normalized.size());
  out_align.reserve(normalized.size());
  size_t last = 0;
  for (auto [b, e] : matches) {
    out.append(normalized, last, b - last);
    out_align.insert(out_align.end(), align.begin() + last, align.begin() + b);
    Align a = e < 1 ? Align{orig_start, orig_start} : align[e - 1];
    out.append(content);
    out_align.insert(out_align.end(), content.size(), a);
    last = e;
  }
  out.append(normalized, last, std::string::npos);
  out_align.insert(out_align.end(), align.begin() + last, align.end());
  normalized = std::move(out);
  align = std::move(out_align);
}

void NormalizedString::lowercase() {
  bool ascii = true;
  for (char ch : normalized) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    for (char& ch : normalized)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    return;
  }
  std::string out;
  AlignVec out_align;
  out.reserve(normalized.size());
  out_align.reserve(normalized.size());
  std::vector<char32_t> lower;
  size_t i = 0;
  while (i < normalized.size()) {
    size_t b = i;
    char32_t c = decode_utf8(normalized, i);
    lower.clear();
    to_lowercase(c, lower);
    // The first char replaces c; extra chars are insertions aligned like c's last byte.
    for (char32_t l : lower) {
      size_t before = out.size();
      append_utf8(out, l);
      out_align.insert(out_align.end(), out.size() - before, align[b]);
    }
  }
  normalized = std::move(out);
  align = std::move(out_align);
}

bool lowercase_text(std::string_view text, std::string& out) {
  thread_local std::vector<char32_t> lower;
  return rewrite_chars(
      text, out, [](char32_t c) { return c >= 0x80 || (c >= 'A' && c <= 'Z'); },
      [](char32_t c, std::string& o) {
        if (c < 0x80) {
          o += static_cast<char>(c + 32);
          return;
        }
        lower.clear();
        to_lowercase(c, lower);
        for (char32_t l : lower) append_utf8(o, l);
      });
}

std::pair<size_t, size_t> strip_range(std::string_view s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t j = b;
      if (!is_whitespace(decode_utf8(s, j))) break;
      b = j;
    }
  }
  if (right) {
    while (e > b) {
      size_t j = e - 1;
      while (j > b && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
      size_t k = j;
      if (!is_whitespace(decode_utf8(s, k))) break;
      e = j;
    }
  }
  return {b, e};
}

void NormalizedString::strip(bool left, bool right) {
  auto [b, e] = strip_range(normalized, left, right);
  if (b == 0 && e == normalized.size()) return;
  normalized = normalized.substr(b, e - b);
  AlignVec kept;
  kept.assign(align.begin() + b, align.begin() + e);
  align = std::move(kept);
}

// Unicode normalization with the reference's change bookkeeping: decomposed extra chars are
// insertions (+1), reordering moves (char, change) pairs together, and composing L+C gives
// change(L) + change(C) - 1.
static int ccc(char32_t c) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

static void decompose(std::string_view s, bool compat, std::vector<CharChange>& out) {
  utf8proc_int32_t buf[32];
  int opts = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_utf8(s, i);
    if (c < 0xC0) {
      if (c < 0x80 || !compat) {
        out.push_back({c, 0});
        continue;
      }
    }
    int bound = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                 static_cast<utf8proc_option_t>(opts), &bound);
    if (n <= 0 || n > 32) {
      out.push_back({c, 0});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k)
      out.push_back({static_cast<char32_t>(buf[k]), k == 0 ? 0 : 1});
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  size_t k = 0;
  while (k < out.size()) {
    if (out[k].c < 0x300 || ccc(out[k].c) == 0) {
      ++k;
      continue;
    }
    size_t run_end = k;
    while (run_end < out.size() && out[run_end].c >= 0x300 && ccc(out[run_end].c) != 0) ++run_end;
    if (run_end - k > 1)
      std::stable_sort(
          out.begin() + k, out.begin() + run_end,
          [](const CharChange& a, const CharChange& b) { return ccc(a.c) < ccc(b.c); });
    k = run_end;
  }
}

static bool ascii_only(const std::string& s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) >= 0x80) return false;
  return true;
}

void NormalizedString::nfd(bool compat) {
  if (ascii_only(normalized)) return;
  std::vector<CharChange> changes;
  decompose(normalized, compat, changes);
  transform(changes, 0);
}

static std::optional<char32_t> compose_pair(char32_t a, char32_t b) {
  utf8proc_int32_t buf[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
  if (n == 1) return static_cast<char32_t>(buf[0]);
  return std::nullopt;
}

// Canonical composition of a decomposed, canonically ordered sequence (appended to out).
static void compose(const std::vector<CharChange>& d, std::vector<CharChange>& out) {
  long starter = -1;
  int last_class = 256;
  for (const auto& cc : d) {
    int cls = cc.c < 0x300 ? 0 : ccc(cc.c);
    if (starter >= 0 && cc.c >= 0x300 && (last_class < cls || last_class == 0)) {
      if (auto comp = compose_pair(out[starter].c, cc.c)) {
        out[starter].c = *comp;
        out[starter].change += cc.change - 1;
        continue;
      }
    }
    if (cls == 0) {
      starter = static_cast<long>(out.size());
      last_class = 0;
    } else {
      last_class = cls;
    }
    out.push_back(cc);
  }
}

void NormalizedString::nfc(bool compat) {
  if (ascii_only(normalized)) return;
  std::vector<CharChange> d;
  decompose(normalized, compat, d);
  std::vector<CharChange> out;
  out.reserve(d.size());
  compose(d, out);
  transform(out, 0);
}

// Chars that Unicode normalization leaves in place whatever surrounds them ("inert"): starters
// without a decomposition that no composition takes as its second char. Decomposition is per
// char, canonical reordering stops at starters and composition restarts at each starter that
// does not compose with the previous one, so a text normalizes as the concatenation of its runs
// cut before every inert char; only runs that hold another char need the full algorithm.
static bool is_inert(char32_t c) {
  if (c < 0x80) return true;
  // Hangul jamo and syllables decompose and compose arithmetically, outside utf8proc's tables.
  if ((c >= 0x1100 && c <= 0x11FF) || (c >= 0xAC00 && c <= 0xD7A3)) return false;
  // Second chars of compositions: taken from the canonical decompositions, where every such
  // char is the last one of a two-char mapping (listing each non-first char is a superset).
  static const std::vector<bool> second = [] {
    std::vector<bool> s(0x110000);
    utf8proc_int32_t buf[8];
    for (utf8proc_int32_t cp = 0x80; cp < 0x110000; ++cp) {
      const utf8proc_property_t* p = utf8proc_get_property(cp);
      if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;
      int bound = 0;
      utf8proc_ssize_t n = utf8proc_decompose_char(cp, buf, 8, UTF8PROC_DECOMPOSE, &bound);
      for (utf8proc_ssize_t k = 1; k < n && n <= 8; ++k) s[static_cast<size_t>(buf[k])] = true;
    }
    return s;
  }();
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  return p->combining_class == 0 && p->decomp_seqindex == UINT16_MAX && !second[c];
}

bool unicode_normalize_text(std::string_view text, bool compose_chars, bool compat,
                            std::string& out) {
  thread_local std::vector<CharChange> decomposed, composed;
  thread_local std::string run_text;
  bool changed = false;
  size_t copied = 0;     // text before this is in out (once changed)
  size_t run_start = 0;  // start of the current run: the last inert char or the text start
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      run_start = i++;
      continue;
    }
    size_t b = i;
    if (is_inert(decode_utf8(text, i))) {
      run_start = b;
      continue;
    }
    size_t run_end = i;
    while (run_end < text.size()) {
      size_t j = run_end;
      if (is_inert(decode_utf8(text, j))) break;
      run_end = j;
    }
    std::string_view run = text.substr(run_start, run_end - run_start);
    decomposed.clear();
    decompose(run, compat, decomposed);
    const std::vector<CharChange>* chars = &decomposed;
    if (compose_chars) {
      composed.clear();
      compose(decomposed, composed);
      chars = &composed;
    }
    run_text.clear();
    for (const auto& cc : *chars) append_utf8(run_text, cc.c);
    if (run_text != run) {
      if (!changed) {
        out.clear();
        out.reserve(text.size() + text.size() / 8);
        changed = true;
      }
      out.append(text, copied, run_start - copied);
      out += run_text;
      copied = run_end;
    }
    i = run_end;
  }
  if (changed) out.append(text, copied);
  return changed;
}

}  // namespace ember::tokenizers::detail

namespace ember::tokenizers {

std::string lowercase(std::string_view text) {
  if (!is_valid_utf8(text)) throw TokenizerError("lowercase: the text is not valid UTF-8");
  std::string out;
  if (!detail::lowercase_text(text, out)) return std::string(text);
  return out;
}

}  // namespace ember::tokenizers
