// Encoding helpers, post-processors and decoders.
#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include "json_util.hpp"

namespace ember::tokenizers::detail {

// ---- Byte-level tables ------------------------------------------------------------------------
const char32_t* byte_to_char_table() {
  static const auto table = [] {
    std::array<char32_t, 256> t{};
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[b] = printable ? b : 256 + n++;
    }
    return t;
  }();
  return table.data();
}

int char_to_byte(char32_t c) {
  static const auto inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    const char32_t* t = byte_to_char_table();
    for (int b = 0; b < 256; ++b) inv[t[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

void byte_level_offsets(Encoding& e, bool add_prefix_space) {
  const char32_t space = byte_to_char_table()[0x20];
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const std::string& tok = e.tokens[i];
    auto& off = e.offsets[i];
    std::vector<char32_t> chars;
    size_t k = 0;
    while (k < tok.size()) chars.push_back(decode_utf8(tok, k));
    auto is_sp = [&](char32_t c) { return c == space || is_whitespace(c); };
    size_t lead = 0, trail = 0;
    while (lead < chars.size() && is_sp(chars[lead])) ++lead;
    while (trail < chars.size() && is_sp(chars[chars.size() - 1 - trail])) ++trail;
    if (lead > 0) {
      bool is_first = i == 0 || off.first == 0;
      if (is_first && add_prefix_space && lead == 1) lead = 0;
      off.first = std::min(off.first + lead, off.second);
    }
    if (trail > 0 && off.second >= trail) off.second = std::max(off.second - trail, off.first);
  }
  for (auto& o : e.overflowing) byte_level_offsets(o, add_prefix_space);
}

// ---- Encoding helpers -------------------------------------------------------------------------
static void append_fields(Encoding& into, const Encoding& pair) {
  into.ids.insert(into.ids.end(), pair.ids.begin(), pair.ids.end());
  into.type_ids.insert(into.type_ids.end(), pair.type_ids.begin(), pair.type_ids.end());
  into.tokens.insert(into.tokens.end(), pair.tokens.begin(), pair.tokens.end());
  into.offsets.insert(into.offsets.end(), pair.offsets.begin(), pair.offsets.end());
  into.word_ids.insert(into.word_ids.end(), pair.word_ids.begin(), pair.word_ids.end());
  into.sequence_ids.insert(into.sequence_ids.end(), pair.sequence_ids.begin(),
                           pair.sequence_ids.end());
  into.special_tokens_mask.insert(into.special_tokens_mask.end(), pair.special_tokens_mask.begin(),
                                  pair.special_tokens_mask.end());
  into.attention_mask.insert(into.attention_mask.end(), pair.attention_mask.begin(),
                             pair.attention_mask.end());
}

void merge_encodings(Encoding& into, Encoding&& pair, bool /*growing_offsets*/) {
  // The reference pairs every overflowing part of one sequence with every part of the other;
  // refuse combinations that would take unbounded memory (long pairs with a tiny max_length).
  const size_t combinations =
      into.overflowing.size() * (1 + pair.overflowing.size()) + pair.overflowing.size();
  if (combinations > 65536)
    fail("truncation: " + std::to_string(combinations) +
         " overflowing combinations of a pair (limit 65536); raise max_length");
  std::vector<Encoding> overflowings;
  for (const auto& self_o : into.overflowing) {
    Encoding n = self_o;
    merge_encodings(n, Encoding(pair), false);
    overflowings.push_back(std::move(n));
    for (const auto& other_o : pair.overflowing) {
      Encoding n2 = self_o;
      merge_encodings(n2, Encoding(other_o), false);
      overflowings.push_back(std::move(n2));
    }
  }
  for (const auto& other_o : pair.overflowing) {
    Encoding n = into;
    merge_encodings(n, Encoding(other_o), false);
    overflowings.push_back(std::move(n));
  }
  append_fields(into, pair);
  into.overflowing = std::move(overflowings);
}

Encoding merge_all(std::vector<Encoding>&& encodings) {
  Encoding out;
  for (auto& e : encodings) merge_encodings(out, std::move(e), false);
  return out;
}

void set_sequence_id(Encoding& e, int64_t id) {
  e.sequence_ids.assign(e.ids.size(), id);
}

static Encoding slice_encoding(const Encoding& e, size_t b, size_t s) {
  Encoding n;
  n.ids.assign(e.ids.begin() + b, e.ids.begin() + s);
  n.type_ids.assign(e.type_ids.begin() + b, e.type_ids.begin() + s);
  n.tokens.assign(e.tokens.begin() + b, e.tokens.begin() + s);
  n.offsets.assign(e.offsets.begin() + b, e.offsets.begin() + s);
  n.word_ids.assign(e.word_ids.begin() + b, e.word_ids.begin() + s);
  n.sequence_ids.assign(e.sequence_ids.begin() + b, e.sequence_ids.begin() + s);
  n.special_tokens_mask.assign(e.special_tokens_mask.begin() + b,
                               e.special_tokens_mask.begin() + s);
  n.attention_mask.assign(e.attention_mask.begin() + b, e.attention_mask.begin() + s);
  return n;
}

void truncate_encoding(Encoding& e, size_t max_len, size_t stride, bool left) {
  size_t n = e.ids.size();
  if (max_len >= n) return;
  if (max_len == 0) {
    Encoding o = std::move(e);
    e = Encoding{};
    e.overflowing.push_back(std::move(o));
    return;
  }
  if (stride >= max_len)
    fail("truncation: stride (" + std::to_string(stride) + ") must be smaller than max_length (" +
         std::to_string(max_len) + ") minus the added special tokens");
  size_t step = max_len - stride;
  std::vector<std::pair<size_t, size_t>> parts;
  if (!left) {
    for (size_t start = 0; start < n; start += step) {
      size_t stop = std::min(start + max_len, n);
      parts.push_back({start, stop});
      if (stop == n) break;
    }
  } else {
    for (size_t k = 0; k < n; k += step) {
      size_t stop = n - k;
      size_t start = stop > max_len ? stop - max_len : 0;
      parts.push_back({start, stop});
      if (start == 0) break;
    }
  }
  Encoding first = slice_encoding(e, parts[0].first, parts[0].second);
  for (size_t i = 1; i < parts.size(); ++i)
    first.overflowing.push_back(slice_encoding(e, parts[i].first, parts[i].second));
  e = std::move(first);
}

void pad_encoding(Encoding& e, size_t target, uint32_t pad_id, uint32_t pad_type_id,
                  const std::string& pad_token, bool left) {
  for (auto& o : e.overflowing) pad_encoding(o, target, pad_id, pad_type_id, pad_token, left);
  if (e.ids.size() >= target) return;
  size_t n = target - e.ids.size();
  auto pad = [&](auto& v, auto value) {
    if (left)
      v.insert(v.begin(), n, value);
    else
      v.insert(v.end(), n, value);
  };
  pad(e.ids, pad_id);
  pad(e.type_ids, pad_type_id);
  pad(e.tokens, pad_token);
  pad(e.offsets, std::pair<size_t, size_t>{0, 0});
  pad(e.word_ids, int64_t{-1});
  pad(e.sequence_ids, int64_t{-1});
  pad(e.special_tokens_mask, uint32_t{1});
  pad(e.attention_mask, uint32_t{0});
}

// ---- Post-processors --------------------------------------------------------------------------
namespace {

Encoding special_encoding(const std::vector<uint32_t>& ids, const std::vector<std::string>& tokens,
                          uint32_t type_id) {
  Encoding e;
  e.ids = ids;
  e.tokens = tokens;
  e.type_ids.assign(ids.size(), type_id);
  e.offsets.assign(ids.size(), {0, 0});
  e.word_ids.assign(ids.size(), -1);
  e.sequence_ids.assign(ids.size(), -1);
  e.special_tokens_mask.assign(ids.size(), 1);
  e.attention_mask.assign(ids.size(), 1);
  return e;
}

// Wraps `e` (and, recursively, its overflowing parts) between special tokens.
void wrap(Encoding& e, const std::vector<std::pair<Encoding, bool>>& pieces_before,
          const std::vector<std::pair<Encoding, bool>>& pieces_after,
          std::optional<uint32_t> type_id) {
  for (auto& o : e.overflowing) wrap(o, pieces_before, pieces_after, type_id);
  Encoding out;
  for (const auto& [p, _] : pieces_before) append_fields(out, p);
  if (type_id) e.type_ids.assign(e.ids.size(), *type_id);
  append_fields(out, e);
  for (const auto& [p, _] : pieces_after) append_fields(out, p);
  out.overflowing = std::move(e.overflowing);
  e = std::move(out);
}

struct BertProcessing : PostProcessor {
  std::pair<std::string, uint32_t> sep, cls;
  size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  void process(std::vector<Encoding>& encs, bool add_special) const override {
    if (!add_special) return;
    auto c = special_encoding({cls.second}, {cls.first}, 0);
    auto s0 = special_encoding({sep.second}, {sep.first}, 0);
    auto s1 = special_encoding({sep.second}, {sep.first}, 1);
    wrap(encs[0], {{c, true}}, {{s0, true}}, std::nullopt);
    if (encs.size() > 1) wrap(encs[1], {}, {{s1, true}}, std::nullopt);
  }
};

struct RobertaProcessing : PostProcessor {
  std::pair<std::string, uint32_t> sep, cls;
  bool trim_offsets = true, add_prefix_space = true;
  size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  void process(std::vector<Encoding>& encs, bool add_special) const override {
    if (trim_offsets)
      for (auto& e : encs) byte_level_offsets(e, add_prefix_space);
    // RoBERTa has no segment embeddings: type ids are 0 (without special tokens the reference
    // resets only the top-level encodings, not their overflowing parts).
    if (!add_special) {
      for (auto& e : encs) e.type_ids.assign(e.ids.size(), 0);
      return;
    }
    auto c = special_encoding({cls.second}, {cls.first}, 0);
    auto s0 = special_encoding({sep.second}, {sep.first}, 0);
    wrap(encs[0], {{c, true}}, {{s0, true}}, 0u);
    if (encs.size() > 1) wrap(encs[1], {{s0, true}}, {{s0, true}}, 0u);
  }
};

struct ByteLevelProcessing : PostProcessor {
  bool trim_offsets = true, add_prefix_space = true;
  size_t added_tokens(bool) const override { return 0; }
  void process(std::vector<Encoding>& encs, bool) const override {
    if (trim_offsets)
      for (auto& e : encs) byte_level_offsets(e, add_prefix_space);
  }
};

struct TemplateProcessing : PostProcessor {
  struct Piece {
    bool is_sequence;
    int seq;              // 0 = A, 1 = B
    std::string special;  // special token name
    uint32_t type_id;
  };
  struct Special {
    std::vector<uint32_t> ids;
    std::vector<std::string> tokens;
  };
  std::vector<Piece> single, pair;
  std::map<std::string, Special> specials;

  size_t count(const std::vector<Piece>& t) const {
    size_t n = 0;
    for (const auto& p : t)
      if (!p.is_sequence) n += specials.at(p.special).ids.size();
    return n;
  }
  size_t added_tokens(bool is_pair) const override { return count(is_pair ? pair : single); }

  Encoding apply(const std::vector<Piece>& tmpl, std::vector<Encoding>& encs,
                 bool add_special) const {
    std::vector<Encoding> parts;
    for (const auto& p : tmpl) {
      if (p.is_sequence) {
        auto idx = static_cast<size_t>(p.seq);
        if (idx >= encs.size()) continue;
        Encoding e = encs[idx];
        e.type_ids.assign(e.ids.size(), p.type_id);
        set_sequence_id(e, static_cast<int64_t>(idx));
        for (auto& o : e.overflowing) o.type_ids.assign(o.ids.size(), p.type_id);
        parts.push_back(std::move(e));
      } else if (add_special) {
        const Special& s = specials.at(p.special);
        parts.push_back(special_encoding(s.ids, s.tokens, p.type_id));
      }
    }
    return merge_all(std::move(parts));
  }

  void process(std::vector<Encoding>& encs, bool add_special) const override {
    const auto& tmpl = encs.size() > 1 ? pair : single;
    Encoding out = apply(tmpl, encs, add_special);
    encs.clear();
    encs.push_back(std::move(out));
  }
};

struct SequenceProcessing : PostProcessor {
  std::vector<std::unique_ptr<PostProcessor>> items;
  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : items) n += p->added_tokens(is_pair);
    return n;
  }
  void process(std::vector<Encoding>& encs, bool add_special) const override {
    for (const auto& p : items) p->process(encs, add_special);
  }
};

std::pair<std::string, uint32_t> parse_special_pair(const Json& j, const char* name,
                                                    const std::string& ctx) {
  const Json* v = field(j, name);
  if (!v || !v->is_array() || v->size() != 2 || !(*v)[0].is_string() ||
      !(*v)[1].is_number_unsigned() || (*v)[1].get<uint64_t>() > UINT32_MAX)
    fail(ctx + "." + name + ": expected [token, id]");
  return {(*v)[0].get<std::string>(), static_cast<uint32_t>((*v)[1].get<uint64_t>())};
}

std::vector<TemplateProcessing::Piece> parse_template(const Json& j, const char* name,
                                                      const std::string& ctx) {
  std::string c = ctx + "." + name;
  const Json* v = field(j, name);
  if (!v) fail(c + ": missing required field");
  std::vector<TemplateProcessing::Piece> out;
  // A decimal type id of the template; digits only, and it must fit 32 bits.
  auto parse_type_id = [&](const std::string& digits) {
    uint32_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      fail(c + ": type id '" + digits + "' is not a 32-bit unsigned integer");
    }
    return value;
  };
  auto parse_piece_string = [&](const std::string& s) {
    // "$A", "$B:1", "[CLS]", "[SEP]:1" forms
    std::string body = s;
    uint32_t type_id = 0;
    size_t colon = s.rfind(':');
    if (colon != std::string::npos && colon + 1 < s.size() &&
        s.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      body = s.substr(0, colon);
      type_id = parse_type_id(s.substr(colon + 1));
    }
    if (!body.empty() && body[0] == '$') {
      std::string id = body.substr(1);
      int seq = (id.empty() || id == "A" || id == "a") ? 0 : (id == "B" || id == "b") ? 1 : -1;
      if (seq < 0) {
        if (id.find_first_not_of("0123456789") == std::string::npos) {
          type_id = parse_type_id(id);
          seq = 0;
        } else {
          fail(c + ": bad sequence piece '" + s + "'");
        }
      }
      out.push_back({true, seq, "", type_id});
    } else {
      out.push_back({false, 0, body, type_id});
    }
  };
  if (v->is_string()) {
    std::string s = v->get<std::string>();
    size_t p = 0;
    while (p < s.size()) {
      size_t q = s.find(' ', p);
      if (q == std::string::npos) q = s.size();
      if (q > p) parse_piece_string(s.substr(p, q - p));
      p = q + 1;
    }
    return out;
  }
  if (!v->is_array()) fail(c + ": expected an array of pieces");
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& p = (*v)[i];
    std::string pc = c + "[" + std::to_string(i) + "]";
    if (p.is_string()) {
      parse_piece_string(p.get<std::string>());
      continue;
    }
    if (!p.is_object()) fail(pc + ": expected an object");
    if (const Json* s = field(p, "Sequence")) {
      std::string id = get_string(*s, "id", pc + ".Sequence", "", true);
      if (id != "A" && id != "B") fail(pc + ".Sequence.id: expected \"A\" or \"B\"");
      out.push_back({true, id == "A" ? 0 : 1, "",
                     static_cast<uint32_t>(get_uint(*s, "type_id", pc + ".Sequence", 0))});
    } else if (const Json* s2 = field(p, "SpecialToken")) {
      out.push_back({false, 0, get_string(*s2, "id", pc + ".SpecialToken", "", true),
                     static_cast<uint32_t>(get_uint(*s2, "type_id", pc + ".SpecialToken", 0))});
    } else {
      fail(pc + ": expected Sequence or SpecialToken");
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& ctx) {
  std::string type = type_of(j, ctx);
  if (type == "BertProcessing") {
    auto p = std::make_unique<BertProcessing>();
    p->sep = parse_special_pair(j, "sep", ctx);
    p->cls = parse_special_pair(j, "cls", ctx);
    return p;
  }
  if (type == "RobertaProcessing") {
    auto p = std::make_unique<RobertaProcessing>();
    p->sep = parse_special_pair(j, "sep", ctx);
    p->cls = parse_special_pair(j, "cls", ctx);
    p->trim_offsets = get_bool(j, "trim_offsets", ctx, true);
    p->add_prefix_space = get_bool(j, "add_prefix_space", ctx, true);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelProcessing>();
    p->trim_offsets = get_bool(j, "trim_offsets", ctx, true);
    p->add_prefix_space = get_bool(j, "add_prefix_space", ctx, true);
    return p;
  }
  if (type == "TemplateProcessing") {
    auto p = std::make_unique<TemplateProcessing>();
    p->single = parse_template(j, "single", ctx);
    p->pair = parse_template(j, "pair", ctx);
    const Json* st = field(j, "special_tokens");
    if (st) {
      if (!st->is_object()) fail(ctx + ".special_tokens: expected an object");
      for (auto it = st->begin(); it != st->end(); ++it) {
        std::string sc = ctx + ".special_tokens['" + it.key() + "']";
        const Json& v = it.value();
        if (!v.is_object()) fail(sc + ": expected an object");
        TemplateProcessing::Special s;
        const Json& ids = get_array(v, "ids", sc);
        const Json& toks = get_array(v, "tokens", sc);
        for (const auto& x : ids) {
          if (!x.is_number_unsigned() || x.get<uint64_t>() > UINT32_MAX)
            fail(sc + ".ids: expected ids");
          s.ids.push_back(static_cast<uint32_t>(x.get<uint64_t>()));
        }
        for (const auto& x : toks) {
          if (!x.is_string()) fail(sc + ".tokens: expected strings");
          s.tokens.push_back(x.get<std::string>());
        }
        if (s.ids.size() != s.tokens.size()) fail(sc + ": ids and tokens differ in length");
        p->specials[get_string(v, "id", sc, it.key())] = std::move(s);
      }
    }
    for (const auto* t : {&p->single, &p->pair})
      for (const auto& piece : *t)
        if (!piece.is_sequence && !p->specials.count(piece.special))
          fail(ctx + ".special_tokens: missing '" + piece.special + "' used by the template");
    return p;
  }
  if (type == "Sequence") {
    auto p = std::make_unique<SequenceProcessing>();
    const Json& items = get_array(j, "processors", ctx);
    for (size_t k = 0; k < items.size(); ++k)
      p->items.push_back(
          make_post_processor(items[k], ctx + ".processors[" + std::to_string(k) + "]"));
    return p;
  }
  fail(ctx + ".type: unknown post_processor type '" + type + "'");
}

// ---- Decoders ---------------------------------------------------------------------------------
namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t p = 0;
  while (true) {
    size_t q = s.find(from, p);
    if (q == std::string::npos) break;
    out.append(s, p, q - p);
    out.append(to);
    p = q + from.size();
  }
  if (p == 0) return;
  out.append(s, p, std::string::npos);
  s = std::move(out);
}

std::string cleanup(std::string s) {
  replace_all(s, " .", ".");
  replace_all(s, " ?", "?");
  replace_all(s, " !", "!");
  replace_all(s, " ,", ",");
  replace_all(s, " ' ", "'");
  replace_all(s, " n't", "n't");
  replace_all(s, " 'm", "'m");
  replace_all(s, " do not", " don't");
  replace_all(s, " 's", "'s");
  replace_all(s, " 've", "'ve");
  replace_all(s, " 're", "'re");
  return s;
}

// Lossy UTF-8: invalid sequences become U+FFFD (maximal subpart rule, as Rust's from_utf8_lossy).
std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(static_cast<char>(b0));
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF)
      need = 1;
    else if (b0 == 0xE0)
      need = 2, lo = 0xA0;
    else if (b0 == 0xED)
      need = 2, hi = 0x9F;
    else if (b0 >= 0xE1 && b0 <= 0xEF)  // 0xED is above
      need = 2;
    else if (b0 == 0xF0)
      need = 3, lo = 0x90;
    else if (b0 >= 0xF1 && b0 <= 0xF3)
      need = 3;
    else if (b0 == 0xF4)
      need = 3, hi = 0x8F;
    if (need == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k <= need && i + k < s.size(); ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (k == need + 1) {
      out.append(s.substr(i, need + 1));
      i += need + 1;
    } else {
      out += "\xEF\xBF\xBD";
      i += k;
    }
  }
  return out;
}

struct ByteLevelDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      std::string tb;
      bool ok = true;
      size_t i = 0;
      while (i < t.size()) {
        int b = char_to_byte(decode_utf8(t, i));
        if (b < 0) {
          ok = false;
          break;
        }
        tb.push_back(static_cast<char>(b));
      }
      bytes += ok ? tb : t;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

struct WordPieceDecoder : Decoder {
  std::string prefix = "##";
  bool do_cleanup = true;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix.size(), prefix) == 0)
          t.erase(0, prefix.size());
        else
          t.insert(0, " ");
      }
      if (do_cleanup) t = cleanup(std::move(t));
    }
  }
};

struct MetaspaceDecoder : Decoder {
  std::string replacement = "\xE2\x96\x81";
  bool prepend = true;
  void decode_chain(std::vector<std::string>& tokens) const override {
    // Every replacement char of the first token is dropped (not only a leading one).
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_all(tokens[i], replacement, i == 0 && prepend ? "" : " ");
  }
};

struct BPEDecoder : Decoder {
  std::string suffix = "</w>";
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_all(tokens[i], suffix, i + 1 == tokens.size() ? "" : " ");
  }
};

struct CTCDecoder : Decoder {
  std::string pad = "<pad>", delimiter = "|";
  bool do_cleanup = true;
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string t = tokens[i];
      replace_all(t, pad, "");
      if (do_cleanup) {
        t = cleanup(std::move(t));
        replace_all(t, delimiter, " ");
      }
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens = std::move(out);
  }
};

struct ReplaceDecoder : Decoder {
  std::unique_ptr<Regex> pattern;
  std::string content;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      auto ns = NormalizedString::from_original(t);
      std::vector<std::pair<size_t, size_t>> m;
      pattern->find_all(ns.normalized, m);
      ns.replace_matches(m, content);
      t = std::move(ns.normalized);
    }
  }
};

struct FuseDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.clear();
    tokens.push_back(std::move(all));
  }
};

struct StripDecoder : Decoder {
  char32_t content = ' ';
  size_t start = 0, stop = 0;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<char32_t> chars;
      size_t i = 0;
      while (i < t.size()) chars.push_back(decode_utf8(t, i));
      size_t b = 0, e = chars.size();
      for (size_t k = 0; k < start && b < e && chars[b] == content; ++k) ++b;
      for (size_t k = 0; k < stop && e > b && chars[e - 1] == content; ++k) --e;
      std::string out;
      for (size_t k = b; k < e; ++k) append_utf8(out, chars[k]);
      t = std::move(out);
    }
  }
};

struct ByteFallbackDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      if (auto byte = parse_byte_token(t)) {
        pending.push_back(static_cast<char>(*byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

struct SequenceDecoder : Decoder {
  std::vector<std::unique_ptr<Decoder>> items;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items) d->decode_chain(tokens);
  }
};

}  // namespace

std::string lossy_utf8(std::string_view s) {
  return utf8_lossy(s);
}

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& ctx) {
  std::string type = type_of(j, ctx);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "WordPiece") {
    auto d = std::make_unique<WordPieceDecoder>();
    d->prefix = get_string(j, "prefix", ctx, "##");
    d->do_cleanup = get_bool(j, "cleanup", ctx, true);
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = get_string(j, "replacement", ctx, "\xE2\x96\x81");
    if (d->replacement.empty() || count_chars(d->replacement) != 1)
      fail(ctx + ".replacement: expected one char");
    std::string scheme = get_string(j, "prepend_scheme", ctx, "");
    if (scheme.empty()) scheme = get_bool(j, "add_prefix_space", ctx, true) ? "always" : "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail(ctx + ".prepend_scheme: unknown value '" + scheme + "'");
    d->prepend = scheme != "never";
    return d;
  }
  if (type == "BPEDecoder") {
    auto d = std::make_unique<BPEDecoder>();
    d->suffix = get_string(j, "suffix", ctx, "</w>");
    return d;
  }
  if (type == "CTC") {
    auto d = std::make_unique<CTCDecoder>();
    d->pad = get_string(j, "pad_token", ctx, "<pad>");
    d->delimiter = get_string(j, "word_delimiter_token", ctx, "|");
    d->do_cleanup = get_bool(j, "cleanup", ctx, true);
    return d;
  }
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDecoder>();
    const Json* p = field(j, "pattern");
    if (!p) fail(ctx + ".pattern: missing required field");
    d->pattern = make_pattern(*p, ctx + ".pattern");
    d->content = get_string(j, "content", ctx, "", true);
    return d;
  }
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    std::string c = get_string(j, "content", ctx, " ");
    if (c.empty() || count_chars(c) != 1 || !is_valid_utf8(c))
      fail(ctx + ".content: expected one char");
    size_t i = 0;
    d->content = decode_utf8(c, i);
    d->start = get_uint(j, "start", ctx, 0, false, UINT64_MAX);
    d->stop = get_uint(j, "stop", ctx, 0, false, UINT64_MAX);
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Sequence") {
    auto d = std::make_unique<SequenceDecoder>();
    const Json& items = get_array(j, "decoders", ctx);
    for (size_t k = 0; k < items.size(); ++k)
      d->items.push_back(make_decoder(items[k], ctx + ".decoders[" + std::to_string(k) + "]"));
    return d;
  }
  fail(ctx + ".type: unknown decoder type '" + type + "'");
}

}  // namespace ember::tokenizers::detail
