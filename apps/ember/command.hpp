#pragma once
// Verb registry of the `ember` CLI. Each cmd_*.cpp defines one static CommandRegistrar; main()
// builds the CLI11 app from the registry, so adding a verb touches no other file.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ember::cli {

// `setup` adds a subcommand to `app` and sets its callback. Callbacks report failures by
// throwing; main() turns any exception into one `error: ...` line on stderr and exit status 1.
struct Command {
  std::string name;
  std::function<void(CLI::App& app)> setup;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command command) { command_registry().push_back(std::move(command)); }
};

}  // namespace ember::cli
