#pragma once
// Keyword and keyphrase extraction as KeyBERT 0.9.0 does it (KeyBERT().extract_keywords with a
// sentence-transformers model): a document's candidates are the n-grams scikit-learn's
// CountVectorizer finds in it, each candidate and the document are embedded, and candidates are
// ranked by the cosine similarity of their embedding to the document's, optionally diversified
// by Maximal Marginal Relevance or Max Sum Distance. Scores are rounded to 4 decimals as KeyBERT
// rounds them, and the output order is KeyBERT's (see KeywordMethod).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/pipelines/sentence_embedding.hpp"

namespace ember::pipelines {

// scikit-learn's English stop-word list (sklearn.feature_extraction.text.ENGLISH_STOP_WORDS, 318
// words), KeyBERT's default; sorted.
const std::vector<std::string>& english_stop_words();

enum class KeywordMethod : uint8_t {
  // The top_n candidates most similar to the document, most similar first.
  Similarity,
  // Maximal Marginal Relevance: the most similar candidate, then repeatedly the one maximising
  // (1 - diversity) * similarity - diversity * (its highest similarity to one already chosen);
  // returned sorted by rounded score, highest first, ties in the order they were chosen.
  Mmr,
  // Max Sum Distance: among the nr_candidates candidates most similar to the document, the
  // top_n whose pairwise similarities sum lowest (the first such set in lexicographic order);
  // returned in increasing similarity to the document, as KeyBERT returns them. A document with
  // fewer than top_n candidates gets none.
  MaxSum,
};

struct KeywordOptions {
  // CountVectorizer(ngram_range=(ngram_min, ngram_max), stop_words=...): keyphrases of
  // ngram_min..ngram_max words; stop words are dropped before n-grams are formed (so an n-gram
  // may join words a stop word separated). An empty list keeps every word (stop_words=None).
  size_t ngram_min = 1, ngram_max = 1;
  std::vector<std::string> stop_words = english_stop_words();
  // Keywords per document. 0 means all candidates, as KeyBERT's slice [-0:] gives them (only
  // with KeywordMethod::Similarity).
  size_t top_n = 5;
  KeywordMethod method = KeywordMethod::Similarity;
  double diversity = 0.5;     // Mmr: in [0, 1]
  size_t nr_candidates = 20;  // MaxSum: at least top_n
  size_t batch_size = 32;     // texts embedded together

  // Throws ember::Error naming the option that is out of range.
  void validate() const;
};

// The candidates CountVectorizer gives one document under `options` (its n-gram range and stop
// words): the text lowercased as Python's str.lower() does, split into the maximal runs of at
// least two of Python's `\w` characters (token_pattern `(?u)\b\w\w+\b`), stop words dropped,
// n-grams joined by one space; distinct, sorted by code point (the vocabulary's order, which
// decides KeyBERT's ties). Throws ember::Error when the text is not valid UTF-8.
std::vector<std::string> keyword_candidates(std::string_view text, const KeywordOptions& options);

struct Keyword {
  std::string keyword;
  double score = 0;  // cosine similarity to the document, rounded to 4 decimals
};

// KeyBERT's selection on given embeddings (its doc_embeddings / word_embeddings route):
// `candidates` are one document's candidates in keyword_candidates' order and
// `candidate_embeddings` their rows ([candidates.size(), dim] F32), `document` the document's
// embedding (dim F32). No candidates give no keywords.
std::vector<Keyword> select_keywords(const float* document, const Tensor& candidate_embeddings,
                                     const std::vector<std::string>& candidates,
                                     const KeywordOptions& options);

class KeywordExtractor {
 public:
  // A sentence-transformers folder (as SentenceEmbedder::load reads it).
  static KeywordExtractor load(const std::filesystem::path& folder);

  // Keywords per document, in input order. Every distinct candidate of the batch is embedded
  // once; the per-document selection runs on the thread pool. A document without candidates
  // (empty, or only stop words and one-character words) gets none, as in KeyBERT. Throws
  // ember::Error for invalid options or a document that is not valid UTF-8 (naming its index).
  std::vector<std::vector<Keyword>> operator()(const std::vector<std::string>& documents,
                                               const KeywordOptions& options) const;

  const SentenceEmbedder& embedder() const { return embedder_; }

 private:
  explicit KeywordExtractor(SentenceEmbedder embedder) : embedder_(std::move(embedder)) {}
  SentenceEmbedder embedder_;
};

}  // namespace ember::pipelines
