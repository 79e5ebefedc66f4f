#pragma once
// What transformers' T5Tokenizer and PegasusTokenizer make of a spiece.model that comes without a
// tokenizer.json: their converters' pipelines, not sentencepiece's own (words split on whitespace
// with U+2581 prepended, "</s>" appended, the specials matched in the raw text).
// - T5: the pieces at their ids, then `extra_ids` <extra_id_N>, the last first.
// - Pegasus: <pad> </s> <mask_1> <mask_2> <unk_2> ... <unk_{offset - 1}>, then the pieces past the
//   model's own <pad> and </s> (piece i at id i + offset); newlines become spaces without a
//   charsmap, and runs of spaces collapse.
// Both throw ember::Error for a file that is not a Unigram sentencepiece model, Pegasus for one
// without <pad>, </s> and <unk> at ids 0, 1 and 2, T5 for one without </s>.
#include <cstdint>
#include <string>

#include "ember/tokenizers/tokenizer.hpp"

namespace ember::tokenizers {

Tokenizer t5_tokenizer_from_spiece(const std::string& model_path, uint32_t extra_ids);
Tokenizer pegasus_tokenizer_from_spiece(const std::string& model_path, uint32_t offset);

}  // namespace ember::tokenizers
