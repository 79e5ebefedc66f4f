#pragma once
// Runs the built `ember` binary with arguments and standard input, capturing both outputs.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ember::test {

struct CliResult {
  int status = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline CliResult run_ember(const std::string& args, const std::string& stdin_text = "") {
  const auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs";
  std::filesystem::create_directories(dir);
  // CTest runs tests as separate processes, several at once: names are unique per process.
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const auto in = dir / ("stdin." + tag), out = dir / ("stdout." + tag),
             err = dir / ("stderr." + tag);
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string bin = (std::filesystem::path(EMBER_BINARY_DIR) / "bin" / "ember").string();
  // `timeout` turns a hang into a failure instead of a stuck run.
  const std::string command = "timeout 120 " + shell_quote(bin) + " " + args + " <" +
                              shell_quote(in.string()) + " >" + shell_quote(out.string()) + " 2>" +
                              shell_quote(err.string());
  const int raw = std::system(command.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  const auto slurp = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace ember::test
