// model_type -> architecture file. One table, so that adding an architecture is one line here and
// one file beside this one.
#include "ember/base/error.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/heads.hpp"
#include "ember/models/seq2seq_lm.hpp"

namespace ember::models {

std::unique_ptr<Encoder> load_encoder(const Config& config, const nn::Weights& weights) {
  const std::string type = config.model_type();
  if (type == "bert" || type == "roberta" || type == "xlm-roberta" || type == "camembert") {
    return load_bert(config, weights);
  }
  if (type == "distilbert") return load_distilbert(config, weights);
  if (type == "deberta-v2") return load_deberta_v2(config, weights);
  if (type == "albert") return load_albert(config, weights);
  if (type == "electra") return load_electra(config, weights);
  config.fail("unknown encoder architecture model_type '" + type +
              "' (supported: bert, roberta, xlm-roberta, camembert, distilbert, deberta-v2, "
              "albert, electra)");
}

std::unique_ptr<Encoder> load_encoder(const std::filesystem::path& folder) {
  return load_encoder(Config::load(folder), nn::Weights::open(folder));
}

namespace {

// config.json's architectures name the head a checkpoint was saved with; a checkpoint saved with
// another head can hold weights of the same names (classifier.weight), so it is refused here.
void check_architectures(const Config& config, HeadKind kind) {
  if (!config.has("architectures") || !config.json().at("architectures").is_array()) return;
  bool other_head = false;
  std::string listed;
  for (const nlohmann::json& a : config.json().at("architectures")) {
    if (!a.is_string()) continue;
    const std::string name = a.get<std::string>();
    listed += (listed.empty() ? "" : ", ") + name;
    for (HeadKind k : {HeadKind::SequenceClassification, HeadKind::TokenClassification,
                       HeadKind::QuestionAnswering, HeadKind::MaskedLM}) {
      if (!name.ends_with(head_class_suffix(k))) continue;
      if (k == kind) return;
      other_head = true;
    }
  }
  if (other_head) {
    throw MissingHead("no " + std::string(head_class_suffix(kind)) + " head: config.json lists " +
                      listed + " (" + config.source() + ")");
  }
}

}  // namespace

HeadModel load_head_model(const Config& config, const nn::Weights& weights, HeadKind kind,
                          std::string_view pipeline) {
  HeadModel m;
  m.kind = kind;
  const bool classifies =
      kind == HeadKind::SequenceClassification || kind == HeadKind::TokenClassification;
  if (classifies) m.labels = read_labels(config);
  m.problem_type = config.string("problem_type", "");
  const int64_t outputs = static_cast<int64_t>(m.labels.size());
  const std::string type = config.model_type();
  try {
    check_architectures(config, kind);
    if (type == "bert" || type == "roberta" || type == "xlm-roberta" || type == "camembert") {
      m.head = load_bert_head(config, weights, kind, outputs);
    } else if (type == "distilbert") {
      m.head = load_distilbert_head(config, weights, kind, outputs);
    } else if (type == "deberta-v2") {
      m.head = load_deberta_v2_head(config, weights, kind, outputs);
    } else if (type == "albert") {
      m.head = load_albert_head(config, weights, kind, outputs);
    } else if (type == "electra") {
      m.head = load_electra_head(config, weights, kind, outputs);
    } else {
      config.fail("no task heads for model_type '" + type +
                  "' (supported: bert, roberta, xlm-roberta, camembert, distilbert, deberta-v2, "
                  "albert, electra)");
    }
  } catch (const MissingHead& e) {
    if (pipeline.empty()) throw;
    throw MissingHead(std::string(pipeline) + " needs a model with a " +
                      std::string(head_class_suffix(kind)) + " head: " + e.what());
  }
  m.encoder = load_encoder(config, weights);
  return m;
}

HeadModel load_head_model(const std::filesystem::path& folder, HeadKind kind,
                          std::string_view pipeline) {
  return load_head_model(Config::load(folder), nn::Weights::open(folder), kind, pipeline);
}

std::unique_ptr<CausalLM> load_causal_lm(const Config& config, const nn::Weights& weights) {
  const std::string type = config.model_type();
  if (type == "gpt2") return load_gpt2(config, weights);
  if (type == "llama" || type == "mistral" || type == "qwen2") return load_llama(config, weights);
  config.fail("unknown decoder architecture model_type '" + type +
              "' (supported: gpt2, llama, mistral, qwen2)");
}

std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec) && looks_like_gguf(folder)) {
    GgufFile file = GgufFile::open(folder);
    const Config config = Config::from_gguf(file, folder.string());
    return load_causal_lm(config, nn::Weights(nn::gguf_weight_source(std::move(file))));
  }
  return load_causal_lm(Config::load(folder), nn::Weights::open(folder));
}

std::unique_ptr<Seq2SeqLM> load_seq2seq(const Config& config, const nn::Weights& weights) {
  const std::string type = config.model_type();
  if (type == "t5" || type == "mt5") return load_t5(config, weights);
  if (type == "bart" || type == "mbart" || type == "marian" || type == "m2m_100" ||
      type == "pegasus")
    return load_bart(config, weights);
  if (!config.boolean("is_encoder_decoder", false)) {
    config.fail("model_type '" + type +
                "' is not an encoder-decoder model (it has no decoder over an encoder's output)");
  }
  config.fail("unknown encoder-decoder architecture model_type '" + type +
              "' (supported: t5, mt5, bart, mbart, marian, m2m_100, pegasus)");
}

std::unique_ptr<Seq2SeqLM> load_seq2seq(const std::filesystem::path& folder) {
  return load_seq2seq(Config::load(folder), nn::Weights::open(folder));
}

}  // namespace ember::models
