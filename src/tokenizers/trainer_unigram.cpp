// Unigram trainer: the reference's (HF tokenizers UnigramTrainer, itself SentencePiece's)
// algorithm. Seed pieces are the chars and the repeated substrings of the words (the internal
// nodes of their suffix tree), scored by occurrences x length; EM steps (forward-backward
// marginals, digamma M-step) alternate with pruning by the loss of likelihood each piece's
// removal would cause, until the vocabulary is 1.1 x vocab_size; then the required chars are
// added and the pieces ordered by score.
//
// The reference visits words in hash order and sums expected counts in thread-count-sized
// chunks, so its float sums (and, rarely, the pieces kept at a near tie) differ from run to run.
// Ember visits words in byte order and sums in a fixed number of chunks, so its result depends
// on neither the thread count nor the run. Ties the reference leaves to hash order are broken
// here by code point: the order of required chars (and so the scores of those the model lacks)
// and of seed pieces of equal score (as the reference itself does).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ember/base/thread_pool.hpp"
#include "ember/tokenizers/tokenizer.hpp"
#include "internal.hpp"
#include "trainer_internal.hpp"
#include "unigram_lattice.hpp"

namespace ember::tokenizers {

using detail::fail;
namespace {

using OJson = nlohmann::ordered_json;
using detail::ByteTrie;
using detail::ViterbiCell;
using Piece = std::pair<std::string, double>;

// Expected counts are summed per chunk of words, then over chunks in order: a fixed number of
// chunks, so that the float sums do not depend on the thread count.
constexpr int64_t kChunks = 16;
constexpr double kUnkPenalty = 10.0;

double digamma(double x) {
  double result = 0.0;
  while (x < 7.0) {
    result -= 1.0 / x;
    x += 1.0;
  }
  x -= 0.5;
  const double xx = 1.0 / x;
  const double xx2 = xx * xx;
  const double xx4 = xx2 * xx2;
  result += std::log(x) + (1.0 / 24.0) * xx2 - 7.0 / 960.0 * xx4 + (31.0 / 8064.0) * xx4 * xx2 -
            (127.0 / 30720.0) * xx4 * xx4;
  return result;
}

// log(exp(x) + exp(y)), with the reference's cut-off (terms 50 nats apart are dropped).
double log_sum_exp(double x, double y) {
  const double vmin = std::min(x, y), vmax = std::max(x, y);
  if (vmax > vmin + 50.0) return vmax;
  return vmax + std::log(std::exp(vmin - vmax) + 1.0);
}

// The model during training: pieces[0] is the unknown piece (its score unused), the others are
// found through the trie. The reference's model has "<UNK>" in its trie too, with a NaN score
// that makes it fail on a word containing that text; here it is only the unknown char's id.
struct Model {
  std::vector<Piece> pieces;
  ByteTrie trie;
  double unk_score = 0.0;

  explicit Model(std::vector<Piece> p) : pieces(std::move(p)) {
    double min_score = INFINITY;
    for (size_t i = 1; i < pieces.size(); ++i) {
      trie.insert(pieces[i].first, static_cast<uint32_t>(i));
      if (pieces[i].second < min_score) min_score = pieces[i].second;
    }
    trie.freeze();
    unk_score = min_score - kUnkPenalty;
  }
  double score(int64_t id) const {
    return id < 0 ? unk_score : pieces[static_cast<size_t>(id)].second;
  }
  // The ids of the best segmentation of s, unknown chars as 0; skip(begin, end) leaves nodes out.
  template <class Skip>
  void viterbi(std::string_view s, const Skip& skip, std::vector<ViterbiCell>& best,
               std::vector<size_t>& ids) const {
    detail::viterbi_forward(
        trie, s, [&](int64_t id) { return score(id); }, skip, best);
    ids.clear();
    for (size_t end = s.size(); end > 0; end = static_cast<size_t>(best[end].starts_at))
      ids.push_back(static_cast<size_t>(std::max<int64_t>(best[end].id, 0)));
    std::reverse(ids.begin(), ids.end());
  }
};

struct Node {
  uint32_t begin, end;
  size_t id;
  double score;
};

// Adds count x the marginal probability of each node of s's lattice to expected (the reference's
// populate_marginal: alpha and beta per position, summed in node insertion order).
void add_marginals(const Model& m, std::string_view s, double count, std::vector<double>& expected,
                   std::vector<Node>& nodes, std::vector<double>& alpha,
                   std::vector<double>& beta) {
  nodes.clear();
  detail::for_each_lattice_node(m.trie, s, [&](size_t begin, size_t end, int64_t id) {
    nodes.push_back({static_cast<uint32_t>(begin), static_cast<uint32_t>(end),
                     static_cast<size_t>(std::max<int64_t>(id, 0)), m.score(id)});
  });
  const size_t n = s.size();
  // alpha[p]: log-sum over the paths from the start to p. Nodes come by begin, so the ones ending
  // at p are summed in insertion order, after the ones they extend. -inf as the empty sum makes
  // the first term be taken as is, as the reference does.
  alpha.assign(n + 1, -INFINITY);
  alpha[0] = 0.0;
  for (const Node& x : nodes) alpha[x.end] = log_sum_exp(alpha[x.end], x.score + alpha[x.begin]);
  // beta[p]: log-sum over the paths from p to the end; the nodes beginning at p (a run of the
  // list) are summed in insertion order, runs from the last position back.
  beta.assign(n + 1, -INFINITY);
  beta[n] = 0.0;
  for (size_t i = nodes.size(); i > 0;) {
    size_t first = i - 1;
    while (first > 0 && nodes[first - 1].begin == nodes[i - 1].begin) --first;
    for (size_t k = first; k < i; ++k)
      beta[nodes[k].begin] = log_sum_exp(beta[nodes[k].begin], nodes[k].score + beta[nodes[k].end]);
    i = first;
  }
  const double z = alpha[n];
  for (const Node& x : nodes)
    expected[x.id] += count * std::exp(alpha[x.begin] + x.score + beta[x.end] - z);
}

struct Word {
  std::string text;
  double count;
};

// The seed pieces, scored by log probability: every char (by count), then the substrings of 2 to
// max_piece_length chars that are internal nodes of the suffix tree of the words (each distinct
// word once, ended by U+0000), scored by occurrences x length, highest first, up to seed_size.
std::vector<Piece> seed_pieces(const UnigramTrainer& t, const std::vector<WordCount>& words) {
  std::vector<char32_t> text;
  std::map<char32_t, uint64_t> char_counts;
  for (const auto& w : words) {
    if (w.word.empty()) continue;
    for (size_t i = 0; i < w.word.size();) {
      const char32_t c = detail::decode_utf8(w.word, i);
      text.push_back(c);
      if (c != 0) char_counts[c] += w.count;
    }
    text.push_back(0);
  }
  const size_t n = text.size();
  // Suffixes compared on their first max_piece_length + 1 chars only: that orders them enough to
  // find every node up to max_piece_length deep. Bucketed by first char, buckets sorted in
  // parallel; suffixes starting with U+0000 are left out (their nodes all contain it).
  const size_t depth = t.max_piece_length + 1;
  std::vector<char32_t> alphabet;
  alphabet.reserve(char_counts.size());
  for (const auto& [c, count] : char_counts) alphabet.push_back(c);
  std::vector<uint32_t> rank(n);
  std::vector<size_t> bucket_start(alphabet.size() + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    if (text[i] == 0) continue;
    rank[i] = static_cast<uint32_t>(std::lower_bound(alphabet.begin(), alphabet.end(), text[i]) -
                                    alphabet.begin());
    ++bucket_start[rank[i] + 1];
  }
  for (size_t b = 0; b < alphabet.size(); ++b) bucket_start[b + 1] += bucket_start[b];
  std::vector<uint32_t> sa(bucket_start.back());
  {
    std::vector<size_t> fill(bucket_start.begin(), bucket_start.end() - 1);
    for (size_t i = 0; i < n; ++i)
      if (text[i] != 0) sa[fill[rank[i]]++] = static_cast<uint32_t>(i);
  }
  // Common prefix of the suffixes at a and b, up to `depth` chars; U+0000 is an ordinary char.
  auto common = [&](size_t a, size_t b) {
    size_t k = 0;
    while (k < depth && a + k < n && b + k < n && text[a + k] == text[b + k]) ++k;
    return k;
  };
  parallel_for(0, static_cast<int64_t>(alphabet.size()), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b)
      std::sort(sa.begin() + static_cast<std::ptrdiff_t>(bucket_start[static_cast<size_t>(b)]),
                sa.begin() + static_cast<std::ptrdiff_t>(bucket_start[static_cast<size_t>(b) + 1]),
                [&](uint32_t a, uint32_t c) {
                  const size_t k = common(a, c);
                  if (k == depth) return false;
                  if (a + k == n || c + k == n) return a + k == n && c + k != n;
                  return text[a + k] < text[c + k];
                });
  });
  // Internal nodes from the common-prefix array (a stack of open intervals): a node of depth d
  // is an interval of >= 2 suffixes sharing d chars whose next chars differ.
  struct Substring {
    uint64_t score;
    uint32_t pos, len;
  };
  std::vector<Substring> substrings;
  struct Open {
    size_t depth, left;
  };
  std::vector<Open> stack{{0, 0}};
  const size_t m = sa.size();
  for (size_t i = 1; i <= m; ++i) {
    const size_t h = i < m ? common(sa[i - 1], sa[i]) : 0;
    size_t left = i - 1;
    while (stack.back().depth > h) {
      const Open o = stack.back();
      stack.pop_back();
      left = o.left;
      const auto begin = text.begin() + sa[o.left];
      if (o.depth >= 2 && o.depth <= t.max_piece_length &&
          std::find(begin, begin + static_cast<std::ptrdiff_t>(o.depth), 0) ==
              begin + static_cast<std::ptrdiff_t>(o.depth))
        substrings.push_back({static_cast<uint64_t>(i - o.left) * o.depth, sa[o.left],
                              static_cast<uint32_t>(o.depth)});
    }
    if (stack.back().depth < h) stack.push_back({h, left});
  }
  // Highest score first, equal scores by their chars in reverse order (the reference's sort).
  auto chars_of = [&](const Substring& x) {
    return std::u32string_view(text.data() + x.pos, x.len);
  };
  std::sort(substrings.begin(), substrings.end(), [&](const Substring& a, const Substring& b) {
    if (a.score != b.score) return a.score > b.score;
    return chars_of(a) > chars_of(b);
  });

  std::vector<std::pair<uint64_t, char32_t>> chars;
  chars.reserve(char_counts.size());
  for (const auto& [c, count] : char_counts) chars.emplace_back(count, c);
  std::sort(chars.begin(), chars.end(), std::greater<>());
  std::vector<Piece> seeds;
  std::string s;
  for (const auto& [count, c] : chars) {
    s.clear();
    detail::append_utf8(s, c);
    seeds.emplace_back(s, static_cast<double>(count));
  }
  for (const Substring& x : substrings) {
    s.clear();
    for (char32_t c : chars_of(x)) detail::append_utf8(s, c);
    seeds.emplace_back(s, static_cast<double>(x.score));
    if (seeds.size() >= t.seed_size) break;
  }
  double sum = 0.0;
  for (const auto& p : seeds) sum += p.second;
  const double logsum = std::log(sum);
  for (auto& p : seeds) p.second = std::log(p.second) - logsum;
  return seeds;
}

// Word ranges of the kChunks chunks.
int64_t chunk_begin(size_t words, int64_t c) {
  return static_cast<int64_t>(words) * c / kChunks;
}

// E-step: expected count of every piece (count x marginal probability, summed over the words).
std::vector<double> expected_counts(const Model& model, const std::vector<Word>& words) {
  std::vector<std::vector<double>> partial(static_cast<size_t>(kChunks));
  parallel_for(0, kChunks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<Node> nodes;
    std::vector<double> alpha, beta;
    for (int64_t c = lo; c < hi; ++c) {
      std::vector<double>& expected = partial[static_cast<size_t>(c)];
      expected.assign(model.pieces.size(), 0.0);
      for (int64_t w = chunk_begin(words.size(), c); w < chunk_begin(words.size(), c + 1); ++w) {
        const Word& word = words[static_cast<size_t>(w)];
        add_marginals(model, word.text, word.count, expected, nodes, alpha, beta);
      }
    }
  });
  std::vector<double> expected = std::move(partial[0]);
  for (size_t c = 1; c < partial.size(); ++c)
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += partial[c][i];
  return expected;
}

// M-step: pieces expected less than half a time go; the others score digamma(count) -
// digamma(total), the Bayesian (variational) estimate of their log probability.
std::vector<Piece> m_step(const std::vector<Piece>& pieces, const std::vector<double>& expected) {
  std::vector<Piece> out;
  out.emplace_back(pieces[0].first, NAN);
  double sum = 0.0;
  for (size_t i = 1; i < pieces.size(); ++i) {
    if (expected[i] < 0.5) continue;
    out.emplace_back(pieces[i].first, expected[i]);
    sum += expected[i];
  }
  const double logsum = digamma(sum);
  for (auto& p : out) p.second = digamma(p.second) - logsum;
  return out;
}

// Pruning: each piece that the best segmentation of its own text keeps whole is scored by the
// loss of likelihood if its occurrences were segmented its second-best way instead; the pieces
// the corpus's best segmentations never use go, then the lowest losses, down to
// max(shrinking_factor x size, 1.1 x vocab_size).
std::vector<Piece> prune(const UnigramTrainer& t, const Model& model,
                         const std::vector<Word>& words) {
  const std::vector<Piece>& pieces = model.pieces;
  const size_t size = pieces.size();
  std::vector<char> always_keep(size, 1);
  std::vector<std::vector<size_t>> alternatives(size);
  always_keep[0] = 0;
  parallel_for(1, static_cast<int64_t>(size), 64, [&](int64_t lo, int64_t hi) {
    std::vector<ViterbiCell> best;
    std::vector<size_t> ids;
    for (int64_t i = lo; i < hi; ++i) {
      const std::string& text = pieces[static_cast<size_t>(i)].first;
      // A single char has no other segmentation: kept.
      if (detail::utf8_len(static_cast<unsigned char>(text[0])) == text.size()) continue;
      model.viterbi(
          text, [](size_t, size_t) { return false; }, best, ids);
      if (ids.size() >= 2) {
        always_keep[static_cast<size_t>(i)] = 0;
        continue;
      }
      const size_t whole = text.size();
      model.viterbi(
          text, [&](size_t begin, size_t end) { return begin == 0 && end == whole; }, best, ids);
      alternatives[static_cast<size_t>(i)] = ids;
    }
  });

  // Viterbi counts; integers, so their sums are exact in any order.
  std::vector<std::vector<double>> partial(static_cast<size_t>(kChunks));
  parallel_for(0, kChunks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<ViterbiCell> best;
    std::vector<size_t> ids;
    for (int64_t c = lo; c < hi; ++c) {
      std::vector<double>& freq = partial[static_cast<size_t>(c)];
      freq.assign(size, 0.0);
      for (int64_t w = chunk_begin(words.size(), c); w < chunk_begin(words.size(), c + 1); ++w) {
        const Word& word = words[static_cast<size_t>(w)];
        model.viterbi(
            word.text, [](size_t, size_t) { return false; }, best, ids);
        for (size_t id : ids) freq[id] += word.count;
      }
    }
  });
  std::vector<double> freq = std::move(partial[0]);
  for (size_t c = 1; c < partial.size(); ++c)
    for (size_t i = 0; i < size; ++i) freq[i] += partial[c][i];
  double vsum = 0.0;
  for (const Word& w : words) vsum += w.count;
  double sum = 0.0;
  for (double f : freq) sum += f;
  const double logsum = std::log(sum);

  std::vector<Piece> kept{pieces[0]};
  std::vector<std::pair<size_t, double>> candidates;
  for (size_t i = 1; i < size; ++i) {
    if (freq[i] == 0.0 && !always_keep[i]) continue;
    if (alternatives[i].empty()) {
      kept.push_back(pieces[i]);
      continue;
    }
    if (freq[i] == 0.0) continue;
    const double f = freq[i] / vsum;
    const double logprob_sp = std::log(freq[i]) - logsum;
    // The reference's normalizer: it adds freq[i] once per piece of the whole vocabulary (its
    // alternatives table's size), not per alternative.
    const double logsum_alt = std::log(sum + freq[i] * static_cast<double>(size - 1));
    double logprob_alt = 0.0;
    for (size_t a : alternatives[i]) logprob_alt += std::log(freq[a] + freq[i]) - logsum_alt;
    candidates.emplace_back(i, f * (logprob_sp - logprob_alt));
  }
  const size_t desired = t.vocab_size * 11 / 10;
  const size_t pruned_size =
      std::max(desired, static_cast<size_t>(static_cast<double>(size) * t.shrinking_factor));
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [i, loss] : candidates) {
    if (kept.size() == pruned_size) break;
    kept.push_back(pieces[i]);
  }
  return kept;
}

// The required chars (every char of the words and initial_alphabet), in code point order.
std::set<char32_t> required_chars(const UnigramTrainer& t, const std::vector<Word>& words) {
  std::set<char32_t> chars(t.initial_alphabet.begin(), t.initial_alphabet.end());
  for (const Word& w : words)
    for (size_t i = 0; i < w.text.size();) chars.insert(detail::decode_utf8(w.text, i));
  return chars;
}

}  // namespace

std::string train_unigram_json(const UnigramTrainer& t, std::vector<WordCount> counts,
                               const TrainOptions& options) {
  if (!(t.shrinking_factor > 0.0 && t.shrinking_factor < 1.0))
    fail("shrinking_factor " + std::to_string(t.shrinking_factor) +
         " must be between 0 and 1 (exclusive)");
  const bool add_unk = t.unk_token && std::find(t.special_tokens.begin(), t.special_tokens.end(),
                                                *t.unk_token) == t.special_tokens.end();
  if (t.unk_token && t.unk_token->empty()) fail("unk_token: empty string");
  const size_t reserved = t.special_tokens.size() + (add_unk ? 1 : 0);

  std::sort(counts.begin(), counts.end(),
            [](const WordCount& x, const WordCount& y) { return x.word < y.word; });
  std::vector<Word> words;
  words.reserve(counts.size());
  for (const auto& w : counts) words.push_back({w.word, static_cast<double>(w.count)});
  const std::set<char32_t> required = required_chars(t, words);
  if (required.size() + reserved > t.vocab_size)
    fail("vocab_size " + std::to_string(t.vocab_size) + " is smaller than the " +
         std::to_string(reserved) + " special tokens (unk_token included) plus the " +
         std::to_string(required.size()) + " characters of the alphabet; raise vocab_size");

  std::vector<Piece> pieces{{"<UNK>", NAN}};
  {
    std::vector<Piece> seeds = seed_pieces(t, counts);
    pieces.insert(pieces.end(), std::make_move_iterator(seeds.begin()),
                  std::make_move_iterator(seeds.end()));
  }
  counts.clear();
  counts.shrink_to_fit();

  const size_t desired = t.vocab_size * 11 / 10;
  // Prunings expected until the vocabulary is small enough (none when the seeds already are).
  const double prunings = std::max(
      0.0, (std::log(static_cast<double>(desired)) - std::log(static_cast<double>(pieces.size()))) /
               std::log(t.shrinking_factor));
  const uint64_t expected_steps = (static_cast<uint64_t>(prunings) + 1) * t.n_sub_iterations;
  uint64_t steps = 0;
  Model model(pieces);
  for (;;) {
    for (uint32_t iter = 0; iter < t.n_sub_iterations; ++iter) {
      pieces = m_step(pieces, expected_counts(model, words));
      model = Model(pieces);
      if (options.progress)
        options.progress("EM", std::min(++steps, expected_steps), expected_steps);
    }
    if (pieces.size() <= desired) break;
    pieces = prune(t, model, words);
    model = Model(pieces);
  }
  if (options.progress) options.progress("EM", expected_steps, expected_steps);

  // Finalize: the required chars first (a char the model lost scores just below its lowest
  // piece, each next one 1e-4 lower), then the model's pieces in its order up to vocab_size, all
  // ordered by score (stable); the special tokens (and unk_token) come first with score 0.
  double min_score = INFINITY;
  std::unordered_map<std::string, double> score_of;
  for (size_t i = 1; i < pieces.size(); ++i) {
    score_of.emplace(pieces[i].first, pieces[i].second);
    min_score = std::min(min_score, pieces[i].second);
  }
  std::vector<Piece> final_pieces;
  std::unordered_set<std::string> inserted{"<UNK>"};
  double penalty = 0.0;
  std::string s;
  for (char32_t c : required) {
    s.clear();
    detail::append_utf8(s, c);
    inserted.insert(s);
    if (auto it = score_of.find(s); it != score_of.end()) {
      final_pieces.emplace_back(s, it->second);
    } else {
      final_pieces.emplace_back(s, min_score + penalty);
      penalty += 0.0001;
    }
  }
  const size_t budget = t.vocab_size - reserved;
  for (size_t i = 1; i < pieces.size() && final_pieces.size() < budget; ++i)
    if (inserted.insert(pieces[i].first).second)
      final_pieces.emplace_back(pieces[i].first,
                                std::isnan(pieces[i].second) ? 0.0 : pieces[i].second);
  std::stable_sort(final_pieces.begin(), final_pieces.end(),
                   [](const Piece& a, const Piece& b) { return a.second > b.second; });

  OJson vocab = OJson::array();
  std::optional<size_t> unk_id;
  if (add_unk) {
    unk_id = 0;
    vocab.push_back({*t.unk_token, 0.0});
  }
  for (size_t i = 0; i < t.special_tokens.size(); ++i) {
    if (t.unk_token && t.special_tokens[i] == *t.unk_token) unk_id = i;
    vocab.push_back({t.special_tokens[i], 0.0});
  }
  // Scores are written with 15 significant digits: the reference reads JSON numbers with
  // serde_json's default parser, which is exact only for decimals of at most 15 digits (beyond
  // that a score can load one ulp off and flip a near tie between two segmentations). Rounded
  // here, the saved file means the same model to the reference, to Ember and to any correctly
  // rounding reader; the scores move by at most 5e-16 relative.
  char digits[32];
  for (const auto& [piece, score] : final_pieces) {
    std::snprintf(digits, sizeof digits, "%.15g", score);
    vocab.push_back({piece, std::strtod(digits, nullptr)});
  }
  OJson m = OJson::object();
  m["type"] = "Unigram";
  m["unk_id"] = unk_id ? OJson(*unk_id) : OJson(nullptr);
  m["vocab"] = std::move(vocab);
  m["byte_fallback"] = false;
  return m.dump();
}

}  // namespace ember::tokenizers
