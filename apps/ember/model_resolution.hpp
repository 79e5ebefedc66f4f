#pragma once
// --model arguments: a local folder or file, or a built-in short name.
#include <filesystem>
#include <string>

namespace ember::cli {

std::filesystem::path resolve_model(const std::string& spec);

}  // namespace ember::cli
