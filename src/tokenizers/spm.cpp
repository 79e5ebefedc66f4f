#include "spm.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace ember::tokenizers::detail {

namespace {
constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

enum PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

struct ProtoReader {
  const unsigned char* p;
  const unsigned char* end;
  const char* ctx;
  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) fail(std::string(ctx) + ": truncated varint");
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(std::string(ctx) + ": varint too long");
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) fail(std::string(ctx) + ": field length out of bounds");
    std::string_view s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  uint32_t fixed32() {
    if (end - p < 4) fail(std::string(ctx) + ": truncated fixed32");
    uint32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        if (end - p < 8) fail(std::string(ctx) + ": truncated fixed64");
        p += 8;
        break;
      case 2:
        bytes();
        break;
      case 5:
        fixed32();
        break;
      default:
        fail(std::string(ctx) + ": unsupported wire type " + std::to_string(wire));
    }
  }
  static ProtoReader of(std::string_view b, const char* ctx) {
    auto* s = reinterpret_cast<const unsigned char*>(b.data());
    return {s, s + b.size(), ctx};
  }
};

// Calls on_field(field number, wire type, reader) for each field of a message; on_field reads
// the value of the fields it knows and returns false for the others, which are skipped.
template <class F>
void for_each_field(ProtoReader r, F on_field) {
  while (!r.done()) {
    uint64_t key = r.varint();
    auto field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (!on_field(field, wire, r)) r.skip(wire);
  }
}

SpmPiece read_piece(ProtoReader message) {
  SpmPiece piece;
  for_each_field(message, [&](uint32_t f, uint32_t w, ProtoReader& r) {
    if (f == 1 && w == 2) {
      piece.piece = std::string(r.bytes());
      if (!is_valid_utf8(piece.piece)) fail("sentencepiece piece: invalid UTF-8");
    } else if (f == 2 && w == 5) {
      uint32_t bits = r.fixed32();
      std::memcpy(&piece.score, &bits, 4);
    } else if (f == 3 && w == 0) {
      piece.type = static_cast<int>(r.varint());
      if (piece.type < 1 || piece.type > 6) fail("sentencepiece piece: unknown type");
    } else {
      return false;
    }
    return true;
  });
  return piece;
}

void read_trainer_spec(ProtoReader message, SpmConfig& m) {
  for_each_field(message, [&](uint32_t f, uint32_t w, ProtoReader& r) {
    if (w != 0) return false;
    if (f == 3)
      m.model_type = static_cast<int>(r.varint());
    else if (f == 35)
      m.byte_fallback = r.varint() != 0;
    else if (f == 40)
      m.unk_id = static_cast<int32_t>(r.varint());
    else
      return false;
    return true;
  });
}

void read_normalizer_spec(ProtoReader message, SpmConfig& m) {
  for_each_field(message, [&](uint32_t f, uint32_t w, ProtoReader& r) {
    if (f == 2 && w == 2)
      m.charsmap = std::string(r.bytes());
    else if (f == 3 && w == 0)
      m.add_dummy_prefix = r.varint() != 0;
    else if (f == 4 && w == 0)
      m.remove_extra_whitespaces = r.varint() != 0;
    else if (f == 5 && w == 0)
      m.escape_whitespaces = r.varint() != 0;
    else
      return false;
    return true;
  });
}

}  // namespace

SpmConfig parse_sentencepiece_model(std::string_view data) {
  SpmConfig m;
  for_each_field(ProtoReader::of(data, "sentencepiece model"), [&](uint32_t field, uint32_t wire,
                                                                   ProtoReader& r) {
    if (wire != 2) return false;
    if (field == 1) {
      if (m.pieces.size() >= (1u << 24)) fail("sentencepiece model: too many pieces");
      m.pieces.push_back(read_piece(ProtoReader::of(r.bytes(), "sentencepiece piece")));
    } else if (field == 2) {
      read_trainer_spec(ProtoReader::of(r.bytes(), "sentencepiece trainer_spec"), m);
    } else if (field == 3) {
      read_normalizer_spec(ProtoReader::of(r.bytes(), "sentencepiece normalizer_spec"), m);
    } else {
      return false;
    }
    return true;
  });
  if (m.pieces.empty()) fail("sentencepiece model: no pieces");
  if (m.unk_id < 0 || static_cast<size_t>(m.unk_id) >= m.pieces.size())
    fail("sentencepiece model: unk_id out of range");
  if (m.model_type != 1 && m.model_type != 2)
    fail("sentencepiece model: unsupported model_type " + std::to_string(m.model_type));
  // The decoder knows pieces by their text, so a piece must name one id (sentencepiece refuses
  // duplicates too) and a byte piece must name its byte.
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    const SpmPiece& p = m.pieces[i];
    if (!seen.insert(p.piece).second)
      fail("sentencepiece piece " + std::to_string(i) + ": '" + p.piece + "' is already defined");
    if (p.type == kByte && !parse_byte_token(p.piece))
      fail("sentencepiece piece " + std::to_string(i) + ": byte piece '" + p.piece +
           "' is not of the form <0xNN>");
  }
  return m;
}

// Why .model files do not get the components the reference's converters build (transformers'
// convert_slow_tokenizer.py SpmConverter: Precompiled + Strip + Replace normalizers, Metaspace,
// Unigram or BPE, control and user-defined pieces as added tokens): the ids differ from
// sentencepiece's on 7 of the conformance corpus lines per model, listed with both answers in
// the cases' converted_differences.jsonl (test SentencePieceModelAndItsConversion):
//  - control pieces become special added tokens ("<s> hello </s>"), and the reference's Unigram
//    lattice holds every piece, "<unk>" included; sentencepiece matches neither in text;
//  - user-defined pieces are split off before normalization, so the text after "<sep>" gets a
//    dummy prefix of its own; sentencepiece matches them inside the lattice (score
//    length * max score - 0.1), normalizing the text as a whole;
//  - sentencepiece collapses whitespace runs and trims both ends (the source-code lines);
//  - the charsmap rule that applies is the longest match, the reference's Precompiled takes the
//    shortest per grapheme (the combining-mark lines);
//  - the Unigram lattice sums float scores and breaks exact ties its own way ("aaaa...").
// BPE also merges by piece score with user-defined pieces kept whole and unused pieces split
// back; piece offsets and decoding (" \u2047 " for unknown pieces, control pieces dropped) follow
// sentencepiece too.
namespace {

// Normalized bytes plus, for each of them and for the end, the input byte it came from: a
// replacement's bytes all point at the start of what it replaced, as in sentencepiece.
struct SpmNormalized {
  std::string text;
  std::vector<size_t> n2o;  // text.size() + 1 entries
};

struct SpmNormalizer : Normalizer {
  Charsmap map;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;

  // The longest charsmap rule matching a prefix of input, or its first char unchanged.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const {
    std::string_view replacement;
    size_t longest = 0;
    map.for_each_prefix(input, [&](size_t length, std::string_view r) {
      longest = length;
      replacement = r;
      return false;
    });
    if (longest > 0) return {replacement, longest};
    size_t n = std::min(utf8_len(static_cast<unsigned char>(input[0])), input.size());
    return {input.substr(0, n), n};
  }

  SpmNormalized run(std::string_view input) const {
    SpmNormalized out;
    size_t consumed = 0;
    if (remove_extra_whitespaces) {
      while (!input.empty()) {
        auto [sp, len] = normalize_prefix(input);
        if (sp != " ") break;
        input.remove_prefix(len);
        consumed += len;
      }
    }
    if (input.empty()) {
      out.n2o.push_back(consumed);
      return out;
    }
    const std::string_view ws = escape_whitespaces ? kSpace : std::string_view(" ");
    if (add_dummy_prefix) {
      out.text += ws;
      out.n2o.insert(out.n2o.end(), ws.size(), consumed);
    }
    bool prev_space = remove_extra_whitespaces;
    while (!input.empty()) {
      auto [sp, len] = normalize_prefix(input);
      if (prev_space)
        while (!sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
      if (!sp.empty()) {
        for (char ch : sp) {
          if (ch == ' ') {
            out.text += ws;
            out.n2o.insert(out.n2o.end(), ws.size(), consumed);
          } else {
            out.text += ch;
            out.n2o.push_back(consumed);
          }
        }
        prev_space = sp.back() == ' ';
      }
      consumed += len;
      input.remove_prefix(len);
      if (!remove_extra_whitespaces) prev_space = false;
    }
    if (remove_extra_whitespaces) {
      while (out.text.size() >= ws.size() &&
             out.text.compare(out.text.size() - ws.size(), ws.size(), ws) == 0) {
        size_t length = out.text.size() - ws.size();
        consumed = out.n2o[length];
        out.text.resize(length);
        out.n2o.resize(length);
      }
    }
    out.n2o.push_back(consumed);
    return out;
  }

  // Byte i of the result is aligned to [n2o[i], n2o[i + 1]) of the original, so the pipeline's
  // token offsets (first byte's start, last byte's end) are sentencepiece's [n2o[b], n2o[e]].
  void normalize(NormalizedString& ns) const override {
    SpmNormalized n = run(ns.normalized);
    auto original = [&](size_t p) { return p < ns.align.size() ? ns.align[p].start : ns.orig_end; };
    AlignVec align;
    align.reserve(n.text.size());
    for (size_t i = 0; i < n.text.size(); ++i)
      align.push_back({original(n.n2o[i]), original(n.n2o[i + 1])});
    ns.normalized = std::move(n.text);
    ns.align = std::move(align);
  }
  // The text never depends on alignments, so the ids-only path can skip them.
  bool text_only() const override { return true; }
  bool normalize_text(std::string_view text, std::string& out) const override {
    out = run(text).text;
    return true;
  }
};

struct SpmModel : Model {
  SpmConfig cfg;
  std::unordered_map<std::string, uint32_t> ids;
  std::unordered_map<uint64_t, uint32_t> edges;  // unigram trie over normal/user/unused pieces
  std::vector<int64_t> node_piece;
  std::vector<std::string> user_defined;
  float min_score = 0.0f, max_score = 0.0f;

  explicit SpmModel(SpmConfig config) : cfg(std::move(config)) {
    node_piece.push_back(-1);
    bool any_normal = false;
    for (size_t i = 0; i < cfg.pieces.size(); ++i) {
      const SpmPiece& p = cfg.pieces[i];
      ids.emplace(p.piece, static_cast<uint32_t>(i));
      if (p.type == kNormal) {
        min_score = any_normal ? std::min(min_score, p.score) : p.score;
        max_score = any_normal ? std::max(max_score, p.score) : p.score;
        any_normal = true;
      }
      if (p.type == kUserDefined && !p.piece.empty()) user_defined.push_back(p.piece);
      if (p.type == kNormal || p.type == kUserDefined || p.type == kUnused) {
        uint32_t node = 0;
        for (char ch : p.piece) {
          uint64_t key = (uint64_t(node) << 8) | static_cast<unsigned char>(ch);
          auto [it, added] = edges.try_emplace(key, static_cast<uint32_t>(node_piece.size()));
          if (added) node_piece.push_back(-1);
          node = it->second;
        }
        if (node_piece[node] < 0) node_piece[node] = static_cast<int64_t>(i);
      }
    }
  }

  std::optional<uint32_t> token_to_id(std::string_view token) const override {
    auto it = ids.find(std::string(token));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    if (id >= cfg.pieces.size()) return std::nullopt;
    return cfg.pieces[id].piece;
  }
  size_t vocab_size() const override { return cfg.pieces.size(); }

  int64_t piece_id(std::string_view p) const {
    auto it = ids.find(std::string(p));
    return it == ids.end() ? -1 : static_cast<int64_t>(it->second);
  }
  bool matchable(int64_t id) const {
    if (cfg.merge_any_piece) return true;
    int type = cfg.pieces[static_cast<size_t>(id)].type;
    return type == kNormal || type == kUserDefined || type == kUnused;
  }

  size_t user_prefix(std::string_view s) const {
    size_t best = 0;
    for (const auto& u : user_defined)
      if (u.size() > best && s.compare(0, u.size(), u) == 0) best = u.size();
    return best;
  }

  void encode_unigram(std::string_view s, std::vector<std::pair<size_t, int64_t>>& out) const {
    struct Node {
      int64_t id = -1;
      float score = 0.0f;
      int64_t starts_at = -1;
    };
    std::vector<Node> best(s.size() + 1);
    const float unk_score = min_score - 10.0f;  // float sums, as sentencepiece
    size_t start = 0;
    while (start < s.size()) {
      float here = best[start].score;
      bool single = false;
      size_t mblen = std::min(utf8_len(static_cast<unsigned char>(s[start])), s.size() - start);
      uint32_t node = 0;
      for (size_t k = start; k < s.size(); ++k) {
        auto it = edges.find((uint64_t(node) << 8) | static_cast<unsigned char>(s[k]));
        if (it == edges.end()) break;
        node = it->second;
        int64_t id = node_piece[node];
        if (id < 0 || cfg.pieces[static_cast<size_t>(id)].type == kUnused) continue;
        size_t length = k + 1 - start;
        const SpmPiece& p = cfg.pieces[static_cast<size_t>(id)];
        float score =
            p.type == kUserDefined ? static_cast<float>(length) * max_score - 0.1f : p.score;
        float cand = score + here;
        Node& target = best[k + 1];
        if (target.starts_at < 0 || cand > target.score)
          target = {id, cand, static_cast<int64_t>(start)};
        if (length == mblen) single = true;
      }
      if (!single) {
        Node& target = best[start + mblen];
        float cand = unk_score + here;
        if (target.starts_at < 0 || cand > target.score)
          target = {cfg.unk_id, cand, static_cast<int64_t>(start)};
      }
      start += mblen;
    }
    size_t end = s.size();
    size_t first = out.size();
    while (end > 0) {
      const Node& n = best[end];
      out.push_back({end - static_cast<size_t>(n.starts_at), n.id});
      end = static_cast<size_t>(n.starts_at);
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }

  void encode_bpe(std::string_view s, std::vector<std::pair<size_t, int64_t>>& out) const {
    struct Symbol {
      int prev, next;
      bool freeze;
      size_t begin, len;
    };
    std::vector<Symbol> sym;
    for (size_t i = 0; i < s.size();) {
      size_t n = user_prefix(s.substr(i));
      bool frozen = n > 0;
      if (!frozen) n = std::min(utf8_len(static_cast<unsigned char>(s[i])), s.size() - i);
      int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, idx + 1, frozen, i, n});
      i += n;
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    struct Pair {
      int left, right;
      float score;
      size_t size;
    };
    auto worse = [](const Pair& a, const Pair& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
    std::unordered_map<std::string, std::pair<std::string, std::string>> rev_merge;
    auto piece_of = [&](const Symbol& x) { return s.substr(x.begin, x.len); };
    auto maybe_add = [&](int left, int right) {
      if (left < 0 || right < 0 || sym[left].freeze || sym[right].freeze) return;
      std::string piece(s.substr(sym[left].begin, sym[left].len + sym[right].len));
      auto it = ids.find(piece);
      if (it == ids.end() || !matchable(it->second)) return;
      const SpmPiece& p = cfg.pieces[it->second];
      agenda.push({left, right, p.score, piece.size()});
      if (p.type == kUnused && !cfg.merge_any_piece)
        rev_merge[piece] = {std::string(piece_of(sym[left])), std::string(piece_of(sym[right]))};
    };
    for (size_t i = 1; i < sym.size(); ++i) maybe_add(static_cast<int>(i) - 1, static_cast<int>(i));
    while (!agenda.empty()) {
      Pair top = agenda.top();
      agenda.pop();
      Symbol& l = sym[top.left];
      Symbol& r = sym[top.right];
      if (l.len == 0 || r.len == 0 || l.len + r.len != top.size) continue;
      l.len += r.len;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = top.left;
      r.len = 0;
      maybe_add(l.prev, top.left);
      maybe_add(top.left, l.next);
    }
    // Unused pieces are split back into the merges that formed them.
    std::function<void(std::string_view)> resegment = [&](std::string_view w) {
      int64_t id = piece_id(w);
      if (id >= 0 && !cfg.merge_any_piece && cfg.pieces[static_cast<size_t>(id)].type == kUnused) {
        auto it = rev_merge.find(std::string(w));
        if (it != rev_merge.end()) {
          std::string a = it->second.first, b = it->second.second;
          resegment(a);
          resegment(b);
          return;
        }
      }
      if (id < 0 || (!matchable(id) && cfg.pieces[static_cast<size_t>(id)].type == kUnknown))
        id = cfg.unk_id;
      out.push_back({w.size(), id});
    };
    for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next)
      resegment(piece_of(sym[static_cast<size_t>(i)]));
  }

  // Calls on_token(id, token, start, end) for each token of the normalized text s (token is
  // valid only during the call), and on_extend(end) when an unknown piece joins the unknown
  // token before it: unknown runs merge into one token spelled by their text. With byte
  // fallback each unknown piece (always one char: pieces only grow into vocabulary pieces)
  // becomes its byte pieces, one per byte, so that all but the last start and end where the
  // char starts.
  template <class OnToken, class OnExtend>
  void for_each_token(std::string_view s, OnToken on_token, OnExtend on_extend) const {
    thread_local std::vector<std::pair<size_t, int64_t>> pieces;
    pieces.clear();
    if (cfg.model_type == 1)
      encode_unigram(s, pieces);
    else
      encode_bpe(s, pieces);
    size_t pos = 0;
    bool prev_unk = false;
    for (auto [len, id] : pieces) {
      bool unk = id == cfg.unk_id;
      if (unk && cfg.byte_fallback) {
        for (size_t i = 0; i < len; ++i) {
          std::string bp = byte_token(static_cast<unsigned char>(s[pos + i]));
          int64_t bid = piece_id(bp);
          on_token(static_cast<uint32_t>(bid >= 0 ? bid : cfg.unk_id), bp, pos + i, pos + i + 1);
        }
        prev_unk = false;
      } else if (unk && prev_unk) {
        on_extend(pos + len);
      } else {
        on_token(
            static_cast<uint32_t>(id),
            unk ? s.substr(pos, len) : std::string_view(cfg.pieces[static_cast<size_t>(id)].piece),
            pos, pos + len);
        prev_unk = unk;
      }
      pos += len;
    }
  }
  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    for_each_token(
        s,
        [&](uint32_t id, std::string_view token, size_t start, size_t end) {
          out.push_back({id, std::string(token), start, end});
        },
        [&](size_t end) {
          out.back().value.append(s.substr(out.back().end, end - out.back().end));
          out.back().end = end;
        });
  }
  void tokenize_ids(std::string_view s, std::vector<uint32_t>& out) const override {
    for_each_token(
        s, [&](uint32_t id, std::string_view, size_t, size_t) { out.push_back(id); },
        [](size_t) {});
  }
};

struct SpmDecoder : Decoder {
  std::unordered_map<std::string, int> special_type;  // control, unknown and byte pieces
  bool add_dummy_prefix = true;

  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string out, bytes;
    bool bos_ws = true;
    auto flush_bytes = [&] {
      if (bytes.empty()) return;
      // Valid UTF-8 runs are kept; every other byte becomes U+FFFD.
      size_t i = 0;
      while (i < bytes.size()) {
        auto lead = static_cast<unsigned char>(bytes[i]);
        size_t n = utf8_len(lead);
        if (lead >= 0x80 && (lead < 0xC2 || i + n > bytes.size() ||
                             !is_valid_utf8(std::string_view(bytes).substr(i, n)))) {
          out += "\xEF\xBF\xBD";
          ++i;
        } else {
          out.append(bytes, i, n);
          i += n;
        }
      }
      bytes.clear();
      bos_ws = false;
    };
    for (const auto& token : tokens) {
      auto it = special_type.find(token);
      int type = it == special_type.end() ? kNormal : it->second;
      if (type == kByte) {
        bytes.push_back(static_cast<char>(*parse_byte_token(token)));
        continue;
      }
      flush_bytes();
      if (type == kControl) continue;
      if (type == kUnknown) {
        out += " \xE2\x81\x87 ";
        bos_ws = false;
        continue;
      }
      std::string_view piece = token;
      if (bos_ws && add_dummy_prefix && piece.compare(0, kSpace.size(), kSpace) == 0)
        piece.remove_prefix(kSpace.size());
      // Each U+2581 becomes a space.
      bool any = false;
      for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, kSpace.size(), kSpace) == 0) {
          out.push_back(' ');
          i += kSpace.size();
        } else {
          out.push_back(piece[i++]);
        }
        any = true;
      }
      if (any) bos_ws = false;
    }
    flush_bytes();
    tokens.clear();
    tokens.push_back(std::move(out));
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_spm_normalizer(const SpmConfig& cfg) {
  auto n = std::make_unique<SpmNormalizer>();
  n->map = Charsmap::parse(cfg.charsmap, "sentencepiece charsmap");
  n->add_dummy_prefix = cfg.add_dummy_prefix;
  n->remove_extra_whitespaces = cfg.remove_extra_whitespaces;
  n->escape_whitespaces = cfg.escape_whitespaces;
  return n;
}

std::unique_ptr<Model> make_spm_model(SpmConfig cfg) {
  return std::make_unique<SpmModel>(std::move(cfg));
}

std::unique_ptr<Decoder> make_spm_decoder(const SpmConfig& cfg) {
  auto d = std::make_unique<SpmDecoder>();
  for (const SpmPiece& p : cfg.pieces)
    if (p.type == kControl || p.type == kUnknown || p.type == kByte)
      d->special_type.emplace(p.piece, p.type);
  d->add_dummy_prefix = cfg.add_dummy_prefix;
  return d;
}

}  // namespace ember::tokenizers::detail
