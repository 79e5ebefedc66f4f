// model_type -> architecture file. One table, so that adding an architecture is one line here and
// one file beside this one.
#include "ember/base/error.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/encoder.hpp"
#include "ember/models/seq2seq_lm.hpp"

namespace ember::models {

std::unique_ptr<Encoder> load_encoder(const Config& config, const nn::Weights& weights) {
  const std::string type = config.model_type();
  if (type == "bert" || type == "roberta" || type == "xlm-roberta" || type == "camembert") {
    return load_bert(config, weights);
  }
  if (type == "distilbert") return load_distilbert(config, weights);
  config.fail("unknown encoder architecture model_type '" + type +
              "' (supported: bert, roberta, xlm-roberta, camembert, distilbert)");
}

std::unique_ptr<Encoder> load_encoder(const std::filesystem::path& folder) {
  return load_encoder(Config::load(folder), nn::Weights::open(folder));
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
  if (type == "t5") return load_t5(config, weights);
  if (!config.boolean("is_encoder_decoder", false)) {
    config.fail("model_type '" + type +
                "' is not an encoder-decoder model (it has no decoder over an encoder's output)");
  }
  config.fail("unknown encoder-decoder architecture model_type '" + type + "' (supported: t5)");
}

std::unique_ptr<Seq2SeqLM> load_seq2seq(const std::filesystem::path& folder) {
  return load_seq2seq(Config::load(folder), nn::Weights::open(folder));
}

}  // namespace ember::models
