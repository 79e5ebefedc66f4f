#pragma once
// SentencePiece (.model) files: the ModelProto parser and the pipeline components that give the
// sentencepiece library's own results. A .model tokenizer is an ordinary pipeline (normalizer,
// model, decoder; no pre-tokenizer, no post-processor); spm.cpp says why these components are
// not the ones the reference's converters build.
#include <memory>

#include "internal.hpp"

namespace ember::tokenizers::detail {

struct SpmPiece {
  std::string piece;
  float score = 0.0f;
  int type = 1;  // 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE
};

struct SpmConfig {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // 1 UNIGRAM, 2 BPE
  bool byte_fallback = false;
  int64_t unk_id = 0;
  std::string charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  // llama.cpp's variant of BPE: pairs merge into a piece of any type, and every piece found is
  // emitted as it is (sentencepiece merges only into normal, user-defined and unused pieces and
  // splits unused ones back).
  bool merge_any_piece = false;
};

SpmConfig parse_sentencepiece_model(std::string_view data);

// Charsmap rules, whitespace handling and the dummy prefix; normalized bytes align with the
// original text the way sentencepiece reports piece offsets.
std::unique_ptr<Normalizer> make_spm_normalizer(const SpmConfig& cfg);
// Unigram (float Viterbi) or score-ordered BPE over the whole normalized text, by piece type.
std::unique_ptr<Model> make_spm_model(SpmConfig cfg);
// Byte pieces to UTF-8, control pieces dropped, unknown pieces as " \u2047 ".
std::unique_ptr<Decoder> make_spm_decoder(const SpmConfig& cfg);

}  // namespace ember::tokenizers::detail
