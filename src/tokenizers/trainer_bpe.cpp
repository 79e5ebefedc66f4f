// BPE and WordPiece trainers. The algorithm is the reference's (HF tokenizers BpeTrainer): a
// max-heap of candidate pairs whose counts are refreshed lazily, each entry remembering the words
// where its pair was (re)formed. Where the reference depends on hash-map iteration order, Ember
// fixes an order instead:
//  - words are visited in byte order of their text, so the ids of the prefixed/suffixed alphabet
//    variants ("##a", "a</w>") follow the first word (in that order) that needs them;
//  - limit_alphabet drops the rarest chars first and, among equally rare ones, the larger code
//    points first;
//  - heap entries of equal count and pair pop oldest first.
// Everything else (ids of special tokens and alphabet, merge order with ties going to the pair of
// smaller ids, the max_token_length test, duplicate merges) follows the reference.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "ember/tokenizers/tokenizer.hpp"
#include "ember/tokenizers/trainer.hpp"
#include "internal.hpp"
#include "trainer_internal.hpp"

namespace ember::tokenizers {

using detail::fail;
namespace {

using OJson = nlohmann::ordered_json;
using detail::append_utf8;
using detail::decode_utf8;

struct Symbol {
  uint32_t id;
  uint32_t len;  // in chars of the word it covers
};

using Pair = uint64_t;  // (left id << 32) | right id: orders as the reference's (u32, u32) tuple
Pair make_pair_key(uint32_t a, uint32_t b) {
  return (uint64_t{a} << 32) | b;
}

struct Change {
  Pair pair;
  int32_t delta;
  uint32_t word;
};

// Merges every (a, b) of `word` into `merged`, left to right, recording the pair counts that
// change: the reference's Word::merge, including its strict `< max_length` test on new pairs.
void merge_word(std::vector<Symbol>& word, uint32_t a, uint32_t b, uint32_t merged,
                size_t max_length, uint32_t word_index, std::vector<Change>& changes) {
  for (size_t i = 0; i < word.size(); ++i) {
    if (word[i].id != a || i + 1 >= word.size() || word[i + 1].id != b) continue;
    const Symbol first = word[i], second = word[i + 1];
    const Symbol joined{merged, first.len + second.len};
    if (i > 0) {
      changes.push_back({make_pair_key(word[i - 1].id, first.id), -1, word_index});
      if (size_t{word[i - 1].len} + joined.len < max_length)
        changes.push_back({make_pair_key(word[i - 1].id, merged), 1, word_index});
    }
    word[i] = joined;
    word.erase(word.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    if (i + 1 < word.size()) {
      changes.push_back({make_pair_key(second.id, word[i + 1].id), -1, word_index});
      if (size_t{word[i + 1].len} + joined.len < max_length)
        changes.push_back({make_pair_key(merged, word[i + 1].id), 1, word_index});
    }
  }
}

struct Candidate {
  uint64_t count;
  Pair pair;
  uint64_t seq;
  std::vector<uint32_t> words;  // ascending
};

// std heap order: the greatest pops first: higher count, then smaller pair, then older entry.
bool candidate_less(const Candidate& x, const Candidate& y) {
  if (x.count != y.count) return x.count < y.count;
  if (x.pair != y.pair) return x.pair > y.pair;
  return x.seq > y.seq;
}

class Vocab {
 public:
  bool contains(const std::string& s) const { return ids_.count(s) != 0; }
  uint32_t id(const std::string& s) const { return ids_.at(s); }
  uint32_t add(const std::string& s) {
    auto [it, inserted] = ids_.emplace(s, static_cast<uint32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(s);
    return it->second;
  }
  size_t size() const { return ids_.size(); }
  const std::string& token(uint32_t id) const { return tokens_[id]; }
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> tokens_;
};

// Alphabet (compute_alphabet): every char of the words plus initial_alphabet, cut to
// limit_alphabet, added in code point order.
void add_alphabet(const BpeTrainer& t, const std::vector<WordCount>& words, Vocab& vocab) {
  std::map<char32_t, uint64_t> alphabet;
  for (const auto& w : words)
    for (size_t i = 0; i < w.word.size();) alphabet[decode_utf8(w.word, i)] += w.count;
  for (char32_t c : t.initial_alphabet) alphabet[c] = UINT64_MAX;
  std::vector<std::pair<char32_t, uint64_t>> kept(alphabet.begin(), alphabet.end());
  if (t.limit_alphabet && kept.size() > *t.limit_alphabet) {
    std::sort(kept.begin(), kept.end(), [](const auto& x, const auto& y) {
      return x.second != y.second ? x.second < y.second : x.first > y.first;
    });
    kept.erase(kept.begin(),
               kept.begin() + static_cast<std::ptrdiff_t>(kept.size() - *t.limit_alphabet));
    std::sort(kept.begin(), kept.end());
  }
  std::string s;
  for (const auto& [c, n] : kept) {
    s.clear();
    append_utf8(s, c);
    vocab.add(s);
  }
}

struct BpeResult {
  Vocab vocab;
  std::vector<std::pair<Pair, uint32_t>> merges;  // in the order they were made
};

BpeResult train_bpe(const BpeTrainer& t, std::vector<WordCount>& words,
                    const TrainOptions& options) {
  BpeResult r;
  Vocab& vocab = r.vocab;
  for (const auto& s : t.special_tokens) vocab.add(s);
  add_alphabet(t, words, vocab);
  if (vocab.size() > t.vocab_size)
    fail("vocab_size " + std::to_string(t.vocab_size) + " is smaller than the " +
         std::to_string(t.special_tokens.size()) + " special tokens plus the " +
         std::to_string(vocab.size() - t.special_tokens.size()) +
         " characters of the alphabet; raise vocab_size or set limit_alphabet");

  // Words as symbol ids (tokenize_words); chars outside the alphabet are dropped.
  std::sort(words.begin(), words.end(),
            [](const WordCount& x, const WordCount& y) { return x.word < y.word; });
  std::vector<std::vector<Symbol>> syms(words.size());
  std::vector<uint64_t> counts(words.size());
  std::string ch, s;
  for (size_t w = 0; w < words.size(); ++w) {
    const std::string& text = words[w].word;
    counts[w] = words[w].count;
    for (size_t i = 0; i < text.size();) {
      const size_t start = i;
      decode_utf8(text, i);
      ch.assign(text, start, i - start);
      if (!vocab.contains(ch)) continue;
      s.clear();
      if (start > 0 && t.continuing_subword_prefix) s += *t.continuing_subword_prefix;
      s += ch;
      if (i == text.size() && t.end_of_word_suffix) s += *t.end_of_word_suffix;
      syms[w].push_back({vocab.add(s), 1});
    }
  }
  words.clear();
  words.shrink_to_fit();

  // Pair counts and the words holding each pair (count_pairs).
  std::unordered_map<Pair, int64_t> pair_counts;
  std::unordered_map<Pair, std::vector<uint32_t>> where;
  for (size_t w = 0; w < syms.size(); ++w) {
    const auto& word = syms[w];
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const Pair p = make_pair_key(word[i].id, word[i + 1].id);
      pair_counts[p] += static_cast<int64_t>(counts[w]);
      auto& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  std::vector<Candidate> heap;
  uint64_t seq = 0;
  auto flush_where = [&] {
    for (auto& [pair, list] : where) {
      const int64_t n = pair_counts[pair];
      if (n <= 0) continue;
      heap.push_back({static_cast<uint64_t>(n), pair, seq++, std::move(list)});
      std::push_heap(heap.begin(), heap.end(), candidate_less);
    }
    where.clear();
  };
  flush_where();

  const size_t max_length = t.max_token_length.value_or(SIZE_MAX);
  std::vector<Change> changes;
  const uint64_t target = t.vocab_size - std::min(t.vocab_size, vocab.size());
  while (vocab.size() < t.vocab_size && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), candidate_less);
    Candidate top = std::move(heap.back());
    heap.pop_back();
    const int64_t current = pair_counts[top.pair];
    if (top.count != static_cast<uint64_t>(current)) {
      // Stale: re-queued with the pair's count now (the reference re-pushes the same entry).
      top.count = static_cast<uint64_t>(current);
      heap.push_back(std::move(top));
      std::push_heap(heap.begin(), heap.end(), candidate_less);
      continue;
    }
    if (top.count < 1 || t.min_frequency > top.count) break;

    const uint32_t a = static_cast<uint32_t>(top.pair >> 32);
    const uint32_t b = static_cast<uint32_t>(top.pair & 0xffffffffu);
    std::string_view right = vocab.token(b);
    if (t.continuing_subword_prefix && right.starts_with(*t.continuing_subword_prefix))
      right.remove_prefix(t.continuing_subword_prefix->size());
    const uint32_t merged = vocab.add(vocab.token(a) + std::string(right));
    r.merges.push_back({top.pair, merged});

    changes.clear();
    for (uint32_t w : top.words) merge_word(syms[w], a, b, merged, max_length, w, changes);
    for (const Change& c : changes) {
      pair_counts[c.pair] += c.delta * static_cast<int64_t>(counts[c.word]);
      if (c.delta > 0) {
        auto& list = where[c.pair];
        if (list.empty() || list.back() != c.word) list.push_back(c.word);
      }
    }
    flush_where();
    if (options.progress && r.merges.size() % 256 == 0)
      options.progress("merges", std::min<uint64_t>(r.merges.size(), target), target);
  }
  if (options.progress) options.progress("merges", target, target);
  return r;
}

// The model's options that training leaves alone, from the template's model section.
OJson base_field(const OJson& base, const char* name, const OJson& fallback) {
  auto it = base.find(name);
  return it == base.end() ? fallback : *it;
}

OJson vocab_json(const Vocab& vocab) {
  OJson v = OJson::object();
  for (size_t i = 0; i < vocab.tokens().size(); ++i) v[vocab.tokens()[i]] = i;
  return v;
}

}  // namespace

std::string train_bpe_json(const BpeTrainer& t, std::vector<WordCount> words, const OJson& base,
                           const TrainOptions& options) {
  BpeResult r = train_bpe(t, words, options);
  // The reference keeps merges in a map keyed by pair, so a pair merged twice keeps the rank of
  // its last merge.
  std::unordered_map<Pair, size_t> last;
  for (size_t i = 0; i < r.merges.size(); ++i) last[r.merges[i].first] = i;
  OJson merges = OJson::array();
  for (size_t i = 0; i < r.merges.size(); ++i) {
    const Pair p = r.merges[i].first;
    if (last[p] != i) continue;
    merges.push_back({r.vocab.token(static_cast<uint32_t>(p >> 32)),
                      r.vocab.token(static_cast<uint32_t>(p & 0xffffffffu))});
  }
  OJson m = OJson::object();
  m["type"] = "BPE";
  m["dropout"] = base_field(base, "dropout", nullptr);
  m["unk_token"] = base_field(base, "unk_token", nullptr);
  m["continuing_subword_prefix"] =
      t.continuing_subword_prefix ? OJson(*t.continuing_subword_prefix) : OJson(nullptr);
  m["end_of_word_suffix"] = t.end_of_word_suffix ? OJson(*t.end_of_word_suffix) : OJson(nullptr);
  m["fuse_unk"] = base_field(base, "fuse_unk", false);
  m["byte_fallback"] = base_field(base, "byte_fallback", false);
  m["ignore_merges"] = base_field(base, "ignore_merges", false);
  m["vocab"] = vocab_json(r.vocab);
  m["merges"] = std::move(merges);
  return m.dump();
}

std::string train_wordpiece_json(const WordPieceTrainer& t, std::vector<WordCount> words,
                                 const OJson& base, const TrainOptions& options) {
  BpeResult r = train_bpe(t.bpe, words, options);
  OJson m = OJson::object();
  m["type"] = "WordPiece";
  m["unk_token"] = base_field(base, "unk_token", "[UNK]");
  m["continuing_subword_prefix"] = t.bpe.continuing_subword_prefix.value_or("##");
  m["max_input_chars_per_word"] = base_field(base, "max_input_chars_per_word", 100);
  m["vocab"] = vocab_json(r.vocab);
  return m.dump();
}

}  // namespace ember::tokenizers
