#pragma once
// Runs the real `ember` binary for the CLI tests and captures stdout, stderr and the exit status.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/refuse_threads.hpp"

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

struct RunOptions {
  std::string stdin_text;
  // Shell text run before ember on the same command line: VAR=value assignments, `env -u VAR`,
  // or commands such as `ulimit -f 1;`.
  std::string prefix;
  // A file that replaces the captured stdout (e.g. /dev/full).
  std::string stdout_to;
  // Runs ember where the kernel refuses every new thread, as a pids limit would; the result's
  // status is kNoThreadFilter where this system cannot install that filter.
  bool refuse_threads = false;
};

inline constexpr int kNoThreadFilter = 77;

// `ember ARGS` (ARGS is shell text: quote paths with shell_quote).
inline RunResult run_ember(const std::string& args, const RunOptions& options) {
  const auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_test_output";
  std::filesystem::create_directories(dir);
  // CTest runs each test in its own process, several at once: names must be unique per run.
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const auto in = dir / ("stdin." + tag);
  const auto out = dir / ("stdout." + tag);
  const auto err = dir / ("stderr." + tag);
  std::ofstream(in, std::ios::binary) << options.stdin_text;
  const std::string bin = (std::filesystem::path(EMBER_BINARY_DIR) / "bin" / "ember").string();
  const std::string stdout_path = options.stdout_to.empty() ? out.string() : options.stdout_to;
  // `timeout` turns a hang into a failure instead of a stuck test run.
  const std::string command = options.prefix + " timeout 120 " + shell_quote(bin) + " " + args +
                              " <" + shell_quote(in.string()) + " >" + shell_quote(stdout_path) +
                              " 2>" + shell_quote(err.string());
  int raw = -1;
  if (options.refuse_threads) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (!ember::testing::refuse_new_threads()) ::_exit(kNoThreadFilter);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::waitpid(pid, &raw, 0);
  } else {
    raw = std::system(command.c_str());
  }
  RunResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  for (const auto& p : {in, out, err}) std::filesystem::remove(p);
  return r;
}

// `ember ARGS` with `stdin_text` on standard input.
inline RunResult run_ember(const std::string& args, const std::string& stdin_text = "") {
  RunOptions options;
  options.stdin_text = stdin_text;
  return run_ember(args, options);
}

}  // namespace ember::test
