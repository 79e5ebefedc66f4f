// model_type -> architecture file. One table, so that adding an architecture is one line here and
// one file beside this one.
#include "ember/core/error.hpp"
#include "ember/models/encoder.hpp"

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

}  // namespace ember::models
