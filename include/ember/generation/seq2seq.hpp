#pragma once
// Generation with an encoder-decoder model: greedy, sampling and beam search with transformers'
// semantics. Each step's scores pass, in transformers' order, repetition penalty, no-repeat
// n-grams, bad words, min_length, forced BOS and forced EOS (a forced token's score is 0, every
// other -inf). Greedy and sampling process the raw logits; beam search processes log-softmax and
// scores a finished beam as its summed log-probs / length^length_penalty, length counting the
// generated ids (EOS included, the decoder start token not). Lengths (max_length, min_length)
// count the decoder start token, as in transformers. Inputs of a batch finish independently.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ember/generation/generate.hpp"
#include "ember/models/seq2seq_lm.hpp"

namespace ember::generation {

enum class EarlyStopping : uint8_t { False, True, Never };
// "true", "false" or "never"; ember::Error naming `what` otherwise.
EarlyStopping parse_early_stopping(std::string_view text, std::string_view what);

struct Seq2SeqConfig {
  int64_t num_beams = 1;
  int64_t num_return_sequences = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::False;
  int64_t max_length = 20;     // decoder tokens, the start token included
  int64_t max_new_tokens = 0;  // > 0: overrides max_length (max_new_tokens + 1)
  int64_t min_length = 0;      // EOS is banned while the sequence (start included) is shorter
  int64_t no_repeat_ngram_size = 0;
  std::vector<std::vector<int64_t>> bad_words_ids;
  int64_t forced_bos_token_id = -1;  // -1: none
  // -1: the model's. mBART-cc25 starts from the target's language code.
  int64_t decoder_start_token_id = -1;
  int64_t forced_eos_token_id = -1;
  std::vector<int64_t> eos_ids;
  int64_t pad_token_id = 0;
  // Beam search: log-softmax again after the processors (Marian's generation_config sets it).
  bool renormalize_logits = false;
  // Greedy when sampling.temperature is 0; repetition_penalty applies to every mode.
  SamplingParams sampling;
  // Text put before each input, as transformers' pipelines do (T5's task_specific_params
  // "prefix", e.g. "summarize: ").
  std::string prefix;

  // generation_config.json, then config.json (its task_specific_params[task] when `task` is
  // given and present, e.g. "summarization" or "translation_en_to_de"), as transformers merges
  // them; transformers' defaults for what neither sets. A task the config does not list is an
  // ember::Error naming the tasks it does, unless `task_optional`.
  static Seq2SeqConfig from_folder(const std::filesystem::path& folder, std::string_view task = {},
                                   bool task_optional = true);
  // max_length after max_new_tokens.
  int64_t total_length() const { return max_new_tokens > 0 ? max_new_tokens + 1 : max_length; }
  int64_t start_id(const models::Seq2SeqLM& model) const {
    return decoder_start_token_id >= 0 ? decoder_start_token_id : model.decoder_start_token_id();
  }
  // ember::Error naming the first bad option (beams < 1, num_return_sequences above the beams,
  // max_length below min_length, ids outside the vocabulary...).
  void validate(int64_t vocab) const;
};

struct Seq2SeqOutput {
  std::vector<int64_t> ids;  // generated ids, forced ones and EOS included, no start token
  double score = 0;          // beam search: the beam's score; greedy: 0
};

// For every input (token ids, EOS included as the tokenizer appends it), num_return_sequences
// outputs, best first. Throws ember::Error for an empty input or one longer than the model's
// positions, and for an invalid config.
std::vector<std::vector<Seq2SeqOutput>> generate_seq2seq(
    const models::Seq2SeqLM& model, const std::vector<std::vector<int64_t>>& inputs,
    const Seq2SeqConfig& config);

// One step's score processing for a sequence `ids` (start token included) of a run whose
// max_length is `max_length`, in place over the vocabulary. Exposed for tests.
void process_scores(std::vector<float>& scores, const std::vector<int64_t>& ids,
                    const Seq2SeqConfig& config, int64_t max_length);

}  // namespace ember::generation
