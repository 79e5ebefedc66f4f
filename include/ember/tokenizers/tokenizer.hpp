#pragma once
// Hugging Face-compatible tokenizers: loads tokenizer.json (and legacy vocab/merges/SentencePiece
// files) and reproduces the reference pipeline (normalize -> pre-tokenize -> model ->
// post-process) with byte offsets into the original text.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/tokenizers/trainer.hpp"

namespace ember::tokenizers {

// Every malformed file, bad request or invalid UTF-8 input is reported with this type; it is an
// ember::Error, so callers that handle the library's errors in one place need no extra case.
class TokenizerError : public Error {
 public:
  using Error::Error;
};

struct Encoding {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> type_ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<size_t, size_t>> offsets;  // byte offsets into the original text
  std::vector<int64_t> word_ids;                   // -1 where the reference says None
  std::vector<int64_t> sequence_ids;               // -1 for special tokens
  std::vector<uint32_t> special_tokens_mask;
  std::vector<uint32_t> attention_mask;
  std::vector<Encoding> overflowing;

  size_t size() const { return ids.size(); }
};

// Input of one encode call: a single sequence or a pair.
struct EncodeInput {
  std::string first;
  std::optional<std::string> second;
};

class Tokenizer;

// Incremental detokenization for generation: step(id) returns the text that id adds, once it forms
// complete UTF-8, or nullopt when it does not yet. Only the ids since the last emitted prefix are
// decoded again, so each step costs O(1) amortized. Keeps a pointer to the tokenizer, which must
// outlive it (and not be moved meanwhile).
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens);
  std::optional<std::string> step(uint32_t id);

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<uint32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

struct TokenizerImpl;

// A SentencePiece BPE vocabulary as llama.cpp's SPM tokenizer ("llama" in GGUF) uses it: pieces,
// their scores and types (sentencepiece's: 1 normal, 2 unknown, 3 control, 4 user-defined,
// 5 unused, 6 byte).
struct SentencePieceVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;
  uint32_t unk_id = 0;
  std::optional<uint32_t> bos_id, eos_id;  // added before / after every sequence when set
  bool add_space_prefix = true;            // U+2581 before each text run
};

class Tokenizer {
 public:
  static Tokenizer from_json(std::string_view json);
  static Tokenizer from_file(const std::string& path);
  // Accepts tokenizer.json, vocab.txt (BERT WordPiece), vocab.json (+ merges.txt beside it), a
  // SentencePiece .model, or a directory holding one of those.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_bert_vocab(const std::string& vocab_txt_path);
  static Tokenizer from_gpt2_files(const std::string& vocab_json, const std::string& merges_txt);
  static Tokenizer from_sentencepiece(const std::string& model_path);
  // llama.cpp's tokenization: control, unknown and user-defined pieces are matched in the raw
  // text first (control and unknown ones as special tokens); every other run gets the space
  // prefix, spaces become U+2581, and characters merge pairwise, highest-scoring vocabulary piece
  // first (leftmost on ties), any piece type allowed; a character outside the vocabulary becomes
  // its <0xXX> byte pieces. Throws ember::Error for mismatched lengths, an unknown type, a
  // duplicated piece, or ids outside the vocabulary.
  static Tokenizer from_sentencepiece_vocab(const SentencePieceVocab& vocab);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  Encoding encode(std::string_view text, bool add_special_tokens = true) const;
  Encoding encode_pair(std::string_view first, std::string_view second,
                       bool add_special_tokens = true) const;
  // Encodes on Ember's process-wide thread pool (ember::set_num_threads, EMBER_NUM_THREADS),
  // then applies batch padding.
  std::vector<Encoding> encode_batch(const std::vector<EncodeInput>& inputs,
                                     bool add_special_tokens = true) const;
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts,
                                     bool add_special_tokens = true) const;

  // Ids only: exactly encode(text).ids (added and special tokens, truncation without the
  // overflowing parts, padding), but skips token strings, offsets and word ids, so it is faster.
  std::vector<uint32_t> encode_ids(std::string_view text, bool add_special_tokens = true) const;
  // encode_ids on the thread pool, then batch padding as in encode_batch.
  std::vector<std::vector<uint32_t>> encode_batch_ids(const std::vector<std::string>& texts,
                                                      bool add_special_tokens = true) const;

  std::string decode(const std::vector<uint32_t>& ids, bool skip_special_tokens = true) const;
  // The decoder applied to token strings (transformers' convert_tokens_to_string); tokens joined
  // by spaces when the tokenizer has no decoder.
  std::string decode_tokens(std::vector<std::string> tokens) const;
  // The model's continuation prefix ("##" for WordPiece), or nullopt when it has none (BPE
  // usually, Unigram): how transformers tells a word's pieces apart.
  std::optional<std::string> continuing_subword_prefix() const;
  DecodeStream decode_stream(bool skip_special_tokens = true) const {
    return DecodeStream(*this, skip_special_tokens);
  }

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(uint32_t id) const;
  size_t vocab_size() const;

  // tokenizer.json's own truncation and padding rules apply until replaced here. Callers with
  // other rules (sentence-transformers truncates at max_seq_length and never pads for pooling)
  // set their own: longest-first truncation from the right with no stride, counting the special
  // tokens the post-processor adds, as the reference's enable_truncation(max_length) does; or
  // none.
  void set_truncation(std::optional<size_t> max_length);
  void disable_padding();

  // Trains a new model (the trainer's kind must match this tokenizer's model) on the words this
  // tokenizer's normalizer and pre-tokenizer make of each line of `files` (lines keep their line
  // ending, as the reference's train does), then adds the trainer's special tokens. Files are
  // streamed and counted on the thread pool, so a corpus larger than memory trains. Needs a
  // tokenizer built from tokenizer.json (any model of the right type, even an empty one, as a
  // template).
  TrainStats train(const Trainer& trainer, const std::vector<std::string>& files,
                   const TrainOptions& options = {});
  // The same over sequences from `next`, which returns false once there are no more.
  TrainStats train_from_iterator(const Trainer& trainer,
                                 const std::function<bool(std::string& sequence)>& next,
                                 const TrainOptions& options = {});
  // tokenizer.json text of a trained tokenizer, which from_json and the reference load back.
  std::string to_json(bool pretty = true) const;
  void save(const std::string& path, bool pretty = true) const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  TrainStats train(const Trainer& trainer, const std::vector<std::string>& files,
                   const TrainOptions& options, const std::function<bool(std::string&)>* next);
  std::unique_ptr<TokenizerImpl> impl_;
};

}  // namespace ember::tokenizers
