// Fuzzes the Hub repo listing parser (the body of GET /api/models/{repo}/revision/{rev}): any
// input must parse or throw ember::Error, and every file name it accepts must stay inside the
// snapshot folder it is joined to.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "../src/hub/model_files.hpp"
#include "ember/base/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path snapshot = "/cache/models--org--name/snapshots/commit";
  try {
    const auto listing = ember::hub::detail::parse_repo_listing(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
    for (const std::string& name : listing.files) {
      const fs::path joined = (snapshot / name).lexically_normal();
      const fs::path inside = joined.lexically_relative(snapshot);
      if (inside.empty() || *inside.begin() == "..") __builtin_trap();
    }
  } catch (const ember::Error&) {
  }
  return 0;
}
