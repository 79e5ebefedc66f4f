// Runs the real `ember download` against the loopback FixtureHub.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "../cli_runner.hpp"
#include "fixture_hub.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::FixtureHub;
using test::read_bytes;
using test::RunResult;
using test::shell_quote;

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

  // `ember download ARGS` against the fixture hub, in this test's own cache.
  RunResult run(const std::string& args, const std::string& extra_env = "") {
    test::RunOptions options;
    options.prefix =
        "env -u HF_TOKEN -u HF_HUB_OFFLINE HF_ENDPOINT=" + shell_quote(hub_.endpoint()) +
        " HF_HUB_CACHE=" + shell_quote((dir_ / "cache").string()) +
        " HF_HOME=" + shell_quote((dir_ / "hf-home").string()) + " " + extra_env;
    return test::run_ember("download " + args, options);
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
