#include "ember/models/heads.hpp"

#include <string>

#include "ember/core/ops.hpp"

namespace ember::models {

std::string_view head_class_suffix(HeadKind kind) {
  switch (kind) {
    case HeadKind::SequenceClassification:
      return "ForSequenceClassification";
    case HeadKind::TokenClassification:
      return "ForTokenClassification";
    case HeadKind::QuestionAnswering:
      return "ForQuestionAnswering";
    case HeadKind::MaskedLM:
      return "ForMaskedLM";
  }
  return "?";
}

Tensor ClassifierHead::operator()(const Tensor& rows) const {
  if (!dense.weight.defined()) return out(rows);
  Tensor x = dense(rows);
  nn::activate_(x, activation);
  return out(x);
}

Tensor MaskedLmHead::operator()(const Tensor& rows) const {
  Tensor x = dense(rows);
  nn::activate_(x, activation);
  return decoder(norm(x));
}

Tensor HeadModel::forward(const TokenBatch& batch, std::span<const int64_t> rows) const {
  const Tensor hidden = encoder->forward(batch);
  std::vector<int64_t> picked;
  if (kind == HeadKind::SequenceClassification) {
    // Every architecture here classifies from the first token ([CLS] or <s>).
    picked.assign(batch.offsets.begin(), batch.offsets.end() - 1);
  } else if (!rows.empty()) {
    for (int64_t r : rows) {
      if (r < 0 || r >= hidden.dim(0)) {
        throw Error("head row " + std::to_string(r) + " is outside the batch's " +
                    std::to_string(hidden.dim(0)) + " tokens");
      }
    }
    picked.assign(rows.begin(), rows.end());
  } else {
    return (*head)(hidden);
  }
  const int64_t n = static_cast<int64_t>(picked.size());
  return (*head)(ops::embedding(hidden, Tensor::from_values<int64_t>(DType::I64, {n}, picked)));
}

std::vector<std::string> read_labels(const Config& config) {
  std::vector<std::string> labels;
  if (config.has("id2label")) {
    const nlohmann::json& map = config.json().at("id2label");
    if (!map.is_object() || map.empty()) config.fail("'id2label' is not a non-empty object");
    labels.resize(map.size());
    std::vector<bool> seen(map.size(), false);
    for (const auto& [key, value] : map.items()) {
      size_t id = 0, used = 0;
      try {
        id = std::stoul(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != key.size() || id >= map.size() || seen[id]) {
        config.fail("id2label key '" + key + "' is not one of the ids 0.." +
                    std::to_string(map.size() - 1) + " (each once)");
      }
      if (!value.is_string()) config.fail("id2label[" + key + "] is not a string");
      seen[id] = true;
      labels[id] = value.get<std::string>();
    }
    return labels;
  }
  const int64_t count = config.integer("num_labels", 2);
  if (count < 1) config.fail("num_labels must be at least 1");
  for (int64_t i = 0; i < count; ++i) labels.push_back("LABEL_" + std::to_string(i));
  return labels;
}

void require_head_weight(const nn::Weights& weights, std::string_view probe, HeadKind kind) {
  if (weights.contains(probe)) return;
  throw MissingHead("no " + std::string(head_class_suffix(kind)) + " head in " +
                    weights.source().description() + " (missing weight '" + std::string(probe) +
                    "')");
}

std::unique_ptr<Head> load_token_head(const nn::Weights& weights, HeadKind kind, int64_t hidden,
                                      int64_t labels) {
  const bool qa = kind == HeadKind::QuestionAnswering;
  const std::string name = qa ? "qa_outputs" : "classifier";
  require_head_weight(weights, name + ".weight", kind);
  auto head = std::make_unique<ClassifierHead>();
  head->out = nn::Linear::load(weights, name, hidden, qa ? 2 : labels, true);
  return head;
}

nn::Linear load_vocab_projection(const nn::Weights& weights, std::string_view decoder,
                                 std::initializer_list<std::string_view> bias_names,
                                 const Tensor& word_embeddings) {
  const std::string name(decoder);
  const int64_t vocab = word_embeddings.dim(0), hidden = word_embeddings.dim(1);
  nn::Linear l;
  l.weight = weights.get_optional(name + ".weight", {vocab, hidden});
  if (!l.weight.defined()) l.weight = word_embeddings;
  for (std::string_view b : bias_names) {
    l.bias = weights.get_optional_f32(b, {vocab});
    if (l.bias.defined()) break;
  }
  if (!l.bias.defined()) {
    throw Error("missing weight '" + std::string(*bias_names.begin()) + "' (the bias of " + name +
                ") in " + weights.source().description());
  }
  l.packed = ops::pack_linear_weight(l.weight);
  return l;
}

}  // namespace ember::models
