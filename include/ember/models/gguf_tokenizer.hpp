#pragma once
// What a GGUF file says about its tokenizer (tokenizer.ggml.*), in the forms the rest of Ember
// takes: a Hugging Face tokenizer.json document (handed to the tokenizers library, which does
// not see GGUF) and the ids that end generation.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/formats/gguf.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace ember::models {

// The tokenizer.json of tokenizer.ggml.model "gpt2" (byte-level BPE: tokens, token_type,
// merges), with the pre-tokenizer its original tokenizer.json has for tokenizer.ggml.pre
// "smollm", "gpt-2", "llama-bpe"/"llama3" or "qwen2", as llama.cpp chooses it. BOS/EOS are added
// when tokenizer.ggml.add_bos_token / add_eos_token say so, with llama.cpp's defaults when they
// are absent (BOS for the Llama 3 pre-tokenizer, otherwise none). Control and user-defined
// tokens become added tokens. Throws ember::Error naming what is missing or unsupported
// ("llama" vocabularies are gguf_sentencepiece_vocab's).
nlohmann::json gguf_tokenizer_json(const GgufFile& file);

// The other way: the tokenizer.ggml.pre whose normalizer and pre-tokenizer (as
// gguf_tokenizer_json writes them) a Hugging Face tokenizer.json has, or nullopt when it has
// none of them. llama.cpp's converter names the pre-tokenizer by hashing a tokenization of a
// fixed text instead; for the tokenizers Ember reads the two agree on what gets split where.
std::optional<std::string> gguf_pre_of(const nlohmann::json& tokenizer);

// The vocabulary of tokenizer.ggml.model "llama" (SentencePiece BPE, tokenized as llama.cpp's
// SPM tokenizer does: tokenizers::Tokenizer::from_sentencepiece_vocab): tokens, scores and
// token_type (scores 0 and normal types when absent), unknown_token_id, BOS/EOS when
// add_bos_token / add_eos_token say so, add_space_prefix; with llama.cpp's defaults for absent
// keys (unknown 0, BOS 1 added, EOS 2 not added, space prefix on). Throws ember::Error naming
// a missing or ill-typed key.
tokenizers::SentencePieceVocab gguf_sentencepiece_vocab(const GgufFile& file);

// llama.cpp's end-of-generation ids: tokenizer.ggml.eos_token_id and eot_token_id, and the
// control tokens whose text marks an end of turn (<|im_end|>, <|endoftext|>, <|eot_id|>, ...)
// or a FIM pad/repository token. Sorted, unique.
std::vector<int64_t> gguf_eos_ids(const GgufFile& file);

}  // namespace ember::models
