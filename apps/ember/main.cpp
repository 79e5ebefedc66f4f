#include <algorithm>
#include <csignal>
#include <exception>
#include <iostream>

#include "command.hpp"
#include "output.hpp"

namespace ember::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace ember::cli

namespace {

// CLI11 answers a mistyped verb with "A subcommand is required"; name the word instead.
std::string unknown_verb(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return {};
  std::string verbs;
  for (const auto& command : ember::cli::command_registry()) {
    if (command.name == argv[1]) return {};
    verbs += (verbs.empty() ? "" : ", ") + command.name;
  }
  return std::string("unknown command '") + argv[1] + "' (commands: " + verbs + ")";
}

int fail(const std::string& message) {
  // The complete lines printed before the failure stay; a failing stdout adds nothing.
  try {
    ember::cli::out().flush();
  } catch (const std::exception&) {
  }
  std::cerr << "error: " << message << "\n";
  return 1;
}

int run(int argc, char** argv) {
  // A closed pipe on stdout is a write error (EPIPE) reported like any other, not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
  // std::cin gets its own buffer, which also lets it tell whether input is waiting (in_avail).
  std::ios::sync_with_stdio(false);
  CLI::App app{
      "ember: machine learning in C++ without Python - weights, tensors, tokenizers, models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ember 0.1.0");
  auto& commands = ember::cli::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& command : commands) command.setup(app);
  if (const std::string unknown = unknown_verb(argc, argv); !unknown.empty()) {
    std::cerr << "error: " << unknown << "\n";
    std::cerr << "run with --help for usage\n";
    return 1;
  }
  try {
    app.parse(argc, argv);
    ember::cli::out().flush();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << "\n";
    std::cerr << "run with --help for usage\n";
    return 1;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // What run() does not handle itself (an allocation failure, say) ends with an error, not with
  // std::terminate.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "error: unknown exception\n";
  }
  return 1;
}
