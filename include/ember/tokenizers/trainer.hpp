#pragma once
// Tokenizer training with the options and semantics of the reference's (HF tokenizers) trainers.
// Tokenizer::train counts the words its own normalizer and pre-tokenizer produce, then one of
// these builds the model; see docs/ARCHITECTURE.md for where each trainer differs from the
// reference (only in how ties the reference leaves to hash order are broken).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ember::tokenizers {

// BpeTrainer. Merges the pair of highest count at each step; equal counts go to the pair of
// smaller ids, as in the reference.
struct BpeTrainer {
  size_t vocab_size = 30000;
  uint64_t min_frequency = 0;
  std::vector<std::string> special_tokens;
  std::optional<size_t> limit_alphabet;
  std::vector<char32_t> initial_alphabet;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  std::optional<size_t> max_token_length;  // in chars
};

// WordPieceTrainer: the BPE trainer with "##" as continuing-subword prefix; the vocabulary (not
// the merges) becomes a WordPiece model.
struct WordPieceTrainer {
  BpeTrainer bpe = [] {
    BpeTrainer t;
    t.continuing_subword_prefix = "##";
    return t;
  }();
};

// WordLevelTrainer: the most frequent words (ties by byte order), after the special tokens.
struct WordLevelTrainer {
  size_t vocab_size = 30000;
  uint64_t min_frequency = 0;
  std::vector<std::string> special_tokens;
};

// UnigramTrainer: SentencePiece's EM and pruning, as the reference runs it; see
// trainer_unigram.cpp for the order Ember fixes where the reference's follows hash order.
struct UnigramTrainer {
  size_t vocab_size = 8000;
  uint32_t n_sub_iterations = 2;   // EM steps between two prunings
  double shrinking_factor = 0.75;  // share of the pieces each pruning keeps, in (0, 1)
  std::vector<std::string> special_tokens;
  std::vector<char32_t> initial_alphabet;
  // Added as id 0 unless it is one of special_tokens; without it unknown chars cannot encode.
  std::optional<std::string> unk_token;
  size_t max_piece_length = 16;  // in chars
  size_t seed_size = 1000000;    // seed pieces taken from the suffix array
};

using Trainer = std::variant<BpeTrainer, WordPieceTrainer, WordLevelTrainer, UnigramTrainer>;

struct TrainOptions {
  // Lines that are not valid UTF-8 fail the training (the reference's behaviour) unless this is
  // set; then they are skipped and counted in TrainStats::skipped_lines.
  bool skip_invalid_utf8 = false;
  // Called now and then with (bytes read, total bytes) while files are counted; and with
  // (merges done, merges wanted) while BPE merges. Called on the calling thread.
  std::function<void(const char* stage, uint64_t done, uint64_t total)> progress;
};

struct TrainStats {
  uint64_t lines = 0, skipped_lines = 0, distinct_words = 0;
};

// Word -> count, as the reference's trainers receive it from `feed`.
struct WordCount {
  std::string word;
  uint64_t count = 0;
};

// The model section of a tokenizer.json ("model": {...}) trained from `words`; `base_model` is
// the template's model section whose untrained options (unk_token, dropout, byte_fallback...) it
// keeps. Throws TokenizerError on impossible requests (a special token given twice, a vocabulary
// too small for the alphabet and special tokens, no words).
std::string train_model_json(const Trainer& trainer, std::vector<WordCount> words,
                             const std::string& base_model_json, const TrainOptions& options);

// The special tokens the trainer adds to the tokenizer after training.
const std::vector<std::string>& trainer_special_tokens(const Trainer& trainer);

}  // namespace ember::tokenizers
