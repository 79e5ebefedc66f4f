#pragma once
// Runs the real `ember` binary for the CLI tests and captures stdout, stderr and the exit status.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ember::test {

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `ember ARGS` with `stdin_text` on standard input.
inline RunResult run_ember(const std::string& args, const std::string& stdin_text = "") {
  const auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_test_output";
  std::filesystem::create_directories(dir);
  // CTest runs each test in its own process, several at once: names must be unique per run.
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const auto in = dir / ("stdin." + tag);
  const auto out = dir / ("stdout." + tag);
  const auto err = dir / ("stderr." + tag);
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string bin = (std::filesystem::path(EMBER_BINARY_DIR) / "bin" / "ember").string();
  // `timeout` turns a hang into a failure instead of a stuck test run.
  const std::string command = "timeout 120 " + shell_quote(bin) + " " + args + " <" +
                              shell_quote(in.string()) + " >" + shell_quote(out.string()) + " 2>" +
                              shell_quote(err.string());
  const int raw = std::system(command.c_str());
  RunResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  for (const auto& p : {in, out, err}) std::filesystem::remove(p);
  return r;
}

}  // namespace ember::test
