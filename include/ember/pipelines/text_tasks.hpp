#pragma once
// transformers' text pipelines on the encoders' task heads, with its outputs and defaults:
// text classification, zero-shot classification (NLI), fill-mask, token classification (NER)
// and question answering.
// Each is a type loaded once from a Hugging Face folder whose operator() takes a batch of inputs;
// the batch is tokenized on the thread pool, sorted by length and encoded in chunks of
// batch_size, and the results come back in input order. Offsets are character (code point)
// offsets into the input, as transformers gives them.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/models/heads.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace ember::pipelines {

// A task-head model with its tokenizer (tokenizer.json) and the special tokens and limits of
// tokenizer_config.json.
struct TaskModel {
  models::HeadModel model;
  tokenizers::Tokenizer tokenizer;
  std::optional<uint32_t> unk_id, mask_id, pad_id, cls_id;
  bool clean_up_spaces = false;  // tokenizer_config.json's clean_up_tokenization_spaces
  // tokenizer_config.json's padding_side is "left" (question answering then puts the question
  // second, as transformers does).
  bool pad_left = false;
  // Tokens one encoding may hold: the encoder's limit, lowered to model_max_length.
  size_t max_length = 0;
  // Whether the model is given the tokenizer's token type ids: transformers passes them only
  // where the tokenizer lists token_type_ids among its model inputs (not for RoBERTa, XLM-R,
  // CamemBERT or DistilBERT, whose pair encodings still mark the second sequence).
  bool token_types = true;

  // `pipeline` names the caller in the error for a folder without the head.
  static TaskModel load(const std::filesystem::path& folder, models::HeadKind kind,
                        const std::string& pipeline);
  // tokenizer.decode as transformers' decode does it (with its clean-up of spaces when the
  // folder asks for it).
  std::string decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const;
};

struct LabelScore {
  std::string label;
  double score = 0;
};

enum class ScoreFunction : uint8_t { Default, Sigmoid, Softmax, None };
// "sigmoid", "softmax", "none"; throws ember::Error otherwise.
ScoreFunction parse_score_function(const std::string& name);

class TextClassifier {
 public:
  static TextClassifier load(const std::filesystem::path& folder);
  struct Options {
    // Labels kept, best first; 0 keeps all.
    size_t top_k = 1;
    // Default: transformers' choice from problem_type and the number of labels (sigmoid for
    // multi-label or one label, none for regression, softmax otherwise).
    ScoreFunction function = ScoreFunction::Default;
    size_t batch_size = 32;
  };
  std::vector<std::vector<LabelScore>> operator()(const std::vector<std::string>& texts,
                                                  const Options& options) const;
  const std::vector<std::string>& labels() const { return m_.model.labels; }

 private:
  explicit TextClassifier(TaskModel m) : m_(std::move(m)) {}
  TaskModel m_;
};

struct ZeroShotResult {
  std::string sequence;
  std::vector<std::string> labels;  // best first
  std::vector<double> scores;
};

class ZeroShotClassifier {
 public:
  static ZeroShotClassifier load(const std::filesystem::path& folder);
  struct Options {
    std::vector<std::string> labels;                          // candidate labels; not empty
    std::string hypothesis_template = "This example is {}.";  // must contain {}
    bool multi_label = false;
    size_t batch_size = 32;
  };
  std::vector<ZeroShotResult> operator()(const std::vector<std::string>& sequences,
                                         const Options& options) const;
  // The first label whose lowercase name starts with "entail", or -1 (then the last column).
  int64_t entailment_id() const { return entailment_id_; }

 private:
  explicit ZeroShotClassifier(TaskModel m) : m_(std::move(m)) {}
  TaskModel m_;
  int64_t entailment_id_ = -1;
};

struct MaskPrediction {
  double score = 0;
  uint32_t token = 0;
  std::string token_str;
  std::string sequence;
};

class FillMask {
 public:
  static FillMask load(const std::filesystem::path& folder);
  struct Options {
    size_t top_k = 5;
    size_t batch_size = 32;
  };
  // Per text, per mask token in it (in order), the top_k predictions. A text without the mask
  // token is an error naming the text's index and the token.
  std::vector<std::vector<std::vector<MaskPrediction>>> operator()(
      const std::vector<std::string>& texts, const Options& options) const;
  std::string mask_token() const;

 private:
  explicit FillMask(TaskModel m) : m_(std::move(m)) {}
  TaskModel m_;
  uint32_t mask_id_ = 0;
};

enum class Aggregation : uint8_t { None, Simple, First, Average, Max };
// "none", "simple", "first", "average", "max"; throws ember::Error otherwise.
Aggregation parse_aggregation(const std::string& name);

struct Entity {
  std::string entity;  // the label (Aggregation::None) or the group's tag ("entity_group")
  double score = 0;
  int64_t index = -1;  // token index in the encoding (Aggregation::None only)
  std::string word;
  size_t start = 0, end = 0;  // character offsets into the text
};

class TokenClassifier {
 public:
  static TokenClassifier load(const std::filesystem::path& folder);
  struct Options {
    Aggregation aggregation = Aggregation::None;
    std::vector<std::string> ignore_labels = {"O"};
    size_t batch_size = 32;
  };
  std::vector<std::vector<Entity>> operator()(const std::vector<std::string>& texts,
                                              const Options& options) const;

 private:
  explicit TokenClassifier(TaskModel m) : m_(std::move(m)) {}
  TaskModel m_;
};

struct QaInput {
  std::string question, context;
};

struct Answer {
  std::string answer;         // the context's text from start to end
  double score = 0;           // merged answers add up their scores, so a score may exceed 1
  size_t start = 0, end = 0;  // character offsets into the context
};

// Extractive question answering, as transformers 5.2's QuestionAnsweringPipeline: the context is
// split into windows of max_seq_len tokens (question and special tokens included) that overlap
// by doc_stride tokens; each window gets its own softmax over the context tokens and [CLS], keeps
// its best 2 * top_k + 10 spans of at most max_answer_len tokens, widened to whole words;
// answers with the same text (ignoring case) are merged by adding their scores.
class QuestionAnswerer {
 public:
  static QuestionAnswerer load(const std::filesystem::path& folder);
  struct Options {
    size_t top_k = 1;
    // 0: transformers' defaults, min(model_max_length, 384) and min(max_seq_len / 2, 128).
    size_t max_seq_len = 0;
    std::optional<size_t> doc_stride;
    size_t max_answer_len = 15;  // tokens
    // Adds the empty answer (start = end = 0), scored by the lowest [CLS] score of the windows.
    bool handle_impossible_answer = false;
    size_t batch_size = 32;  // windows per forward pass
  };
  // Per input, at most top_k answers, best first. An empty question or context, windows with no
  // room for the context, or a doc_stride not below that room are errors naming the input.
  std::vector<std::vector<Answer>> operator()(const std::vector<QaInput>& inputs,
                                              const Options& options) const;

 private:
  explicit QuestionAnswerer(TaskModel m) : m_(std::move(m)) {}
  TaskModel m_;
};

}  // namespace ember::pipelines
