#include "spm.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>

namespace ember::tokenizers::detail {

namespace {
const std::string kSpace = "\xE2\x96\x81";  // U+2581

enum PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

std::string byte_piece(unsigned char b) {
  static const char* hex = "0123456789ABCDEF";
  std::string s = "<0x00>";
  s[3] = hex[b >> 4];
  s[4] = hex[b & 15];
  return s;
}

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
}  // namespace

SpmConfig parse_sentencepiece_model(std::string_view data) {
  SpmConfig m;
  auto r = ProtoReader::of(data, "sentencepiece model");
  while (!r.done()) {
    uint64_t key = r.varint();
    auto field = static_cast<uint32_t>(key >> 3);
    auto wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      auto pr = ProtoReader::of(r.bytes(), "sentencepiece piece");
      SpmPiece piece;
      while (!pr.done()) {
        uint64_t k = pr.varint();
        auto f = static_cast<uint32_t>(k >> 3), w = static_cast<uint32_t>(k & 7);
        if (f == 1 && w == 2) {
          piece.piece = std::string(pr.bytes());
          if (!is_valid_utf8(piece.piece)) fail("sentencepiece piece: invalid UTF-8");
        } else if (f == 2 && w == 5) {
          uint32_t bits = pr.fixed32();
          std::memcpy(&piece.score, &bits, 4);
        } else if (f == 3 && w == 0) {
          piece.type = static_cast<int>(pr.varint());
          if (piece.type < 1 || piece.type > 6) fail("sentencepiece piece: unknown type");
        } else {
          pr.skip(w);
        }
      }
      if (m.pieces.size() >= (1u << 24)) fail("sentencepiece model: too many pieces");
      m.pieces.push_back(std::move(piece));
    } else if (field == 2 && wire == 2) {
      auto tr = ProtoReader::of(r.bytes(), "sentencepiece trainer_spec");
      while (!tr.done()) {
        uint64_t k = tr.varint();
        auto f = static_cast<uint32_t>(k >> 3), w = static_cast<uint32_t>(k & 7);
        if (f == 3 && w == 0)
          m.model_type = static_cast<int>(tr.varint());
        else if (f == 35 && w == 0)
          m.byte_fallback = tr.varint() != 0;
        else if (f == 40 && w == 0)
          m.unk_id = static_cast<int32_t>(tr.varint());
        else
          tr.skip(w);
      }
    } else if (field == 3 && wire == 2) {
      auto nr = ProtoReader::of(r.bytes(), "sentencepiece normalizer_spec");
      while (!nr.done()) {
        uint64_t k = nr.varint();
        auto f = static_cast<uint32_t>(k >> 3), w = static_cast<uint32_t>(k & 7);
        if (f == 2 && w == 2)
          m.charsmap = std::string(nr.bytes());
        else if (f == 3 && w == 0)
          m.add_dummy_prefix = nr.varint() != 0;
        else if (f == 4 && w == 0)
          m.remove_extra_whitespaces = nr.varint() != 0;
        else if (f == 5 && w == 0)
          m.escape_whitespaces = nr.varint() != 0;
        else
          nr.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  if (m.pieces.empty()) fail("sentencepiece model: no pieces");
  if (m.unk_id < 0 || static_cast<size_t>(m.unk_id) >= m.pieces.size())
    fail("sentencepiece model: unk_id out of range");
  if (m.model_type != 1 && m.model_type != 2)
    fail("sentencepiece model: unsupported model_type " + std::to_string(m.model_type));
  return m;
}

SpmTokenizer::SpmTokenizer(SpmConfig config) : cfg_(std::move(config)) {
  if (!cfg_.charsmap.empty()) {
    if (cfg_.charsmap.size() < 4) fail("sentencepiece charsmap too short");
    uint32_t trie_size;
    std::memcpy(&trie_size, cfg_.charsmap.data(), 4);
    if (trie_size % 4 != 0 || trie_size > cfg_.charsmap.size() - 4)
      fail("sentencepiece charsmap: trie size out of range");
    trie_.resize(trie_size / 4);
    std::memcpy(trie_.data(), cfg_.charsmap.data() + 4, trie_size);
    strings_ = cfg_.charsmap.substr(4 + trie_size);
  }
  node_piece_.push_back(-1);
  bool any_normal = false;
  for (size_t i = 0; i < cfg_.pieces.size(); ++i) {
    const SpmPiece& p = cfg_.pieces[i];
    ids_.emplace(p.piece, static_cast<uint32_t>(i));
    if (p.type == kNormal) {
      min_score_ = any_normal ? std::min(min_score_, p.score) : p.score;
      max_score_ = any_normal ? std::max(max_score_, p.score) : p.score;
      any_normal = true;
    }
    if (p.type == kUserDefined && !p.piece.empty()) user_defined_.push_back(p.piece);
    if (p.type == kNormal || p.type == kUserDefined || p.type == kUnused) {
      uint32_t node = 0;
      for (char ch : p.piece) {
        uint64_t key = (uint64_t(node) << 8) | static_cast<unsigned char>(ch);
        auto it = edges_.find(key);
        if (it == edges_.end()) {
          auto next = static_cast<uint32_t>(node_piece_.size());
          node_piece_.push_back(-1);
          edges_.emplace(key, next);
          node = next;
        } else {
          node = it->second;
        }
      }
      if (node_piece_[node] < 0) node_piece_[node] = static_cast<int64_t>(i);
    }
  }
}

std::optional<uint32_t> SpmTokenizer::token_to_id(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> SpmTokenizer::id_to_token(uint32_t id) const {
  if (id >= cfg_.pieces.size()) return std::nullopt;
  return cfg_.pieces[id].piece;
}

int64_t SpmTokenizer::piece_id(std::string_view p) const {
  auto it = ids_.find(std::string(p));
  return it == ids_.end() ? -1 : static_cast<int64_t>(it->second);
}

// Longest charsmap rule matching a prefix of input, or one char (U+FFFD for a bad byte).
std::pair<std::string_view, size_t> SpmTokenizer::normalize_prefix(std::string_view input) const {
  size_t longest = 0;
  uint32_t value = 0;
  if (!trie_.empty()) {
    size_t node = 0;
    auto offset = [](uint32_t unit) -> size_t { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    node ^= offset(trie_[0]);
    for (size_t k = 0; k < input.size(); ++k) {
      auto c = static_cast<unsigned char>(input[k]);
      if (c == 0) break;
      node ^= c;
      if (node >= trie_.size()) break;
      uint32_t unit = trie_[node];
      if ((unit & ((1u << 31) | 0xFF)) != c) break;
      node ^= offset(unit);
      if ((unit >> 8) & 1) {
        if (node >= trie_.size()) break;
        longest = k + 1;
        value = trie_[node] & ((1u << 31) - 1);
      }
    }
  }
  if (longest > 0 && value < strings_.size()) {
    size_t end = strings_.find('\0', value);
    if (end == std::string::npos) end = strings_.size();
    return {std::string_view(strings_).substr(value, end - value), longest};
  }
  size_t n = utf8_len(static_cast<unsigned char>(input[0]));
  return {input.substr(0, std::min(n, input.size())), std::min(n, input.size())};
}

SpmTokenizer::Normalized SpmTokenizer::normalize(std::string_view input) const {
  Normalized out;
  size_t consumed = 0;
  if (cfg_.remove_extra_whitespaces) {
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
  auto add_ws = [&] {
    const std::string ws = cfg_.escape_whitespaces ? kSpace : " ";
    out.text += ws;
    out.n2o.insert(out.n2o.end(), ws.size(), consumed);
  };
  if (cfg_.add_dummy_prefix) add_ws();
  bool prev_space = cfg_.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [sp, len] = normalize_prefix(input);
    if (prev_space)
      while (!sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char ch : sp) {
        if (cfg_.escape_whitespaces && ch == ' ') {
          out.text += kSpace;
          out.n2o.insert(out.n2o.end(), kSpace.size(), consumed);
        } else {
          out.text += ch;
          out.n2o.push_back(consumed);
        }
      }
      prev_space = sp.back() == ' ';
    }
    consumed += len;
    input.remove_prefix(len);
    if (!cfg_.remove_extra_whitespaces) prev_space = false;
  }
  if (cfg_.remove_extra_whitespaces) {
    const std::string ws = cfg_.escape_whitespaces ? kSpace : " ";
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

size_t SpmTokenizer::user_prefix(std::string_view s) const {
  size_t best = 0;
  for (const auto& u : user_defined_)
    if (u.size() > best && s.compare(0, u.size(), u) == 0) best = u.size();
  return best;
}

void SpmTokenizer::encode_unigram(std::string_view s,
                                  std::vector<std::pair<size_t, int64_t>>& out) const {
  struct Node {
    int64_t id = -1;
    float score = 0.0f;
    int64_t starts_at = -1;
  };
  std::vector<Node> best(s.size() + 1);
  const float unk_score = min_score_ - 10.0f;  // float sums, as sentencepiece
  size_t start = 0;
  while (start < s.size()) {
    float here = best[start].score;
    bool single = false;
    size_t mblen = std::min(utf8_len(static_cast<unsigned char>(s[start])), s.size() - start);
    uint32_t node = 0;
    for (size_t k = start; k < s.size(); ++k) {
      auto it = edges_.find((uint64_t(node) << 8) | static_cast<unsigned char>(s[k]));
      if (it == edges_.end()) break;
      node = it->second;
      int64_t id = node_piece_[node];
      if (id < 0 || cfg_.pieces[static_cast<size_t>(id)].type == kUnused) continue;
      size_t length = k + 1 - start;
      const SpmPiece& p = cfg_.pieces[static_cast<size_t>(id)];
      float score =
          p.type == kUserDefined ? static_cast<float>(length) * max_score_ - 0.1f : p.score;
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
        target = {cfg_.unk_id, cand, static_cast<int64_t>(start)};
    }
    start += mblen;
  }
  size_t end = s.size();
  std::vector<std::pair<size_t, int64_t>> rev;
  while (end > 0) {
    const Node& n = best[end];
    rev.push_back({end - static_cast<size_t>(n.starts_at), n.id});
    end = static_cast<size_t>(n.starts_at);
  }
  out.assign(rev.rbegin(), rev.rend());
}

void SpmTokenizer::encode_bpe(std::string_view s,
                              std::vector<std::pair<size_t, int64_t>>& out) const {
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
    auto it = ids_.find(piece);
    if (it == ids_.end()) return;
    const SpmPiece& p = cfg_.pieces[it->second];
    if (p.type != kNormal && p.type != kUserDefined && p.type != kUnused) return;
    agenda.push({left, right, p.score, piece.size()});
    if (p.type == kUnused)
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
    if (id >= 0 && cfg_.pieces[static_cast<size_t>(id)].type == kUnused) {
      auto it = rev_merge.find(std::string(w));
      if (it != rev_merge.end()) {
        std::string a = it->second.first, b = it->second.second;
        resegment(a);
        resegment(b);
        return;
      }
    }
    if (id < 0 || (cfg_.pieces[static_cast<size_t>(id)].type != kNormal &&
                   cfg_.pieces[static_cast<size_t>(id)].type != kUserDefined &&
                   cfg_.pieces[static_cast<size_t>(id)].type != kUnused))
      id = id >= 0 && cfg_.pieces[static_cast<size_t>(id)].type != kUnknown ? id : cfg_.unk_id;
    out.push_back({w.size(), id});
  };
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next)
    resegment(piece_of(sym[static_cast<size_t>(i)]));
}

Encoding SpmTokenizer::encode(std::string_view text) const {
  if (!is_valid_utf8(text)) fail("input text is not valid UTF-8");
  Normalized n = normalize(text);
  std::vector<std::pair<size_t, int64_t>> pieces;
  if (cfg_.model_type == 1)
    encode_unigram(n.text, pieces);
  else
    encode_bpe(n.text, pieces);
  Encoding e;
  size_t consumed = 0;
  bool prev_unk = false;
  for (auto [len, id] : pieces) {
    std::string_view w = std::string_view(n.text).substr(consumed, len);
    size_t ob = n.n2o[consumed], oe = n.n2o[consumed + len];
    bool unk = id == cfg_.unk_id;
    if (unk && cfg_.byte_fallback) {
      for (size_t i = 0; i < w.size(); ++i) {
        std::string bp = byte_piece(static_cast<unsigned char>(w[i]));
        int64_t bid = piece_id(bp);
        e.ids.push_back(static_cast<uint32_t>(bid >= 0 ? bid : cfg_.unk_id));
        e.tokens.push_back(bp);
        e.offsets.push_back({ob, i + 1 == w.size() ? oe : ob});
      }
      prev_unk = false;
    } else if (unk && prev_unk) {
      e.tokens.back() += w;
      e.offsets.back().second = oe;
    } else {
      e.ids.push_back(static_cast<uint32_t>(id));
      e.tokens.push_back(unk ? std::string(w) : cfg_.pieces[static_cast<size_t>(id)].piece);
      e.offsets.push_back({ob, oe});
      prev_unk = unk;
    }
    consumed += len;
  }
  size_t count = e.ids.size();
  e.type_ids.assign(count, 0);
  e.word_ids.assign(count, -1);
  e.sequence_ids.assign(count, 0);
  e.special_tokens_mask.assign(count, 0);
  e.attention_mask.assign(count, 1);
  return e;
}

std::string SpmTokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string out, bytes;
  bool bos_ws = true;
  auto flush_bytes = [&] {
    if (bytes.empty()) return;
    // Valid UTF-8 runs are kept; every other byte becomes U+FFFD.
    size_t i = 0;
    while (i < bytes.size()) {
      size_t n = utf8_len(static_cast<unsigned char>(bytes[i]));
      if (static_cast<unsigned char>(bytes[i]) >= 0x80 &&
          (static_cast<unsigned char>(bytes[i]) < 0xC2 || i + n > bytes.size() ||
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
  for (uint32_t id : ids) {
    if (id >= cfg_.pieces.size()) fail("decode: id " + std::to_string(id) + " out of range");
    const SpmPiece& p = cfg_.pieces[id];
    if (p.type == kByte && p.piece.size() == 6) {
      unsigned value = 0;
      const char* hex = p.piece.data() + 3;
      const auto [end, ec] = std::from_chars(hex, hex + 2, value, 16);
      if (ec != std::errc() || end != hex + 2) {
        fail("decode: byte piece '" + p.piece + "' is not of the form <0xNN>");
      }
      bytes.push_back(static_cast<char>(value));
      continue;
    }
    flush_bytes();
    if (p.type == kControl) continue;
    if (p.type == kUnknown) {
      out += " \xE2\x81\x87 ";
      bos_ws = false;
      continue;
    }
    std::string_view piece = p.piece;
    if (bos_ws && cfg_.add_dummy_prefix && piece.compare(0, kSpace.size(), kSpace) == 0)
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
  return out;
}

}  // namespace ember::tokenizers::detail
