#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

#include "command.hpp"

namespace ember::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace ember::cli

int main(int argc, char** argv) {
  CLI::App app{
      "ember: machine learning in C++ without Python - weights, tensors, tokenizers, models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ember 0.1.0");
  auto& commands = ember::cli::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& command : commands) command.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << "\n";
    std::cerr << "run with --help for usage\n";
    return 1;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
