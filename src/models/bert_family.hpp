#pragma once
// What BERT, ALBERT and ELECTRA share (internal to the models module): BERT's embeddings, maybe
// narrower than the layers and then projected up, and a stack of post-norm layers, which ALBERT
// runs several times over one set of weights.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/models/config.hpp"
#include "ember/models/encoder.hpp"
#include "ember/nn/encoder_layer.hpp"
#include "ember/nn/layers.hpp"
#include "ember/nn/weights.hpp"

namespace ember::models {

// The encoder's weights: bare-model checkpoints have no prefix, task-head ones nest it under
// model_type (bert., albert., electra., ...) or another family name.
nn::Weights bert_encoder_weights(const Config& config, const nn::Weights& checkpoint);

struct BertEmbeddings {
  bool roberta_positions = false;  // RoBERTa and kin count positions after the padding id
  int64_t max_positions = 0, pad_id = 0;
  nn::Embedding words, positions, token_types;  // token_types undefined: none
  nn::LayerNorm norm;
  // From embedding_size to hidden_size (ALBERT's embedding_hidden_mapping_in, ELECTRA's
  // embeddings_project); undefined weight: none, the embeddings are hidden_size wide.
  nn::Linear project;

  int64_t max_tokens() const;
  // [N, hidden] F32 for the packed batch.
  Tensor operator()(const TokenBatch& batch) const;
};

// embeddings.{word,position,token_type}_embeddings and embeddings.LayerNorm of `encoder` (already
// without its prefix), `width` wide; `project` is left empty.
BertEmbeddings load_bert_embeddings(const Config& config, const nn::Weights& encoder,
                                    int64_t width);

// Where a post-norm layer's weights are, relative to its prefix.
struct PostNormLayerNames {
  std::string_view query, key, value, attention_out, attention_norm, mlp_up, mlp_down, output_norm;
};
inline constexpr PostNormLayerNames kBertLayerNames{"attention.self.query",
                                                    "attention.self.key",
                                                    "attention.self.value",
                                                    "attention.output.dense",
                                                    "attention.output.LayerNorm",
                                                    "intermediate.dense",
                                                    "output.dense",
                                                    "output.LayerNorm"};

// One layer at `prefix` with the sizes, activation and epsilon of a BERT-style config
// (hidden_size, num_attention_heads, intermediate_size, hidden_act, layer_norm_eps).
nn::PostNormEncoderLayer load_post_norm_layer(const Config& config, const nn::Weights& encoder,
                                              const std::string& prefix,
                                              const PostNormLayerNames& names,
                                              std::string_view default_act);

// encoder.layer.0 .. encoder.layer.{num_hidden_layers - 1} under BERT's names.
std::vector<nn::PostNormEncoderLayer> load_bert_layers(const Config& config,
                                                       const nn::Weights& encoder);

// ALBERT's and ELECTRA's embedding_size; both configs default to 128.
int64_t embedding_size(const Config& config);

// Embeddings, then layers[order[0]], layers[order[1]], ... (each layer once when order is empty).
class PostNormEncoder final : public Encoder {
 public:
  PostNormEncoder(int64_t hidden, BertEmbeddings embeddings,
                  std::vector<nn::PostNormEncoderLayer> layers, std::vector<size_t> order = {});
  int64_t hidden_size() const override { return hidden_; }
  int64_t max_tokens() const override { return embeddings_.max_tokens(); }
  Tensor forward(const TokenBatch& batch) const override;

 private:
  int64_t hidden_ = 0;
  BertEmbeddings embeddings_;
  std::vector<nn::PostNormEncoderLayer> layers_;
  std::vector<size_t> order_;
};

}  // namespace ember::models
