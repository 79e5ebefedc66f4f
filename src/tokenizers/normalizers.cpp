// Normalizers: each edits a NormalizedString in place, keeping byte alignments to the original.
#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "json_util.hpp"

namespace ember::tokenizers::detail {

bool Normalizer::normalize_text(std::string_view, std::string&) const {
  fail("internal: this normalizer has no text-only mode");
}

namespace {

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// What clean_text does to one char.
enum class CleanAction { Keep, Drop, Space };
CleanAction bert_clean_action(char32_t c) {
  bool control = !(c == '\t' || c == '\n' || c == '\r') && is_other_category(c);
  if (c == 0 || c == 0xFFFD || control) return CleanAction::Drop;
  return is_whitespace(c) ? CleanAction::Space : CleanAction::Keep;
}

bool strip_nonspacing_marks_text(std::string_view text, std::string& out) {
  return rewrite_chars(text, out, is_mark_nonspacing, [](char32_t, std::string&) {});
}

struct BertNormalizer : Normalizer {
  bool clean_text = true, handle_chinese = true, strip_accents = true, lowercase = true;

  // Drops NUL, U+FFFD and control chars and turns whitespace into ' ', in one pass; each kept
  // char keeps its alignment.
  static void clean(NormalizedString& ns) {
    std::string& text = ns.normalized;
    size_t out = 0, i = 0;
    while (i < text.size()) {
      size_t b = i;
      CleanAction action = bert_clean_action(decode_utf8(text, i));
      if (action == CleanAction::Drop) continue;
      if (action == CleanAction::Space) {
        // Every White_Space char is one to three bytes; it becomes one ' '.
        text[out] = ' ';
        ns.align[out] = ns.align[b];
        ++out;
        continue;
      }
      for (size_t k = b; k < i; ++k, ++out) {
        text[out] = text[k];
        ns.align[out] = ns.align[k];
      }
    }
    text.resize(out);
    ns.align.resize(out);
  }
  void normalize(NormalizedString& ns) const override {
    if (clean_text) clean(ns);
    if (handle_chinese) {
      bool any = false;
      size_t i = 0;
      while (i < ns.normalized.size() && !any) any = is_chinese_char(decode_utf8(ns.normalized, i));
      if (any) {
        std::vector<CharChange> changes;
        i = 0;
        while (i < ns.normalized.size()) {
          char32_t c = decode_utf8(ns.normalized, i);
          if (is_chinese_char(c)) {
            changes.push_back({' ', 0});
            changes.push_back({c, 1});
            changes.push_back({' ', 1});
          } else {
            changes.push_back({c, 0});
          }
        }
        ns.transform(changes, 0);
      }
    }
    if (strip_accents) {
      ns.nfd(false);
      ns.filter([](char32_t c) { return !is_mark_nonspacing(c); });
    }
    if (lowercase) ns.lowercase();
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    TextSteps steps(text, out);
    // Cleaning and spacing Chinese chars both act char by char (and a space is not Chinese), so
    // one pass does both.
    if (clean_text || handle_chinese) {
      const bool clean = clean_text, chinese = handle_chinese;
      auto action = [clean](char32_t c) {
        return clean ? bert_clean_action(c) : CleanAction::Keep;
      };
      auto touches = [=](char32_t c) {
        // ASCII: only control chars (\t, \n and \r become ' ', the rest go) change.
        if (c < 0x80) return clean && (c < 0x20 || c == 0x7F);
        CleanAction a = action(c);
        return a != CleanAction::Keep || (chinese && is_chinese_char(c));
      };
      auto replace = [=](char32_t c, std::string& dst) {
        CleanAction a = action(c);
        if (a == CleanAction::Space) {
          dst += ' ';
        } else if (a == CleanAction::Keep) {
          dst += ' ';
          append_utf8(dst, c);
          dst += ' ';
        }
      };
      steps.apply([&](std::string_view in, std::string& o) {
        return rewrite_chars(in, o, touches, replace);
      });
    }
    if (strip_accents) {
      steps.apply([](std::string_view in, std::string& o) {
        return unicode_normalize_text(in, false, false, o);
      });
      steps.apply(strip_nonspacing_marks_text);
    }
    if (lowercase) steps.apply(lowercase_text);
    return steps.finish();
  }
};

struct UnicodeNormalizer : Normalizer {
  bool compose, compat;
  UnicodeNormalizer(bool c, bool k) : compose(c), compat(k) {}
  void normalize(NormalizedString& ns) const override {
    if (compose)
      ns.nfc(compat);
    else
      ns.nfd(compat);
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    return unicode_normalize_text(text, compose, compat, out);
  }
};

struct LowercaseNormalizer : Normalizer {
  void normalize(NormalizedString& ns) const override { ns.lowercase(); }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    return lowercase_text(text, out);
  }
};

struct StripNormalizer : Normalizer {
  bool left, right;
  StripNormalizer(bool l, bool r) : left(l), right(r) {}
  void normalize(NormalizedString& ns) const override { ns.strip(left, right); }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    auto [b, e] = strip_range(text, left, right);
    if (b == 0 && e == text.size()) return false;
    out.assign(text.substr(b, e - b));
    return true;
  }
};

struct StripAccents : Normalizer {
  void normalize(NormalizedString& ns) const override {
    ns.filter([](char32_t c) { return !is_combining_mark(c); });
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    return rewrite_chars(text, out, is_combining_mark, [](char32_t, std::string&) {});
  }
};

struct ReplaceNormalizer : Normalizer {
  std::unique_ptr<Regex> pattern;
  std::string content;
  void normalize(NormalizedString& ns) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    pattern->find_all(ns.normalized, matches);
    ns.replace_matches(matches, content);
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    bool changed = false;
    size_t copied = 0;
    pattern->for_each_match(text, [&](size_t b, size_t e) {
      if (!changed) {
        out.clear();
        changed = true;
      }
      out.append(text.substr(copied, b - copied));
      out += content;
      copied = e;
    });
    if (changed) out.append(text.substr(copied));
    return changed;
  }
};

struct PrependNormalizer : Normalizer {
  std::string prepend;
  void normalize(NormalizedString& ns) const override {
    if (!ns.empty()) ns.prepend(prepend);
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    if (text.empty() || prepend.empty()) return false;
    out.assign(prepend);
    out.append(text);
    return true;
  }
};

// Nmt drops some control chars and turns other ones (and a few invisible chars) into ' '.
bool nmt_drops(char32_t c) {
  return (c >= 0x0001 && c <= 0x0008) || c == 0x000B || (c >= 0x000E && c <= 0x001F) ||
         c == 0x007F || c == 0x008F || c == 0x009F;
}
bool nmt_spaces(char32_t c) {
  switch (c) {
    case 0x0009:
    case 0x000A:
    case 0x000C:
    case 0x000D:
    case 0x1680:
    case 0x200B:
    case 0x200C:
    case 0x200D:
    case 0x200E:
    case 0x200F:
    case 0x2028:
    case 0x2029:
    case 0x2581:
    case 0xFEFF:
    case 0xFFFD:
      return true;
    default:
      return false;
  }
}

struct NmtNormalizer : Normalizer {
  void normalize(NormalizedString& ns) const override {
    ns.filter([](char32_t c) { return !nmt_drops(c); });
    ns.map([](char32_t c) { return nmt_spaces(c) ? U' ' : c; });
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    return rewrite_chars(
        text, out, [](char32_t c) { return nmt_drops(c) || nmt_spaces(c); },
        [](char32_t c, std::string& o) {
          if (!nmt_drops(c)) o += ' ';
        });
  }
};

struct ByteLevelNormalizer : Normalizer {
  void normalize(NormalizedString& ns) const override {
    const char32_t* table = byte_to_char_table();
    std::vector<CharChange> changes;
    changes.reserve(ns.normalized.size());
    size_t i = 0;
    while (i < ns.normalized.size()) {
      size_t n = utf8_len(static_cast<unsigned char>(ns.normalized[i]));
      for (size_t k = 0; k < n; ++k)
        changes.push_back({table[static_cast<unsigned char>(ns.normalized[i + k])], k > 0 ? 1 : 0});
      i += n;
    }
    ns.transform(changes, 0);
  }
};

// SentencePiece's precompiled charsmap, with the reference's lookup: the shortest key that
// prefixes the part wins.
struct Precompiled : Normalizer {
  Charsmap map;

  std::optional<std::string_view> lookup(std::string_view key) const {
    std::optional<std::string_view> found;
    map.for_each_prefix(key, [&](size_t, std::string_view replacement) {
      found = replacement;
      return true;
    });
    return found;
  }

  static void replace(std::vector<CharChange>& tr, std::string_view old_part,
                      std::string_view new_part) {
    auto old_count = static_cast<long>(count_chars(old_part));
    auto new_count = static_cast<long>(count_chars(new_part));
    long diff = new_count - old_count;
    size_t i = 0;
    while (i < new_part.size()) tr.push_back({decode_utf8(new_part, i), 0});
    if (diff > 0) {
      for (long k = 0; k < diff && k < static_cast<long>(tr.size()); ++k)
        tr[tr.size() - 1 - k].change = 1;
    } else if (diff < 0 && !tr.empty()) {
      tr.back().change += static_cast<int32_t>(diff);
    }
  }

  // Walks s by grapheme clusters as SentencePiece does: a cluster shorter than 6 bytes is
  // looked up whole, else (or when absent) char by char. Calls on_part(part, replacement) for
  // each part in order, replacement being nullptr for a char the map leaves alone.
  template <class F>
  void for_each_part(std::string_view s, F on_part) const {
    if (s.empty()) return;
    auto process = [&](std::string_view g) {
      if (g.size() < 6) {
        if (auto norm = lookup(g)) return on_part(g, &*norm);
      }
      size_t k = 0;
      while (k < g.size()) {
        size_t b = k;
        k += utf8_len(static_cast<unsigned char>(g[k]));
        std::string_view part = g.substr(b, k - b);
        auto norm = lookup(part);
        on_part(part, norm ? &*norm : nullptr);
      }
    };
    size_t g_start = 0;
    utf8proc_int32_t state = 0;
    size_t i = 0;
    char32_t prev = decode_utf8(s, i);
    while (i < s.size()) {
      size_t b = i;
      char32_t c = decode_utf8(s, i);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                           static_cast<utf8proc_int32_t>(c), &state)) {
        process(s.substr(g_start, b - g_start));
        g_start = b;
      }
      prev = c;
    }
    process(s.substr(g_start));
  }

  void normalize(NormalizedString& ns) const override {
    std::vector<CharChange> tr;
    tr.reserve(ns.normalized.size());
    bool modified = false;
    for_each_part(ns.normalized, [&](std::string_view part, const std::string_view* norm) {
      if (norm) {
        modified = true;
        replace(tr, part, *norm);
      } else {
        size_t k = 0;
        tr.push_back({decode_utf8(part, k), 0});
      }
    });
    if (modified) ns.transform(tr, 0);
  }
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    bool modified = false;
    size_t copied = 0, pos = 0;
    for_each_part(text, [&](std::string_view part, const std::string_view* norm) {
      if (norm) {
        if (!modified) {
          out.clear();
          modified = true;
        }
        out.append(text.substr(copied, pos - copied));
        // Decoded and re-encoded, as transform() does with the chars of the replacement.
        size_t k = 0;
        while (k < norm->size()) append_utf8(out, decode_utf8(*norm, k));
        copied = pos + part.size();
      }
      pos += part.size();
    });
    if (modified) out.append(text.substr(copied));
    return modified;
  }
};

std::string base64_decode(const std::string& in, const std::string& ctx) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) fail(ctx + ": invalid base64");
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

struct SequenceNormalizer : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(NormalizedString& ns) const override {
    for (const auto& n : items) n->normalize(ns);
  }
  bool text_only() const override {
    return std::all_of(items.begin(), items.end(), [](const auto& n) { return n->text_only(); });
  }
  bool normalize_text(std::string_view text, std::string& out) const override {
    TextSteps steps(text, out);
    for (const auto& n : items)
      steps.apply([&](std::string_view in, std::string& o) { return n->normalize_text(in, o); });
    return steps.finish();
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_precompiled(std::string_view bytes, const std::string& ctx) {
  auto p = std::make_unique<Precompiled>();
  p->map = Charsmap::parse(bytes, ctx + ": precompiled_charsmap");
  return p;
}

Charsmap Charsmap::parse(std::string_view bytes, const std::string& ctx) {
  Charsmap m;
  if (bytes.empty()) return m;
  if (bytes.size() < 4) fail(ctx + " too short");
  uint32_t trie_size;
  std::memcpy(&trie_size, bytes.data(), 4);
  if (trie_size % 4 != 0 || trie_size > bytes.size() - 4) fail(ctx + " trie size out of range");
  m.trie.resize(trie_size / 4);
  std::memcpy(m.trie.data(), bytes.data() + 4, trie_size);
  m.strings.assign(bytes.substr(4 + trie_size));
  return m;
}

std::unique_ptr<Regex> make_pattern(const Json& j, const std::string& ctx) {
  if (!j.is_object()) fail(ctx + ": expected {\"String\": ...} or {\"Regex\": ...}");
  if (const Json* s = field(j, "String")) {
    if (!s->is_string()) fail(ctx + ".String: expected a string");
    return std::make_unique<Regex>(s->get<std::string>(), true);
  }
  if (const Json* r = field(j, "Regex")) {
    if (!r->is_string()) fail(ctx + ".Regex: expected a string");
    return std::make_unique<Regex>(r->get<std::string>(), false);
  }
  fail(ctx + ": expected {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& ctx) {
  std::string type = type_of(j, ctx);
  if (type == "BertNormalizer") {
    auto n = std::make_unique<BertNormalizer>();
    n->clean_text = get_bool(j, "clean_text", ctx, true);
    n->handle_chinese = get_bool(j, "handle_chinese_chars", ctx, true);
    n->lowercase = get_bool(j, "lowercase", ctx, true);
    n->strip_accents = get_bool(j, "strip_accents", ctx, n->lowercase);
    return n;
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(true, false);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(true, true);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(false, false);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(false, true);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(get_bool(j, "strip_left", ctx, true),
                                             get_bool(j, "strip_right", ctx, true));
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Nmt") return std::make_unique<NmtNormalizer>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Replace") {
    auto n = std::make_unique<ReplaceNormalizer>();
    const Json* p = field(j, "pattern");
    if (!p) fail(ctx + ".pattern: missing required field");
    n->pattern = make_pattern(*p, ctx + ".pattern");
    n->content = get_string(j, "content", ctx, "", true);
    return n;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    n->prepend = get_string(j, "prepend", ctx, "", true);
    return n;
  }
  if (type == "Precompiled") {
    const Json* p = field(j, "precompiled_charsmap");
    if (!p) return std::make_unique<Precompiled>();
    std::string bytes;
    if (p->is_string()) {
      bytes = base64_decode(p->get<std::string>(), ctx + ".precompiled_charsmap");
    } else if (p->is_array()) {
      for (const auto& b : *p) {
        if (!b.is_number_unsigned() || b.get<uint64_t>() > 255)
          fail(ctx + ".precompiled_charsmap: expected bytes");
        bytes.push_back(static_cast<char>(b.get<uint64_t>()));
      }
    } else {
      fail(ctx + ".precompiled_charsmap: expected a base64 string");
    }
    return make_precompiled(bytes, ctx + ".precompiled_charsmap");
  }
  if (type == "Sequence") {
    auto n = std::make_unique<SequenceNormalizer>();
    const Json& items = get_array(j, "normalizers", ctx);
    for (size_t k = 0; k < items.size(); ++k)
      n->items.push_back(
          make_normalizer(items[k], ctx + ".normalizers[" + std::to_string(k) + "]"));
    return n;
  }
  fail(ctx + ".type: unknown normalizer type '" + type + "'");
}

}  // namespace ember::tokenizers::detail
