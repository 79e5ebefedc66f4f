#include "ember/pipelines/keywords.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <numeric>
#include <span>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/base/utf8.hpp"

namespace ember::pipelines {
namespace {

struct CodeRange {
  char32_t first, last;
};
struct LowerRun {
  char32_t first, last;
  char32_t stride;
  int32_t delta;
};
struct LowerSpecial {
  char32_t code, first, second;
};

#include "keyword_text_tables.inc"

// Max Sum Distance compares every top_n-subset of its candidates; beyond this many subsets a
// call would run for minutes (KeyBERT's own loop for hours), so the options are refused.
constexpr double kMaxSumCombinations = 1e7;

bool in_ranges(std::span<const CodeRange> table, char32_t c) {
  const auto after = std::upper_bound(table.begin(), table.end(), c,
                                      [](char32_t v, const CodeRange& r) { return v < r.first; });
  return after != table.begin() && c <= std::prev(after)->last;
}

// Python's `\w` under re.UNICODE: str.isalnum() or '_'.
bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  return in_ranges(kWordChars, c);
}

// str.lower()'s capital sigma: final (U+03C2) after a cased character and before none, with
// case-ignorable characters skipped both ways (CPython's handle_capital_sigma).
char32_t lower_sigma(const std::u32string& text, size_t i) {
  const auto ignorable = [](char32_t c) { return in_ranges(kCaseIgnorable, c); };
  size_t j = i;
  while (j > 0 && ignorable(text[j - 1])) --j;
  if (j == 0 || !in_ranges(kCased, text[j - 1])) return 0x3C3;
  j = i + 1;
  while (j < text.size() && ignorable(text[j])) ++j;
  return j < text.size() && in_ranges(kCased, text[j]) ? 0x3C3 : 0x3C2;
}

// Python's str.lower() (full case mapping, final sigma in context).
std::u32string python_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
      continue;
    }
    if (c == 0x3A3) {
      out.push_back(lower_sigma(text, i));
      continue;
    }
    const auto special = std::find_if(std::begin(kLowerSpecial), std::end(kLowerSpecial),
                                      [c](const LowerSpecial& s) { return s.code == c; });
    if (special != std::end(kLowerSpecial)) {
      out.push_back(special->first);
      out.push_back(special->second);
      continue;
    }
    const auto after = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), c,
                                        [](char32_t v, const LowerRun& r) { return v < r.first; });
    char32_t lower = c;
    if (after != std::begin(kLowerRuns)) {
      const LowerRun& run = *std::prev(after);
      if (c <= run.last && (c - run.first) % run.stride == 0) {
        lower = static_cast<char32_t>(static_cast<int64_t>(c) + run.delta);
      }
    }
    out.push_back(lower);
  }
  return out;
}

// Python's round(x, 4): the double nearest to x correctly rounded to 4 decimals (half to even
// on x's exact binary value), which is what printf's %.4f produces.
double round4(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", x);
  return std::strtod(buf, nullptr);
}

// Candidate indices by increasing similarity, as numpy's argsort gives them; equal similarities
// (an order numpy's unstable sort leaves open) keep index order.
std::vector<size_t> argsort(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  return order;
}

// The first index of the maximum (numpy's argmax).
size_t argmax(const std::vector<double>& values) {
  return static_cast<size_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

double combinations(size_t n, size_t k) {
  double c = 1;
  for (size_t i = 0; i < k; ++i) c = c * static_cast<double>(n - i) / static_cast<double>(i + 1);
  return c;
}

struct Rows {
  const float* data;
  size_t dim;
  const float* row(size_t i) const { return data + i * dim; }
  double cosine(size_t a, size_t b) const { return cosine_similarity(row(a), row(b), dim); }
};

std::vector<Keyword> mmr(const std::vector<double>& similarity, const Rows& rows,
                         const std::vector<std::string>& words, size_t top_n, double diversity) {
  const size_t n = words.size();
  std::vector<size_t> chosen = {argmax(similarity)};
  std::vector<size_t> remaining;
  for (size_t i = 0; i < n; ++i)
    if (i != chosen[0]) remaining.push_back(i);
  // closest[r]: remaining[r]'s highest similarity to a chosen candidate, kept up to date as
  // candidates are chosen (KeyBERT recomputes it from the full similarity matrix each step).
  std::vector<double> closest(remaining.size());
  for (size_t r = 0; r < remaining.size(); ++r) closest[r] = rows.cosine(remaining[r], chosen[0]);
  const size_t steps = std::min(top_n - 1, n - 1);
  std::vector<double> score;
  for (size_t step = 0; step < steps; ++step) {
    score.resize(remaining.size());
    for (size_t r = 0; r < remaining.size(); ++r)
      score[r] = (1 - diversity) * similarity[remaining[r]] - diversity * closest[r];
    const size_t best = argmax(score);
    const size_t pick = remaining[best];
    chosen.push_back(pick);
    remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(best));
    closest.erase(closest.begin() + static_cast<std::ptrdiff_t>(best));
    for (size_t r = 0; r < remaining.size(); ++r)
      closest[r] = std::max(closest[r], rows.cosine(remaining[r], pick));
  }
  std::vector<Keyword> out;
  out.reserve(chosen.size());
  for (size_t i : chosen) out.push_back({words[i], round4(similarity[i])});
  // Python's sorted(reverse=True) on the rounded score: stable, so ties stay in choice order.
  std::stable_sort(out.begin(), out.end(),
                   [](const Keyword& a, const Keyword& b) { return a.score > b.score; });
  return out;
}

// Depth-first over the k-subsets of [0, m) in lexicographic order (itertools.combinations'),
// with each prefix's pairwise sum carried down; the first subset with the lowest sum wins.
struct SubsetSearch {
  std::vector<std::vector<double>> pair;  // pairwise similarities of the m candidates
  size_t k = 0;
  std::vector<size_t> pick, best;
  double best_sum = std::numeric_limits<double>::infinity();

  void run(size_t depth, size_t start, double sum) {
    if (depth == k) {
      if (sum < best_sum) {
        best_sum = sum;
        best = pick;
      }
      return;
    }
    for (size_t i = start; i + (k - depth) <= pair.size(); ++i) {
      double s = sum;
      for (size_t d = 0; d < depth; ++d) s += pair[pick[d]][i];
      pick[depth] = i;
      run(depth + 1, i + 1, s);
    }
  }
};

std::vector<Keyword> max_sum(const std::vector<double>& similarity, const Rows& rows,
                             const std::vector<std::string>& words, size_t top_n,
                             size_t nr_candidates) {
  if (top_n > words.size()) return {};
  const std::vector<size_t> order = argsort(similarity);
  // The nr_candidates most similar, in increasing similarity.
  const std::vector<size_t> pool(
      order.end() - static_cast<std::ptrdiff_t>(std::min(nr_candidates, order.size())),
      order.end());
  SubsetSearch search;
  search.k = top_n;
  search.pick.resize(top_n);
  search.pair.assign(pool.size(), std::vector<double>(pool.size(), 0.0));
  for (size_t a = 0; a < pool.size(); ++a) {
    for (size_t b = a + 1; b < pool.size(); ++b) {
      search.pair[a][b] = search.pair[b][a] = rows.cosine(pool[a], pool[b]);
    }
  }
  search.run(0, 0, 0.0);
  std::vector<Keyword> out;
  out.reserve(search.best.size());
  for (size_t i : search.best) out.push_back({words[pool[i]], round4(similarity[pool[i]])});
  return out;
}

}  // namespace

const std::vector<std::string>& english_stop_words() {
  static const std::vector<std::string> words(std::begin(kEnglishStopWords),
                                              std::end(kEnglishStopWords));
  return words;
}

void KeywordOptions::validate() const {
  if (ngram_min < 1) throw Error("keywords: the n-gram range must start at 1 or more");
  if (ngram_min > ngram_max) {
    throw Error("keywords: n-gram range (" + std::to_string(ngram_min) + ", " +
                std::to_string(ngram_max) + ") has its lower bound above its upper bound");
  }
  if (method != KeywordMethod::Similarity && top_n == 0) {
    throw Error("keywords: top_n 0 (every candidate) only goes with the plain similarity ranking");
  }
  if (method == KeywordMethod::Mmr && !(diversity >= 0 && diversity <= 1)) {
    std::ostringstream text;
    text << "keywords: diversity " << diversity << " is outside [0, 1]";
    throw Error(text.str());
  }
  if (method == KeywordMethod::MaxSum) {
    if (nr_candidates < top_n) {
      throw Error("keywords: max-sum needs at least top_n (" + std::to_string(top_n) +
                  ") candidates, got " + std::to_string(nr_candidates));
    }
    if (combinations(nr_candidates, top_n) > kMaxSumCombinations) {
      throw Error("keywords: max-sum over " + std::to_string(nr_candidates) +
                  " candidates would compare more than 1e7 sets of " + std::to_string(top_n) +
                  "; use fewer candidates, a smaller top_n or MMR");
    }
  }
  if (batch_size < 1) throw Error("keywords: batch_size must be at least 1");
}

std::vector<std::string> keyword_candidates(std::string_view text, const KeywordOptions& options) {
  if (!is_valid_utf8(text)) throw Error("keyword_candidates: the text is not valid UTF-8");
  const std::u32string lower = python_lower(decode_utf8(text));
  const std::unordered_set<std::string> stop(options.stop_words.begin(), options.stop_words.end());
  std::vector<std::string> words;
  for (size_t i = 0; i < lower.size();) {
    if (!is_word_char(lower[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < lower.size() && is_word_char(lower[end])) ++end;
    if (end - i >= 2) {
      std::string word;
      for (size_t k = i; k < end; ++k) append_utf8(word, lower[k]);
      if (stop.count(word) == 0) words.push_back(std::move(word));
    }
    i = end;
  }
  std::vector<std::string> grams;
  for (size_t n = options.ngram_min; n <= std::min(options.ngram_max, words.size()); ++n) {
    for (size_t i = 0; i + n <= words.size(); ++i) {
      std::string gram = words[i];
      for (size_t k = i + 1; k < i + n; ++k) gram += ' ' + words[k];
      grams.push_back(std::move(gram));
    }
  }
  std::sort(grams.begin(), grams.end());
  grams.erase(std::unique(grams.begin(), grams.end()), grams.end());
  return grams;
}

std::vector<Keyword> select_keywords(const float* document, const Tensor& candidate_embeddings,
                                     const std::vector<std::string>& candidates,
                                     const KeywordOptions& options) {
  options.validate();
  if (candidates.empty()) return {};
  if (candidate_embeddings.dtype() != DType::F32 || candidate_embeddings.rank() != 2 ||
      !candidate_embeddings.is_contiguous() ||
      candidate_embeddings.dim(0) != static_cast<int64_t>(candidates.size())) {
    throw Error("select_keywords: candidate embeddings must be a contiguous F32 [" +
                std::to_string(candidates.size()) + ", dim] tensor");
  }
  const Rows rows{candidate_embeddings.data_as<float>(),
                  static_cast<size_t>(candidate_embeddings.dim(1))};
  std::vector<double> similarity(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i)
    similarity[i] = cosine_similarity(document, rows.row(i), rows.dim);
  switch (options.method) {
    case KeywordMethod::Mmr:
      return mmr(similarity, rows, candidates, options.top_n, options.diversity);
    case KeywordMethod::MaxSum:
      return max_sum(similarity, rows, candidates, options.top_n, options.nr_candidates);
    case KeywordMethod::Similarity:
      break;
  }
  // argsort()[-top_n:][::-1]; a top_n of 0 slices [-0:], the whole array.
  const std::vector<size_t> order = argsort(similarity);
  const size_t keep = options.top_n == 0 ? order.size() : std::min(options.top_n, order.size());
  std::vector<Keyword> out;
  out.reserve(keep);
  for (auto it = order.rbegin(); it != order.rbegin() + static_cast<std::ptrdiff_t>(keep); ++it)
    out.push_back({candidates[*it], round4(similarity[*it])});
  return out;
}

KeywordExtractor KeywordExtractor::load(const std::filesystem::path& folder) {
  return KeywordExtractor(SentenceEmbedder::load(folder));
}

std::vector<std::vector<Keyword>> KeywordExtractor::operator()(
    const std::vector<std::string>& documents, const KeywordOptions& options) const {
  options.validate();
  const auto count = static_cast<int64_t>(documents.size());
  std::vector<std::vector<std::string>> candidates(documents.size());
  for (size_t d = 0; d < documents.size(); ++d) {
    if (!is_valid_utf8(documents[d]))
      throw Error("keywords: document " + std::to_string(d) + " is not valid UTF-8");
  }
  parallel_for_each(count, [&](int64_t d) {
    candidates[static_cast<size_t>(d)] =
        keyword_candidates(documents[static_cast<size_t>(d)], options);
  });
  // Every distinct candidate of the batch once (KeyBERT embeds the batch's vocabulary).
  std::unordered_map<std::string, size_t> row_of;
  std::vector<std::string> unique;
  std::vector<std::string> embedded_documents;
  for (size_t d = 0; d < documents.size(); ++d) {
    if (candidates[d].empty()) continue;
    embedded_documents.push_back(documents[d]);
    for (const std::string& c : candidates[d]) {
      if (row_of.emplace(c, unique.size()).second) unique.push_back(c);
    }
  }
  std::vector<std::vector<Keyword>> out(documents.size());
  if (unique.empty()) return out;
  const Tensor doc_rows = embedder_.embed(embedded_documents, false, options.batch_size);
  const Tensor word_rows = embedder_.embed(unique, false, options.batch_size);
  const int64_t dim = word_rows.dim(1);
  std::vector<size_t> doc_row(documents.size());
  for (size_t d = 0, r = 0; d < documents.size(); ++d)
    if (!candidates[d].empty()) doc_row[d] = r++;
  parallel_for_each(count, [&](int64_t i) {
    const auto d = static_cast<size_t>(i);
    if (candidates[d].empty()) return;
    Tensor rows = Tensor::empty(DType::F32, {static_cast<int64_t>(candidates[d].size()), dim});
    float* dst = rows.mutable_data_as<float>();
    for (const std::string& c : candidates[d]) {
      const float* src = word_rows.data_as<float>() + static_cast<int64_t>(row_of.at(c)) * dim;
      dst = std::copy(src, src + dim, dst);
    }
    const float* document = doc_rows.data_as<float>() + static_cast<int64_t>(doc_row[d]) * dim;
    out[d] = select_keywords(document, rows, candidates[d], options);
  });
  return out;
}

}  // namespace ember::pipelines
