// Runs the real `ember download` against the loopback FixtureHub.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fixture_hub.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::FixtureHub;
using test::read_bytes;

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class DownloadCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(EMBER_BINARY_DIR) / "download_cli_test" /
           (std::to_string(::getpid()) + "." + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult run(const std::string& args, const std::string& extra_env = "") {
    const std::string bin = (fs::path(EMBER_BINARY_DIR) / "bin" / "ember").string();
    const fs::path out = dir_ / "stdout";
    const fs::path err = dir_ / "stderr";
    // `timeout` turns a hang into a failure instead of a stuck test run.
    const std::string command =
        "env -u HF_TOKEN -u HF_HUB_OFFLINE HF_ENDPOINT=" + shell_quote(hub_.endpoint()) +
        " HF_HUB_CACHE=" + shell_quote((dir_ / "cache").string()) +
        " HF_HOME=" + shell_quote((dir_ / "hf-home").string()) + " " + extra_env + " timeout 60 " +
        shell_quote(bin) + " download " + args + " >" + shell_quote(out.string()) + " 2>" +
        shell_quote(err.string());
    const int raw = std::system(command.c_str());
    RunResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = read_bytes(out);
    r.err = read_bytes(err);
    return r;
  }

  fs::path snapshot() const {
    return dir_ / "cache" / "models--ember-test--tiny-st" / "snapshots" / FixtureHub::kTinyStCommit;
  }

  FixtureHub hub_;
  fs::path dir_;
};

TEST_F(DownloadCliTest, PrintsTheSnapshotFolderOfAModel) {
  const RunResult r = run("ember-test/tiny-st");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, snapshot().string() + "\n");
  EXPECT_EQ(read_bytes(snapshot() / "2_Dense" / "model.safetensors"),
            hub_.file("ember-test/tiny-st", "2_Dense/model.safetensors").bytes);
  EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal
}

TEST_F(DownloadCliTest, PrintsOnePathPerFile) {
  const RunResult r = run("ember-test/tiny-st config.json 1_Pooling/config.json --revision v1.0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, (snapshot() / "config.json").string() + "\n" +
                       (snapshot() / "1_Pooling" / "config.json").string() + "\n");
  EXPECT_EQ(hub_.count("HEAD", "/ember-test/tiny-st/resolve/v1.0/"), 2u);
}

TEST_F(DownloadCliTest, FailuresPrintOneErrorLineAndNothingOnStdout) {
  RunResult r = run("ember-test/tiny-st config.json missing.json");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: hub: HTTP 404", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("'missing.json'"), std::string::npos) << r.err;

  r = run("ember-test/tiny-sharded", "HF_HUB_OFFLINE=1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE"), std::string::npos) << r.err;
  EXPECT_EQ(hub_.count("", "/api/models/ember-test/tiny-sharded"), 0u);
}

}  // namespace
}  // namespace ember
