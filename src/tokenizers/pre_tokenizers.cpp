// Pre-tokenizers: split a normalized piece into words, each keeping its alignments.
#include <algorithm>
#include <cstring>

#include "json_util.hpp"

namespace ember::tokenizers::detail {

void PreTokenizer::split_text(std::string_view, PieceSink) const {
  fail("internal: this pre-tokenizer has no text-only mode");
}

namespace {

#include "unicode_scripts.inc"

constexpr uint16_t kScriptUnknown = 0xFFFF, kScriptAny = 0xFFFE;

uint16_t script_index(const char* name) {
  for (size_t i = 0; i < std::size(kScriptNames); ++i)
    if (std::strcmp(kScriptNames[i], name) == 0) return static_cast<uint16_t>(i);
  return kScriptUnknown;
}

uint16_t raw_script(char32_t c) {
  auto it = std::upper_bound(std::begin(kScriptRanges), std::end(kScriptRanges), c,
                             [](char32_t v, const ScriptRange& r) { return v < r.first; });
  if (it == std::begin(kScriptRanges)) return kScriptUnknown;
  --it;
  return c <= it->last ? it->script : kScriptUnknown;
}

// The reference merges Hiragana, Katakana and the prolonged sound mark into Han, and treats the
// space as compatible with any script.
uint16_t fixed_script(char32_t c) {
  static const uint16_t han = script_index("Han"), hiragana = script_index("Hiragana"),
                        katakana = script_index("Katakana");
  if (c == 0x30FC) return han;
  if (c == ' ') return kScriptAny;
  uint16_t s = raw_script(c);
  if (s == kScriptUnknown) return kScriptAny;  // the reference's table has no Unknown
  return (s == hiragana || s == katakana) ? han : s;
}

const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const Json& j, const char* name, const std::string& ctx,
                             SplitBehavior def) {
  std::string b = get_string(j, name, ctx, "");
  if (b.empty()) return def;
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail(ctx + "." + name + ": unknown behavior '" + b + "'");
}

template <class Pred>
void split_chars(NormalizedString&& piece, Pred pred, SplitBehavior behavior,
                 std::vector<NormalizedString>& out) {
  thread_local MatchList m;
  find_char_matches(piece.normalized, pred, m);
  split_by_matches(piece, m, behavior, false, out);
}

// The pieces a behavior keeps from matches over piece (the ids-only path); m is consumed before
// anything is emitted, so callers may keep it thread-local.
void emit_kept_ranges(std::string_view piece, MatchList& m, SplitBehavior behavior, bool invert,
                      PieceSink emit) {
  Scratch<std::vector<std::pair<size_t, size_t>>> ranges;
  kept_ranges(m, behavior, invert, *ranges);
  for (auto [b, e] : *ranges) emit(piece.substr(b, e - b));
}

// split_chars on plain text.
template <class Pred>
void split_chars_text(std::string_view piece, Pred pred, SplitBehavior behavior, PieceSink emit) {
  thread_local MatchList m;
  find_char_matches(piece, pred, m);
  emit_kept_ranges(piece, m, behavior, false, emit);
}

// A regex split on plain text.
void split_regex_text(const Regex& re, std::string_view piece, SplitBehavior behavior, bool invert,
                      PieceSink emit) {
  thread_local MatchList m;
  find_regex_matches(re, piece, m);
  emit_kept_ranges(piece, m, behavior, invert, emit);
}

// The byte-level text of s: each byte becomes its char's UTF-8 (one or two bytes).
void to_byte_level(std::string_view s, std::string& out) {
  struct Utf8 {
    char bytes[256][2];
    uint8_t len[256];
  };
  static const Utf8 utf8 = [] {
    Utf8 u{};
    const char32_t* table = byte_to_char_table();
    for (size_t b = 0; b < 256; ++b) {
      std::string c;
      append_utf8(c, table[b]);
      u.len[b] = static_cast<uint8_t>(c.size());
      std::memcpy(u.bytes[b], c.data(), c.size());
    }
    return u;
  }();
  out.resize(s.size() * 2);
  char* p = out.data();
  for (char ch : s) {
    auto b = static_cast<unsigned char>(ch);
    p[0] = utf8.bytes[b][0];
    p[1] = utf8.bytes[b][1];
    p += utf8.len[b];
  }
  out.resize(static_cast<size_t>(p - out.data()));
}

struct ByteLevelPre : PreTokenizer {
  bool add_prefix_space = true, use_regex = true;
  Regex re{kByteLevelPattern};
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    if (add_prefix_space && (piece.normalized.empty() || piece.normalized[0] != ' '))
      piece.prepend(" ");
    size_t first = out.size();
    if (use_regex) {
      thread_local MatchList m;
      find_regex_matches(re, piece.normalized, m);
      split_by_matches(piece, m, SplitBehavior::Isolated, false, out);
    } else {
      out.push_back(std::move(piece));
    }
    const char32_t* table = byte_to_char_table();
    for (size_t k = first; k < out.size(); ++k) {
      NormalizedString& ns = out[k];
      // Every byte becomes one char aligned with the original char it belongs to.
      std::string text;
      AlignVec al;
      text.reserve(ns.normalized.size() * 2);
      al.reserve(ns.normalized.size() * 2);
      for (size_t i = 0; i < ns.normalized.size(); ++i) {
        size_t before = text.size();
        append_utf8(text, table[static_cast<unsigned char>(ns.normalized[i])]);
        al.insert(al.end(), text.size() - before, ns.align[i]);
      }
      ns.normalized = std::move(text);
      ns.align = std::move(al);
    }
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    Scratch<std::string> prefixed, mapped;
    if (add_prefix_space && !piece.empty() && piece[0] != ' ') {
      prefixed->assign(1, ' ');
      prefixed->append(piece);
      piece = *prefixed;
    }
    auto emit_range = [&](size_t b, size_t e) {
      if (b == e) return;
      to_byte_level(piece.substr(b, e - b), *mapped);
      emit(*mapped);
    };
    if (!use_regex) {
      emit_range(0, piece.size());
      return;
    }
    // Isolated split: the matches and the text between them.
    size_t prev = 0;
    re.for_each_match(piece, [&](size_t b, size_t e) {
      emit_range(prev, b);
      emit_range(b, e);
      prev = e;
    });
    emit_range(prev, piece.size());
  }
};

struct WhitespacePre : PreTokenizer {
  Regex re{R"(\w+|[^\w\s]+)"};
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    thread_local MatchList m;
    find_regex_matches(re, piece.normalized, m);
    split_by_matches(piece, m, SplitBehavior::Removed, true, out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_regex_text(re, piece, SplitBehavior::Removed, true, emit);
  }
};

struct WhitespaceSplitPre : PreTokenizer {
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    split_chars(std::move(piece), is_whitespace, SplitBehavior::Removed, out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_chars_text(piece, is_whitespace, SplitBehavior::Removed, emit);
  }
};

// The words of BERT's pre-tokenizer, as byte ranges: whitespace separates (Removed), then each
// punctuation char is a word of its own (Isolated). No char is both, so one pass does both
// splits.
template <class F>
void for_each_bert_word(std::string_view s, F on_word) {
  size_t word = 0, i = 0;
  while (i < s.size()) {
    size_t b = i;
    char32_t c = decode_utf8(s, i);
    bool space = is_whitespace(c);
    if (!space && !is_bert_punctuation(c)) continue;
    if (word < b) on_word(word, b);
    if (!space) on_word(b, i);
    word = i;
  }
  if (word < s.size()) on_word(word, s.size());
}

struct BertPre : PreTokenizer {
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    for_each_bert_word(piece.normalized,
                       [&](size_t b, size_t e) { out.push_back(piece.slice(b, e)); });
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    for_each_bert_word(piece, [&](size_t b, size_t e) { emit(piece.substr(b, e - b)); });
  }
};

struct PunctuationPre : PreTokenizer {
  SplitBehavior behavior = SplitBehavior::Isolated;
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    split_chars(std::move(piece), is_bert_punctuation, behavior, out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_chars_text(piece, is_bert_punctuation, behavior, emit);
  }
};

struct DigitsPre : PreTokenizer {
  bool individual = false;
  SplitBehavior behavior() const {
    return individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
  }
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    split_chars(std::move(piece), is_numeric, behavior(), out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_chars_text(piece, is_numeric, behavior(), emit);
  }
};

struct CharDelimiterPre : PreTokenizer {
  char32_t delimiter = ' ';
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    char32_t d = delimiter;
    split_chars(
        std::move(piece), [d](char32_t c) { return c == d; }, SplitBehavior::Removed, out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    char32_t d = delimiter;
    split_chars_text(
        piece, [d](char32_t c) { return c == d; }, SplitBehavior::Removed, emit);
  }
};

// Metaspace words as byte ranges: each starts at the text start or at a replacement char
// (MergedWithNext on that char). rep is one valid UTF-8 char, so its byte matches are chars.
template <class F>
void for_each_metaspace_word(std::string_view s, std::string_view rep, F on_word) {
  size_t word = 0;
  for (size_t at = s.find(rep, 1); at != std::string_view::npos;
       at = s.find(rep, at + rep.size())) {
    on_word(word, at);
    word = at;
  }
  if (word < s.size()) on_word(word, s.size());
}

struct MetaspacePre : PreTokenizer {
  std::string rep_str;  // the replacement char
  enum class Prepend { Always, First, Never } scheme = Prepend::Always;
  bool split_words = true;
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    std::vector<std::pair<size_t, size_t>> spaces;
    for (size_t i = 0; i < piece.normalized.size(); ++i)
      if (piece.normalized[i] == ' ') spaces.push_back({i, i + 1});
    piece.replace_matches(spaces, rep_str);
    bool starts = piece.normalized.compare(0, rep_str.size(), rep_str) == 0;
    if (scheme == Prepend::Always && !starts) piece.prepend(rep_str);
    if (scheme == Prepend::First && !starts && piece.orig_start == 0) piece.prepend(rep_str);
    if (split_words) {
      for_each_metaspace_word(piece.normalized, rep_str,
                              [&](size_t b, size_t e) { out.push_back(piece.slice(b, e)); });
    } else {
      out.push_back(std::move(piece));
    }
  }
  // "first" depends on where the piece lies in the original text, which plain text lacks.
  bool text_only() const override { return scheme != Prepend::First; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    if (piece.empty()) return;
    Scratch<std::string> text;
    text->clear();
    // Once spaces are replaced, the text starts with the replacement when the piece starts
    // with a space or with the replacement itself.
    bool prepend = scheme == Prepend::Always && piece.substr(0, 1) != " " &&
                   piece.substr(0, rep_str.size()) != rep_str;
    if (prepend) *text += rep_str;
    for (char ch : piece) {
      if (ch == ' ')
        *text += rep_str;
      else
        *text += ch;
    }
    if (split_words)
      for_each_metaspace_word(*text, rep_str, [&](size_t b, size_t e) {
        emit(std::string_view(*text).substr(b, e - b));
      });
    else
      emit(*text);
  }
};

struct SplitPre : PreTokenizer {
  std::unique_ptr<Regex> pattern;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    thread_local MatchList m;
    find_regex_matches(*pattern, piece.normalized, m);
    split_by_matches(piece, m, behavior, invert, out);
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_regex_text(*pattern, piece, behavior, invert, emit);
  }
};

// Pieces of `length` chars (the last one may be shorter).
template <class F>
void for_each_fixed_length(std::string_view s, size_t length, F on_piece) {
  size_t i = 0, start = 0, n = 0;
  while (i < s.size()) {
    i += utf8_len(static_cast<unsigned char>(s[i]));
    if (++n == length) {
      on_piece(start, i);
      start = i;
      n = 0;
    }
  }
  if (start < s.size()) on_piece(start, s.size());
}

struct FixedLengthPre : PreTokenizer {
  size_t length = 5;
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    for_each_fixed_length(piece.normalized, length,
                          [&](size_t b, size_t e) { out.push_back(piece.slice(b, e)); });
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    for_each_fixed_length(piece, length, [&](size_t b, size_t e) { emit(piece.substr(b, e - b)); });
  }
};

// Pieces start at script changes only: leading chars of script Any are dropped, as in the
// reference (its first range starts at the first char with a real script).
template <class F>
void for_each_script_run(std::string_view s, F on_run) {
  bool have_last = false;
  uint16_t last = 0;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t b = i;
    uint16_t script = fixed_script(decode_utf8(s, i));
    if (script == kScriptAny) continue;
    if (!have_last || last != script) {
      if (have_last && start < b) on_run(start, b);
      start = b;
    }
    last = script;
    have_last = true;
  }
  if (have_last && start < s.size()) on_run(start, s.size());
}

struct UnicodeScriptsPre : PreTokenizer {
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    for_each_script_run(piece.normalized,
                        [&](size_t b, size_t e) { out.push_back(piece.slice(b, e)); });
  }
  bool text_only() const override { return true; }
  void split_text(std::string_view piece, PieceSink emit) const override {
    for_each_script_run(piece, [&](size_t b, size_t e) { emit(piece.substr(b, e - b)); });
  }
};

struct SequencePre : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void split(NormalizedString&& piece, std::vector<NormalizedString>& out) const override {
    split_from(0, std::move(piece), out);
  }
  bool text_only() const override {
    return std::all_of(items.begin(), items.end(), [](const auto& p) { return p->text_only(); });
  }
  void split_text(std::string_view piece, PieceSink emit) const override {
    split_text_from(0, piece, emit);
  }

 private:
  // Depth first: each piece goes through the remaining pre-tokenizers before its neighbour, so
  // on long inputs only the pieces of one level's split are alive at a time instead of every
  // intermediate piece of the whole text (which cost more in page faults than in splitting).
  // Each pre-tokenizer acts on pieces independently, so the output order is unchanged.
  void split_from(size_t item, NormalizedString&& piece, std::vector<NormalizedString>& out) const {
    if (piece.empty()) return;
    if (item == items.size()) {
      out.push_back(std::move(piece));
      return;
    }
    // Taken before splitting: a nested Sequence must use the next level's vector.
    Scratch<std::vector<NormalizedString>> level;
    level->clear();
    items[item]->split(std::move(piece), *level);
    for (auto& s : *level) split_from(item + 1, std::move(s), out);
  }
  void split_text_from(size_t item, std::string_view piece, PieceSink emit) const {
    if (piece.empty()) return;
    if (item == items.size()) {
      emit(piece);
      return;
    }
    auto next = [&](std::string_view p) { split_text_from(item + 1, p, emit); };
    items[item]->split_text(piece, next);
  }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& ctx) {
  std::string type = type_of(j, ctx);
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = get_bool(j, "add_prefix_space", ctx, true);
    p->use_regex = get_bool(j, "use_regex", ctx, true);
    get_bool(j, "trim_offsets", ctx, true);
    return p;
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePre>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPre>();
  if (type == "BertPreTokenizer") return std::make_unique<BertPre>();
  if (type == "Punctuation") {
    auto p = std::make_unique<PunctuationPre>();
    p->behavior = parse_behavior(j, "behavior", ctx, SplitBehavior::Isolated);
    return p;
  }
  if (type == "Digits") {
    auto p = std::make_unique<DigitsPre>();
    p->individual = get_bool(j, "individual_digits", ctx, false);
    return p;
  }
  if (type == "CharDelimiterSplit") {
    auto p = std::make_unique<CharDelimiterPre>();
    std::string d = get_string(j, "delimiter", ctx, "", true);
    if (d.empty() || count_chars(d) != 1 || !is_valid_utf8(d))
      fail(ctx + ".delimiter: expected one char");
    size_t i = 0;
    p->delimiter = decode_utf8(d, i);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    std::string r = get_string(j, "replacement", ctx, "\xE2\x96\x81");
    if (r.empty() || count_chars(r) != 1 || !is_valid_utf8(r))
      fail(ctx + ".replacement: expected one char");
    p->rep_str = r;
    std::string scheme = get_string(j, "prepend_scheme", ctx, "");
    if (scheme.empty()) {
      scheme = get_bool(j, "add_prefix_space", ctx, true) ? "always" : "never";
    }
    if (scheme == "always") {
      p->scheme = MetaspacePre::Prepend::Always;
    } else if (scheme == "first") {
      p->scheme = MetaspacePre::Prepend::First;
    } else if (scheme == "never") {
      p->scheme = MetaspacePre::Prepend::Never;
    } else {
      fail(ctx + ".prepend_scheme: unknown value '" + scheme + "'");
    }
    p->split_words = get_bool(j, "split", ctx, true);
    return p;
  }
  if (type == "Split") {
    auto p = std::make_unique<SplitPre>();
    const Json* pat = field(j, "pattern");
    if (!pat) fail(ctx + ".pattern: missing required field");
    p->pattern = make_pattern(*pat, ctx + ".pattern");
    p->behavior = parse_behavior(j, "behavior", ctx, SplitBehavior::Isolated);
    p->invert = get_bool(j, "invert", ctx, false);
    return p;
  }
  if (type == "UnicodeScripts") return std::make_unique<UnicodeScriptsPre>();
  if (type == "FixedLength") {
    auto p = std::make_unique<FixedLengthPre>();
    p->length = get_uint(j, "length", ctx, 5);
    if (p->length == 0) fail(ctx + ".length: must be positive");
    return p;
  }
  if (type == "Sequence") {
    auto p = std::make_unique<SequencePre>();
    const Json& items = get_array(j, "pretokenizers", ctx);
    for (size_t k = 0; k < items.size(); ++k)
      p->items.push_back(
          make_pre_tokenizer(items[k], ctx + ".pretokenizers[" + std::to_string(k) + "]"));
    return p;
  }
  fail(ctx + ".type: unknown pre_tokenizer type '" + type + "'");
}

}  // namespace ember::tokenizers::detail
