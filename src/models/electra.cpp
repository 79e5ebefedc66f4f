// ELECTRA: BERT's layers and weight names under "electra.", with embeddings embedding_size wide
// that embeddings_project widens to hidden_size when the two differ. The discriminator and the
// generator (the masked LM) are the same encoder.
#include <string>

#include "bert_family.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"

namespace ember::models {
std::unique_ptr<Encoder> load_electra(const Config& config, const nn::Weights& weights) {
  const int64_t hidden = config.positive("hidden_size");
  const int64_t width = embedding_size(config);
  const nn::Weights w = bert_encoder_weights(config, weights);
  BertEmbeddings embeddings = load_bert_embeddings(config, w, width);
  if (width != hidden) {
    embeddings.project = nn::Linear::load(w, "embeddings_project", width, hidden, true);
  }
  return std::make_unique<PostNormEncoder>(hidden, std::move(embeddings),
                                           load_bert_layers(config, w));
}

// ElectraClassificationHead: dense, gelu (whatever hidden_act says), out_proj on the first
// token. The generator's masked LM: generator_predictions (dense to embedding_size, gelu,
// LayerNorm) and generator_lm_head, tied to the word embeddings.
std::unique_ptr<Head> load_electra_head(const Config& config, const nn::Weights& weights,
                                        HeadKind kind, int64_t labels) {
  const int64_t hidden = config.positive("hidden_size");
  if (kind == HeadKind::MaskedLM) {
    require_head_weight(weights, "generator_predictions.dense.weight", kind);
    const int64_t width = embedding_size(config);
    auto head = std::make_unique<MaskedLmHead>();
    head->dense = nn::Linear::load(weights, "generator_predictions.dense", hidden, width, true);
    head->activation = nn::Activation::Gelu;
    head->norm = nn::LayerNorm::load(weights, "generator_predictions.LayerNorm", width,
                                     config.number("layer_norm_eps", 1e-12));
    const Tensor words =
        bert_encoder_weights(config, weights)
            .get("embeddings.word_embeddings.weight", {config.positive("vocab_size"), width});
    head->decoder =
        load_vocab_projection(weights, "generator_lm_head", {"generator_lm_head.bias"}, words);
    return head;
  }
  if (kind != HeadKind::SequenceClassification) {
    return load_per_token_head(weights, kind, hidden, labels);
  }
  require_head_weight(weights, "classifier.out_proj.weight", kind);
  auto head = std::make_unique<ClassifierHead>();
  head->dense = nn::Linear::load(weights, "classifier.dense", hidden, hidden, true);
  head->activation = nn::Activation::Gelu;
  head->out = nn::Linear::load(weights, "classifier.out_proj", hidden, labels, true);
  return head;
}

}  // namespace ember::models
