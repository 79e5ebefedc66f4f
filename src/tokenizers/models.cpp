// Models: BPE, WordPiece, WordLevel and Unigram. Vocabularies are hash maps from token to id plus
// an id-indexed array back; BPE merges are keyed by the (left id, right id) pair packed in a u64.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <queue>
#include <random>
#include <unordered_map>

#include "json_util.hpp"
#include "unigram_lattice.hpp"

namespace ember::tokenizers::detail {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

constexpr uint32_t kMaxId = 1u << 24;

inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0x94d049bb133111ebull;
  h ^= h >> 29;
  return h;
}

// Read-only open-addressing map from strings (kept in one arena) to ids: one probe sequence and
// one memcmp per lookup, no allocation.
class FlatStringMap {
 public:
  template <class Map>
  void build(const Map& map) {
    size_t cap = 16;
    while (cap < map.size() * 2 + 1) cap <<= 1;
    slots_.assign(cap, Slot{});
    arena_.clear();
    for (const auto& [key, id] : map) {
      uint64_t h = hash_bytes(key);
      size_t i = h & (cap - 1);
      while (slots_[i].used) i = (i + 1) & (cap - 1);
      slots_[i] = {h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id,
                   true};
      arena_ += key;
    }
  }
  std::optional<uint32_t> find(std::string_view key) const {
    if (slots_.empty()) return std::nullopt;
    uint64_t h = hash_bytes(key);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (!s.used) return std::nullopt;
      if (s.hash == h && s.len == key.size() &&
          std::memcmp(arena_.data() + s.off, key.data(), key.size()) == 0)
        return s.id;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0, len = 0, id = 0;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::string arena_;
};

// Vocab shared by the models: token -> id and id -> token.
struct Vocab {
  VocabMap map;
  FlatStringMap fast;
  std::vector<std::string> by_id;
  std::vector<bool> present;

  void build_reverse(const std::string& ctx) {
    uint32_t max_id = 0;
    for (const auto& [t, id] : map) max_id = std::max(max_id, id);
    if (!map.empty()) {
      if (max_id >= kMaxId) fail(ctx + ": id " + std::to_string(max_id) + " out of range");
      by_id.assign(max_id + 1, {});
      present.assign(max_id + 1, false);
    }
    for (const auto& [t, id] : map) {
      if (present[id]) fail(ctx + ": id " + std::to_string(id) + " is duplicated");
      present[id] = true;
      by_id[id] = t;
    }
    fast.build(map);
  }
  std::optional<uint32_t> find(std::string_view t) const { return fast.find(t); }
  std::optional<std::string_view> token(uint32_t id) const {
    if (id >= by_id.size() || !present[id]) return std::nullopt;
    return by_id[id];
  }
};

Vocab parse_vocab_object(const Json& j, const std::string& ctx) {
  const Json* v = field(j, "vocab");
  if (!v) fail(ctx + ".vocab: missing required field");
  if (!v->is_object()) fail(ctx + ".vocab: expected an object of token -> id");
  Vocab vocab;
  vocab.map.reserve(v->size());
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_unsigned() &&
        !(it.value().is_number_integer() && it.value().get<int64_t>() >= 0))
      fail(ctx + ".vocab['" + it.key() + "']: expected a non-negative integer id");
    uint64_t id = it.value().get<uint64_t>();
    if (id >= kMaxId) fail(ctx + ".vocab['" + it.key() + "']: id out of range");
    vocab.map.emplace(it.key(), static_cast<uint32_t>(id));
  }
  vocab.build_reverse(ctx + ".vocab");
  return vocab;
}

// Bounded cache of word -> (id, byte length) tokens. Each thread has its own two-way
// set-associative table with least-recently-used replacement (no locks), so two frequent words
// that share a set do not evict each other; entries are tagged with the owning cache's unique
// id, so a destroyed model's entries can never be mistaken for another's.
class WordCache {
 public:
  static constexpr size_t kSets = 2048;
  // Long words are the costliest to merge, so they are worth caching up to the reference's own
  // limit (256 bytes).
  static constexpr size_t kMaxWordBytes = 256;
  using Value = std::vector<std::pair<uint32_t, uint32_t>>;

  WordCache() : owner_(next_owner().fetch_add(1) + 1) {}
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  bool get(std::string_view word, Value& out) const {
    const Value* v = find(word);
    if (v) out = *v;
    return v != nullptr;
  }
  // The cached tokens of word, valid until the next find or put on this thread; nullptr on a
  // miss.
  const Value* find(std::string_view word) const {
    if (word.size() > kMaxWordBytes) return nullptr;
    uint64_t h = hash_bytes(word);
    Entry* set = &table()[(h & (kSets - 1)) * 2];
    for (size_t way = 0; way < 2; ++way) {
      const Entry& e = set[way];
      if (e.owner != owner_ || e.hash != h || e.word != word) continue;
      if (way == 1) std::swap(set[0], set[1]);  // the most recently used stays in way 0
      return &set[0].value;
    }
    return nullptr;
  }
  void put(std::string_view word, const Value& v) const {
    if (word.size() > kMaxWordBytes) return;
    uint64_t h = hash_bytes(word);
    Entry* set = &table()[(h & (kSets - 1)) * 2];
    std::swap(set[0], set[1]);  // way 1 (least recently used) is replaced and becomes way 0
    Entry& e = set[0];
    e.owner = owner_;
    e.hash = h;
    e.word.assign(word);
    e.value = v;
  }

 private:
  struct Entry {
    uint64_t owner = 0, hash = 0;
    std::string word;
    Value value;
  };
  static std::vector<Entry>& table() {
    thread_local std::vector<Entry> t(kSets * 2);
    return t;
  }
  static std::atomic<uint64_t>& next_owner() {
    static std::atomic<uint64_t> n{0};
    return n;
  }
  uint64_t owner_;
};

inline uint64_t pack(uint32_t a, uint32_t b) {
  return (uint64_t(a) << 32) | b;
}

struct BPE : Model {
  Vocab vocab;
  MergeMap merges;
  BpeOptions opt;
  std::optional<std::string_view> continuing_subword_prefix() const override {
    return opt.continuing_subword_prefix;
  }
  std::optional<uint32_t> unk_id;
  std::array<int64_t, 256> byte_ids{};
  WordCache cache;
  mutable std::mutex rng_mutex;
  mutable std::mt19937_64 rng{0x5eed};

  // Ids of the one- and two-byte chars (-1: not in the vocabulary), so that splitting a word
  // into chars needs no hashing. Empty when a prefix or suffix changes the lookup keys.
  std::vector<int32_t> char_ids;

  struct Symbol {
    uint32_t id;
    int32_t prev, next;
    uint32_t len;
  };

  void build_char_ids() {
    char_ids.clear();
    if (opt.continuing_subword_prefix || opt.end_of_word_suffix) return;
    char_ids.assign(0x800, -1);
    std::string c;
    for (char32_t cp = 0; cp < 0x800; ++cp) {
      c.clear();
      append_utf8(c, cp);
      if (auto id = vocab.find(c)) char_ids[cp] = static_cast<int32_t>(*id);
    }
  }
  // The id of one char of at most two bytes.
  std::optional<uint32_t> char_id(std::string_view s) const {
    size_t i = 0;
    int32_t id = char_ids[decode_utf8(s, i)];
    if (id < 0) return std::nullopt;
    return static_cast<uint32_t>(id);
  }

  void merge_word(std::string_view w, WordCache::Value& out) const {
    thread_local std::vector<Symbol> syms;
    thread_local std::string buf;
    syms.clear();
    bool has_unk = false;
    uint32_t unk_tok = 0, unk_len = 0;
    auto add = [&](uint32_t id, uint32_t len) {
      int32_t n = static_cast<int32_t>(syms.size());
      syms.push_back({id, n - 1, n + 1, len});
    };
    size_t i = 0;
    while (i < w.size()) {
      size_t b = i;
      i += utf8_len(static_cast<unsigned char>(w[i]));
      bool is_first = b == 0, is_last = i >= w.size();
      std::string_view s = w.substr(b, i - b);
      auto byte_len = static_cast<uint32_t>(i - b);
      if ((!is_first && opt.continuing_subword_prefix) || (is_last && opt.end_of_word_suffix)) {
        buf.clear();
        if (!is_first && opt.continuing_subword_prefix) buf += *opt.continuing_subword_prefix;
        buf += s;
        if (is_last && opt.end_of_word_suffix) buf += *opt.end_of_word_suffix;
        s = buf;
      }
      auto id = s.size() <= 2 && !char_ids.empty() ? char_id(s) : vocab.find(s);
      if (id) {
        if (has_unk) {
          add(unk_tok, unk_len);
          has_unk = false;
        }
        add(*id, byte_len);
        continue;
      }
      if (opt.byte_fallback) {
        bool all = true;
        for (char ch : s) all &= byte_ids[static_cast<unsigned char>(ch)] >= 0;
        if (all) {
          for (char ch : s) add(static_cast<uint32_t>(byte_ids[static_cast<unsigned char>(ch)]), 1);
          continue;
        }
      }
      if (unk_id) {
        if (has_unk && opt.fuse_unk) {
          unk_len += byte_len;
        } else {
          if (has_unk) add(unk_tok, unk_len);
          has_unk = true;
          unk_tok = *unk_id;
          unk_len = byte_len;
        }
      }
    }
    if (has_unk) add(unk_tok, unk_len);
    if (!syms.empty()) syms.back().next = -1;

    // A queued merge stays valid while the pair at pos is still (left, right): a live symbol only
    // grows, so a changed pair covers more bytes and can no longer produce new_id.
    struct Merge {
      uint32_t rank, pos, new_id;
      uint64_t pair;
      bool operator>(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    thread_local std::vector<Merge> heap_storage;
    heap_storage.clear();
    std::priority_queue<Merge, std::vector<Merge>, std::greater<>> queue(std::greater<>{},
                                                                         std::move(heap_storage));
    auto push = [&](size_t left_pos, uint32_t left, uint32_t right) {
      uint64_t pair = pack(left, right);
      if (const MergeMap::Slot* m = merges.get(pair))
        queue.push({m->rank, static_cast<uint32_t>(left_pos), m->id, pair});
    };
    for (size_t k = 0; k + 1 < syms.size(); ++k) push(k, syms[k].id, syms[k + 1].id);
    std::vector<Merge> skipped;
    const bool use_dropout = opt.dropout > 0.0;
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    while (!queue.empty()) {
      Merge top = queue.top();
      queue.pop();
      if (use_dropout) {
        bool skip;
        {
          std::lock_guard<std::mutex> lock(rng_mutex);
          skip = uni(rng) < opt.dropout;
        }
        if (skip) {
          skipped.push_back(top);
          continue;
        }
        for (auto& s : skipped) queue.push(s);
        skipped.clear();
      }
      Symbol& cur = syms[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      auto next_pos = static_cast<size_t>(cur.next);
      Symbol right = syms[next_pos];
      if (pack(cur.id, right.id) != top.pair) continue;
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      syms[next_pos].len = 0;
      if (right.next >= 0)
        syms[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
      const Symbol& c2 = syms[top.pos];
      if (c2.prev >= 0) {
        auto prev_pos = static_cast<size_t>(c2.prev);
        push(prev_pos, syms[prev_pos].id, c2.id);
      }
      if (c2.next >= 0) push(top.pos, c2.id, syms[static_cast<size_t>(c2.next)].id);
    }
    out.clear();
    for (const auto& s : syms)
      if (s.len != 0) out.push_back({s.id, s.len});
  }

  void tokenize(std::string_view text, std::vector<Token>& out) const override {
    if (text.empty()) return;
    const bool cacheable = opt.dropout <= 0.0;
    if (cacheable && opt.ignore_merges) {
      if (auto id = vocab.find(text)) {
        out.push_back({*id, std::string(text), 0, text.size()});
        return;
      }
    }
    thread_local WordCache::Value word;
    if (!cacheable || !cache.get(text, word)) {
      merge_word(text, word);
      if (cacheable) cache.put(text, word);
    }
    size_t off = 0;
    for (auto [id, len] : word) {
      out.push_back({id, std::string(*vocab.token(id)), off, off + len});
      off += len;
    }
  }
  void tokenize_ids(std::string_view text, std::vector<uint32_t>& out) const override {
    if (text.empty()) return;
    const bool cacheable = opt.dropout <= 0.0;
    if (cacheable && opt.ignore_merges) {
      if (auto id = vocab.find(text)) {
        out.push_back(*id);
        return;
      }
    }
    if (const WordCache::Value* hit = cacheable ? cache.find(text) : nullptr) {
      for (auto [id, len] : *hit) out.push_back(id);
      return;
    }
    thread_local WordCache::Value word;
    merge_word(text, word);
    if (cacheable) cache.put(text, word);
    for (auto [id, len] : word) out.push_back(id);
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override { return vocab.find(t); }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    return vocab.token(id);
  }
  size_t vocab_size() const override { return vocab.map.size(); }
};

struct WordPiece : Model {
  Vocab vocab;
  FlatStringMap continuation;  // pieces that start with the prefix, keyed without it
  std::string unk, prefix;
  std::optional<std::string_view> continuing_subword_prefix() const override { return prefix; }
  size_t max_chars = 100;
  size_t longest_start = 0, longest_continuation = 0;  // byte lengths of the longest keys
  WordCache cache;

  // The word's (id, byte length) tokens, from the cache or computed and cached; valid until the
  // next lookup on this thread.
  const WordCache::Value& word_tokens(std::string_view text) const {
    if (const WordCache::Value* hit = cache.find(text)) return *hit;
    thread_local WordCache::Value word;
    tokenize_uncached(text, word);
    cache.put(text, word);
    return word;
  }
  void tokenize(std::string_view text, std::vector<Token>& out) const override {
    size_t off = 0;
    for (auto [id, len] : word_tokens(text)) {
      out.push_back({id, std::string(*vocab.token(id)), off, off + len});
      off += len;
    }
  }
  void tokenize_ids(std::string_view text, std::vector<uint32_t>& out) const override {
    for (auto [id, len] : word_tokens(text)) out.push_back(id);
  }

  void tokenize_uncached(std::string_view text, WordCache::Value& out) const {
    out.clear();
    auto unk_token = [&]() {
      auto id = vocab.find(unk);
      if (!id) fail("WordPiece: unk_token '" + unk + "' missing from the vocabulary");
      out.assign(1, {*id, static_cast<uint32_t>(text.size())});
    };
    if (count_chars(text) > max_chars) return unk_token();
    size_t start = 0;
    while (start < text.size()) {
      // Keys longer than the longest vocabulary entry cannot match: start below that length,
      // on a char boundary.
      size_t limit = start > 0 ? longest_continuation : longest_start;
      size_t end = text.size();
      if (end - start > limit) {
        end = start + limit;
        while (end > start && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
      }
      bool found = false;
      while (start < end) {
        std::string_view sub = text.substr(start, end - start);
        auto id = start > 0 ? continuation.find(sub) : vocab.find(sub);
        if (id) {
          out.push_back({*id, static_cast<uint32_t>(end - start)});
          found = true;
          break;
        }
        // drop the last char
        size_t e = end - 1;
        while (e > start && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) --e;
        end = e;
      }
      if (!found) return unk_token();
      start = end;
    }
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override { return vocab.find(t); }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    return vocab.token(id);
  }
  size_t vocab_size() const override { return vocab.map.size(); }

  void build_continuation() {
    VocabMap seen;
    for (const auto& [t, id] : vocab.map) {
      longest_start = std::max(longest_start, t.size());
      if (t.size() >= prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
        seen.emplace(t.substr(prefix.size()), id);
        longest_continuation = std::max(longest_continuation, t.size() - prefix.size());
      }
    }
    continuation.build(seen);
  }
};

struct WordLevel : Model {
  Vocab vocab;
  std::string unk;
  void tokenize(std::string_view text, std::vector<Token>& out) const override {
    if (auto id = vocab.find(text)) {
      out.push_back({*id, std::string(text), 0, text.size()});
      return;
    }
    auto id = vocab.find(unk);
    if (!id) fail("WordLevel: unk_token '" + unk + "' missing from the vocabulary");
    out.push_back({*id, unk, 0, text.size()});
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override { return vocab.find(t); }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    return vocab.token(id);
  }
  size_t vocab_size() const override { return vocab.map.size(); }
};

struct Unigram : Model {
  std::vector<std::pair<std::string, double>> pieces;
  VocabMap ids;
  ByteTrie trie;
  std::optional<uint32_t> unk_id;
  bool byte_fallback = false;
  double min_score = 0.0;
  WordCache cache;

  void encode(std::string_view s, WordCache::Value& result) const {
    thread_local std::vector<ViterbiCell> best;
    const double unk_score = min_score - 10.0;
    viterbi_forward(
        trie, s,
        [&](int64_t id) {
          if (id >= 0) return pieces[static_cast<size_t>(id)].second;
          if (!unk_id) fail("Unigram: encountered an unknown piece but unk_id is missing");
          return unk_score;
        },
        [](size_t, size_t) { return false; }, best);
    // Walk back; consecutive unknowns fuse into one piece.
    result.clear();
    size_t end = s.size();
    int64_t fused_end = -1;
    while (end > 0) {
      const ViterbiCell& n = best[end];
      auto st = static_cast<size_t>(n.starts_at);
      const int64_t id = n.id >= 0 ? n.id : static_cast<int64_t>(unk_id.value_or(0));
      if (unk_id && id == static_cast<int64_t>(*unk_id)) {
        if (fused_end < 0) fused_end = static_cast<int64_t>(end);
      } else {
        if (fused_end >= 0) {
          result.push_back({*unk_id | 0x80000000u,
                            static_cast<uint32_t>(fused_end) - static_cast<uint32_t>(end)});
          fused_end = -1;
        }
        result.push_back({static_cast<uint32_t>(id), static_cast<uint32_t>(end - st)});
      }
      end = st;
    }
    if (fused_end >= 0) result.push_back({*unk_id | 0x80000000u, static_cast<uint32_t>(fused_end)});
    std::reverse(result.begin(), result.end());
  }

  // Calls on_token(id, token, byte offset, byte length) for each token of text (token is valid
  // only during the call). A fused unknown span
  // may still be a vocabulary piece (it is looked up by text), else byte fallback spells it
  // with byte tokens (each covering the whole span) when the vocabulary has them all.
  template <class F>
  void for_each_token(std::string_view text, F on_token) const {
    if (text.empty()) return;
    const WordCache::Value* word = cache.find(text);
    if (!word) {
      thread_local WordCache::Value fresh;
      encode(text, fresh);
      cache.put(text, fresh);
      word = &fresh;
    }
    size_t off = 0;
    for (auto [tag, len] : *word) {
      uint32_t id = tag & 0x7FFFFFFFu;
      if (tag & 0x80000000u) {
        std::string_view piece = text.substr(off, len);
        if (auto it = ids.find(piece); it != ids.end()) {
          id = it->second;
        } else if (byte_fallback && std::all_of(piece.begin(), piece.end(), [&](char ch) {
                     return ids.count(byte_token(static_cast<unsigned char>(ch))) > 0;
                   })) {
          for (char ch : piece) {
            std::string bt = byte_token(static_cast<unsigned char>(ch));
            on_token(ids.find(bt)->second, std::string_view(bt), off, len);
          }
          off += len;
          continue;
        }
      }
      on_token(id, text.substr(off, len), off, len);
      off += len;
    }
  }
  void tokenize(std::string_view text, std::vector<Token>& out) const override {
    for_each_token(text, [&](uint32_t id, std::string_view token, size_t off, size_t len) {
      out.push_back({id, std::string(token), off, off + len});
    });
  }
  void tokenize_ids(std::string_view text, std::vector<uint32_t>& out) const override {
    for_each_token(text, [&](uint32_t id, std::string_view, size_t, size_t) { out.push_back(id); });
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    auto it = ids.find(t);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    if (id >= pieces.size()) return std::nullopt;
    return pieces[id].first;
  }
  size_t vocab_size() const override { return pieces.size(); }
};

}  // namespace

std::string byte_token(unsigned char b) {
  static const char* hex = "0123456789ABCDEF";
  std::string s = "<0x00>";
  s[3] = hex[b >> 4];
  s[4] = hex[b & 15];
  return s;
}

std::optional<unsigned char> parse_byte_token(std::string_view t) {
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
  int hi = hexval(t[3]), lo = hexval(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<unsigned char>(hi * 16 + lo);
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): moved from, via the binding below
std::unique_ptr<Model> make_bpe(std::vector<std::pair<std::string, uint32_t>> vocab_list,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                const BpeOptions& opts) {
  auto m = std::make_unique<BPE>();
  m->opt = opts;
  for (auto& [t, id] : vocab_list) {
    if (id >= kMaxId) fail("model.vocab['" + t + "']: id out of range");
    if (!m->vocab.map.emplace(std::move(t), id).second) fail("model.vocab: duplicated token");
  }
  m->vocab.build_reverse("model.vocab");
  size_t prefix_len = opts.continuing_subword_prefix ? opts.continuing_subword_prefix->size() : 0;
  m->merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    // Built only for an error: a real vocabulary has 50k-250k merges.
    auto bad = [&](const std::string& what) {
      fail("model.merges[" + std::to_string(r) + "]: " + what);
    };
    auto ia = m->vocab.find(a);
    if (!ia) bad("token '" + a + "' is not in the vocabulary");
    auto ib = m->vocab.find(b);
    if (!ib) bad("token '" + b + "' is not in the vocabulary");
    if (b.size() < prefix_len) bad("token '" + b + "' is shorter than the prefix");
    std::string merged = a;
    merged.append(b, prefix_len);
    auto in = m->vocab.find(merged);
    if (!in) bad("merged token '" + merged + "' is not in the vocabulary");
    m->merges.put(pack(*ia, *ib), static_cast<uint32_t>(r), *in);
  }
  m->build_char_ids();
  if (opts.unk_token) m->unk_id = m->vocab.find(*opts.unk_token);
  if (opts.unk_token && !m->unk_id) m->unk_id.reset();
  for (int b = 0; b < 256; ++b) {
    auto id = m->vocab.find(byte_token(static_cast<unsigned char>(b)));
    m->byte_ids[static_cast<size_t>(b)] = id ? static_cast<int64_t>(*id) : -1;
  }
  return m;
}

std::unique_ptr<Model> make_wordpiece(std::vector<std::string> vocab, const std::string& unk,
                                      const std::string& prefix, size_t max_chars) {
  auto m = std::make_unique<WordPiece>();
  for (size_t i = 0; i < vocab.size(); ++i)
    m->vocab.map.emplace(vocab[i], static_cast<uint32_t>(i));
  m->vocab.build_reverse("vocab");
  m->unk = unk;
  m->prefix = prefix;
  m->max_chars = max_chars;
  m->build_continuation();
  return m;
}

std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab,
                                    std::optional<uint32_t> unk_id, bool byte_fallback) {
  auto m = std::make_unique<Unigram>();
  if (unk_id && *unk_id >= vocab.size()) fail("model.unk_id: out of range");
  m->pieces = std::move(vocab);
  m->unk_id = unk_id;
  m->byte_fallback = byte_fallback;
  m->min_score = INFINITY;
  for (size_t i = 0; i < m->pieces.size(); ++i) {
    const auto& [p, score] = m->pieces[i];
    m->ids.insert_or_assign(p, static_cast<uint32_t>(i));
    m->min_score = std::min(m->min_score, score);
  }
  // Duplicate pieces resolve to their last id, as in the reference.
  for (const auto& [p, score] : m->pieces) m->trie.insert(p, m->ids.find(p)->second);
  m->trie.freeze();
  if (m->pieces.empty()) m->min_score = 0.0;
  return m;
}

std::unique_ptr<Model> make_model(const Json& j, const std::string& ctx) {
  if (!j.is_object()) fail(ctx + ": expected an object");
  std::string type = get_string(j, "type", ctx, "");
  if (type.empty()) {
    // Untagged legacy form: infer from the fields.
    const Json* v = field(j, "vocab");
    if (field(j, "merges"))
      type = "BPE";
    else if (v && v->is_array())
      type = "Unigram";
    else if (field(j, "continuing_subword_prefix") || field(j, "max_input_chars_per_word"))
      type = "WordPiece";
    else
      type = "WordLevel";
  }
  if (type == "BPE") {
    Vocab v = parse_vocab_object(j, ctx);
    std::vector<std::pair<std::string, uint32_t>> list(v.map.begin(), v.map.end());
    std::vector<std::pair<std::string, std::string>> merges;
    const Json& mj = get_array(j, "merges", ctx);
    merges.reserve(mj.size());
    for (size_t r = 0; r < mj.size(); ++r) {
      const Json& e = mj[r];
      std::string mctx = ctx + ".merges[" + std::to_string(r) + "]";
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail(mctx + ": expected \"left right\"");
        merges.push_back({s.substr(0, sp), s.substr(sp + 1)});
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.push_back({e[0].get<std::string>(), e[1].get<std::string>()});
      } else {
        fail(mctx + ": expected a \"left right\" string or a [left, right] pair");
      }
    }
    BpeOptions o;
    if (const Json* u = field(j, "unk_token")) {
      if (!u->is_string()) fail(ctx + ".unk_token: expected a string");
      o.unk_token = u->get<std::string>();
    }
    if (const Json* u = field(j, "continuing_subword_prefix")) {
      if (!u->is_string()) fail(ctx + ".continuing_subword_prefix: expected a string");
      o.continuing_subword_prefix = u->get<std::string>();
    }
    if (const Json* u = field(j, "end_of_word_suffix")) {
      if (!u->is_string()) fail(ctx + ".end_of_word_suffix: expected a string");
      o.end_of_word_suffix = u->get<std::string>();
    }
    o.dropout = get_double(j, "dropout", ctx, 0.0);
    if (!(o.dropout >= 0.0 && o.dropout <= 1.0)) fail(ctx + ".dropout: must be in [0, 1]");
    o.fuse_unk = get_bool(j, "fuse_unk", ctx, false);
    o.byte_fallback = get_bool(j, "byte_fallback", ctx, false);
    o.ignore_merges = get_bool(j, "ignore_merges", ctx, false);
    try {
      return make_bpe(std::move(list), merges, o);
    } catch (const TokenizerError& e) {
      fail(ctx.substr(0, ctx.rfind("model")) + e.what());
    }
  }
  if (type == "WordPiece") {
    auto m = std::make_unique<WordPiece>();
    m->vocab = parse_vocab_object(j, ctx);
    m->unk = get_string(j, "unk_token", ctx, "[UNK]");
    m->prefix = get_string(j, "continuing_subword_prefix", ctx, "##");
    m->max_chars = get_uint(j, "max_input_chars_per_word", ctx, 100, false, UINT64_MAX);
    m->build_continuation();
    return m;
  }
  if (type == "WordLevel") {
    auto m = std::make_unique<WordLevel>();
    m->vocab = parse_vocab_object(j, ctx);
    m->unk = get_string(j, "unk_token", ctx, "<unk>");
    return m;
  }
  if (type == "Unigram") {
    const Json& v = get_array(j, "vocab", ctx);
    std::vector<std::pair<std::string, double>> pieces;
    pieces.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const Json& e = v[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        fail(ctx + ".vocab[" + std::to_string(i) + "]: expected [piece, score]");
      pieces.push_back({e[0].get<std::string>(), e[1].get<double>()});
    }
    std::optional<uint32_t> unk;
    if (field(j, "unk_id")) unk = static_cast<uint32_t>(get_uint(j, "unk_id", ctx, 0));
    if (unk && *unk >= pieces.size()) fail(ctx + ".unk_id: out of range");
    return make_unigram(std::move(pieces), unk, get_bool(j, "byte_fallback", ctx, false));
  }
  fail(ctx + ".type: unknown model type '" + type + "'");
}

}  // namespace ember::tokenizers::detail
