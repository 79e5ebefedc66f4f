#pragma once
// A stand-in for the Hugging Face Hub on 127.0.0.1 (an ephemeral port), serving the repos under
// tests/fixtures/hub with the headers the Hub sends:
//   GET  /api/models/{repo}/revision/{rev}   {"sha": commit, "siblings": [{"rfilename"}...]}
//   HEAD/GET /{repo}/resolve/{rev}/{file}     plain git file: 200, ETag = git blob sha1
//                                             LFS file: 302 to /cdn/{sha256} (the Hub's CDN hop)
//                                             with X-Linked-Etag = sha256 and X-Linked-Size
//   GET  /cdn/{sha256}                        the bytes, with Range support (206)
// Every request is logged; knobs make it misbehave in the ways the client must survive.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ember::test {

inline std::filesystem::path hub_fixture_dir() {
  return std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "hub";
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct FixtureFile {
  std::string bytes;
  bool lfs = false;
  std::string sha256;
  std::string git_sha1;
};

struct LoggedRequest {
  std::string method;
  std::string path;
  std::string range;          // the Range header, if any
  std::string authorization;  // the Authorization header, if any
};

class FixtureHub {
 public:
  // Repos "ember-test/tiny-st" and "ember-test/tiny-sharded" at these commits, answering for
  // revisions "main", "v1.0" and the commit itself. "ember-test/gated" is tiny-st behind a token.
  static constexpr const char* kTinyStCommit = "1111111111111111111111111111111111111111";
  static constexpr const char* kShardedCommit = "2222222222222222222222222222222222222222";
  static constexpr const char* kToken = "hf_test_token";

  // Misbehaviour, set before the requests it should affect.
  struct Knobs {
    std::map<std::string, std::string> announced_sha256;  // file -> X-Linked-Etag to send
    std::map<std::string, int64_t> size_offset;           // LFS file -> added to X-Linked-Size
    std::vector<std::string> extra_siblings;              // names added to the listing
    std::string listing_body;                             // replaces the listing when set
    bool ignore_range = false;                            // answer Range requests with 200
    size_t cut_after = 0;  // when set, the CDN drops the connection after this many bytes
  };

  FixtureHub() {
    const auto manifest = nlohmann::json::parse(read_bytes(hub_fixture_dir() / "manifest.json"));
    for (const auto& [repo, files] : manifest.items()) {
      for (const auto& [name, info] : files.items()) {
        FixtureFile file;
        file.bytes = read_bytes(hub_fixture_dir() / repo / name);
        file.lfs = info.at("lfs").get<bool>();
        file.sha256 = info.at("sha256").get<std::string>();
        file.git_sha1 = info.at("git_sha1").get<std::string>();
        repos_["ember-test/" + repo][name] = file;
      }
    }
    repos_["ember-test/gated"] = repos_["ember-test/tiny-st"];
    commits_ = {{"ember-test/tiny-st", kTinyStCommit},
                {"ember-test/gated", kTinyStCommit},
                {"ember-test/tiny-sharded", kShardedCommit}};

    // Logged before the answer goes out, so the log is complete when the client returns.
    server_.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response&) {
      std::lock_guard lock(mutex_);
      log_.push_back({request.method, request.path, request.get_header_value("Range"),
                      request.get_header_value("Authorization")});
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { listing(q, r); });
    server_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { resolve(q, r); });
    server_.Get(R"(/cdn/([0-9a-f]{64}))",
                [this](const httplib::Request& q, httplib::Response& r) { cdn(q, r); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs, so the destructor could not end it before.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~FixtureHub() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Knobs& knobs() { return knobs_; }
  const FixtureFile& file(const std::string& repo, const std::string& name) const {
    return repos_.at(repo).at(name);
  }

  std::vector<LoggedRequest> log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }
  void clear_log() {
    std::lock_guard lock(mutex_);
    log_.clear();
  }
  // Requests whose path starts with `prefix` (any method when `method` is empty).
  size_t count(const std::string& method, const std::string& prefix) const {
    size_t n = 0;
    for (const auto& r : log()) {
      if ((method.empty() || r.method == method) && r.path.starts_with(prefix)) ++n;
    }
    return n;
  }

 private:
  // The commit `revision` names in `repo`, or "" (after answering 404) when there is none.
  std::string commit_for(const std::string& repo, const std::string& revision,
                         httplib::Response& response) const {
    const auto it = commits_.find(repo);
    if (it == commits_.end()) {
      response.status = 404;
      response.set_header("X-Error-Code", "RepoNotFound");
      return "";
    }
    if (revision != "main" && revision != "v1.0" && revision != it->second) {
      response.status = 404;
      response.set_header("X-Error-Code", "RevisionNotFound");
      return "";
    }
    return it->second;
  }

  bool authorized(const std::string& repo, const httplib::Request& request,
                  httplib::Response& response) const {
    if (repo != "ember-test/gated") return true;
    const std::string auth = request.get_header_value("Authorization");
    if (auth == std::string("Bearer ") + kToken) return true;
    response.status = auth.empty() ? 401 : 403;
    response.set_header("X-Error-Code", "GatedRepo");
    return false;
  }

  void listing(const httplib::Request& request, httplib::Response& response) {
    const std::string repo = request.matches[1];
    const std::string commit = commit_for(repo, request.matches[2], response);
    if (commit.empty() || !authorized(repo, request, response)) return;
    nlohmann::json body = {{"id", repo}, {"sha", commit}, {"siblings", nlohmann::json::array()}};
    for (const auto& [name, file] : repos_.at(repo))
      body["siblings"].push_back({{"rfilename", name}});
    for (const auto& name : knobs_.extra_siblings)
      body["siblings"].push_back({{"rfilename", name}});
    response.set_content(knobs_.listing_body.empty() ? body.dump() : knobs_.listing_body,
                         "application/json");
  }

  void resolve(const httplib::Request& request, httplib::Response& response) {
    const std::string repo = request.matches[1];
    const std::string name = request.matches[3];
    const std::string commit = commit_for(repo, request.matches[2], response);
    if (commit.empty() || !authorized(repo, request, response)) return;
    const auto found = repos_.at(repo).find(name);
    if (found == repos_.at(repo).end()) {
      response.status = 404;
      response.set_header("X-Error-Code", "EntryNotFound");
      response.set_header("X-Error-Message", "Entry not found");
      return;
    }
    const FixtureFile& file = found->second;
    response.set_header("X-Repo-Commit", commit);
    if (file.lfs) {
      const auto offset = knobs_.size_offset.find(name);
      const int64_t size = static_cast<int64_t>(file.bytes.size()) +
                           (offset == knobs_.size_offset.end() ? 0 : offset->second);
      const auto sha = knobs_.announced_sha256.find(name);
      response.set_header(
          "X-Linked-Etag",
          "\"" + (sha == knobs_.announced_sha256.end() ? file.sha256 : sha->second) + "\"");
      response.set_header("X-Linked-Size", std::to_string(size));
      response.set_header("ETag", "\"" + file.git_sha1 + "\"");
      response.set_redirect(endpoint() + "/cdn/" + file.sha256, 302);
      return;
    }
    response.set_header("ETag", "\"" + file.git_sha1 + "\"");
    response.set_content(file.bytes, "application/octet-stream");
  }

  void cdn(const httplib::Request& request, httplib::Response& response) {
    for (const auto& [repo, files] : repos_) {
      for (const auto& [name, file] : files) {
        if (file.sha256 != request.matches[1]) continue;
        if (knobs_.cut_after > 0) {
          const std::string* bytes = &file.bytes;
          const size_t cut = knobs_.cut_after;
          response.set_content_provider(
              bytes->size(), "application/octet-stream",
              [bytes, cut](size_t offset, size_t, httplib::DataSink& sink) {
                if (offset >= cut) return false;  // aborts the connection mid-body
                sink.write(bytes->data() + offset, cut - offset);
                return true;
              });
          return;
        }
        if (knobs_.ignore_range) {
          // httplib slices every fixed-length body by the Range header; a chunked one it cannot.
          response.status = 200;
          const std::string* bytes = &file.bytes;
          response.set_chunked_content_provider(
              "application/octet-stream", [bytes](size_t offset, httplib::DataSink& sink) {
                if (offset < bytes->size()) {
                  sink.write(bytes->data() + offset, bytes->size() - offset);
                } else {
                  sink.done();
                }
                return true;
              });
          return;
        }
        response.set_content(file.bytes, "application/octet-stream");  // httplib applies Range
        return;
      }
    }
    response.status = 404;
  }

  std::map<std::string, std::map<std::string, FixtureFile>> repos_;
  std::map<std::string, std::string> commits_;
  Knobs knobs_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<LoggedRequest> log_;
};

}  // namespace ember::test
