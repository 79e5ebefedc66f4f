#pragma once
// Encoder-decoder language models (T5 v1.0 and v1.1, BART, mBART, Marian, M2M100/NLLB): a batch of
// inputs is encoded once, then the decoder runs step by step over a self-attention KV cache and a
// cross-attention cache of the encoder output's keys and values, computed once per input.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "ember/core/tensor.hpp"
#include "ember/models/config.hpp"
#include "ember/nn/decoder_layer.hpp"
#include "ember/nn/seq2seq_layer.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {

struct Seq2SeqCache {
  nn::KvCache self;      // decoder self-attention, one row per decoded sequence (beam)
  nn::CrossCache cross;  // the encoder output's keys and values, one row per input
  int64_t rows() const { return self.layers.empty() ? 0 : self.layers[0].keys.dim(0); }
};

// Row r of both caches becomes old row rows[r]: beam search's reordering, expanding each input
// to its beams, and dropping finished inputs.
void select_rows(Seq2SeqCache& cache, std::span<const int64_t> rows);

// decode's argument checks: ids [batch, tokens] with one row per cache row, and a cache of
// `layers` decoder layers; ember::Error naming `model` otherwise.
void check_decode_input(std::string_view model, const Tensor& ids, const Seq2SeqCache& cache,
                        size_t layers);

// encode's argument checks (ids [B, S], mask of the same shape; ember::Error naming `model`
// otherwise) and its tokens packed without padding.
nn::PackedTokens pack_encoder_input(std::string_view model, const Tensor& ids, const Tensor& mask);

// The cache every architecture's new_cache makes: `capacity` zeroed self-attention rows per
// decoder layer, and each layer's cross keys and values of encoded [B, S, hidden].
Seq2SeqCache new_decoder_cache(std::span<const nn::Seq2SeqDecoderLayer> decoder,
                               const Tensor& encoded, const Tensor& mask, int64_t capacity);

class Seq2SeqLM {
 public:
  virtual ~Seq2SeqLM() = default;
  // The decoder's vocabulary: the logits' width.
  virtual int64_t vocab_size() const = 0;
  // The encoder's, which differs where source and target have their own (Marian's
  // separate_vocabs).
  virtual int64_t source_vocab_size() const { return vocab_size(); }
  // The longest input the encoder takes (its positions), or INT64_MAX for relative positions.
  virtual int64_t max_source_tokens() const = 0;
  // The id the decoder starts from (T5: pad).
  virtual int64_t decoder_start_token_id() const = 0;
  // ids and mask [B, S] (mask 0 = padding) -> the encoder output [B, S, hidden] F32.
  virtual Tensor encode(const Tensor& ids, const Tensor& mask) const = 0;
  // A cache for decoding `capacity` tokens against encoded [B, S, hidden] with its mask.
  virtual Seq2SeqCache new_cache(const Tensor& encoded, const Tensor& mask,
                                 int64_t capacity) const = 0;
  // ids [B, T]: the decoder tokens after the cache's (all rows at the same position). Appends
  // them to the cache and returns logits [B, T, V] F32.
  virtual Tensor decode(const Tensor& ids, Seq2SeqCache& cache) const = 0;
};

// By config.json's model_type: t5 (mt5 too), bart, mbart, marian, m2m_100 (NLLB too). Throws
// ember::Error naming the problem for an architecture without a decoder (an encoder or decoder-only
// model), a bad config or missing weights.
std::unique_ptr<Seq2SeqLM> load_seq2seq(const std::filesystem::path& folder);
std::unique_ptr<Seq2SeqLM> load_seq2seq(const Config& config, const nn::Weights& weights);

std::unique_ptr<Seq2SeqLM> load_t5(const Config& config, const nn::Weights& weights);
// bart, mbart, marian and m2m_100 (NLLB's model_type too).
std::unique_ptr<Seq2SeqLM> load_bart(const Config& config, const nn::Weights& weights);

}  // namespace ember::models
