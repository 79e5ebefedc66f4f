#pragma once
// Internal: huggingface_hub's cache layout for one repo (see hub.hpp) and the file operations on
// it. Every name passed in has been validated by names.hpp.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ember::hub::detail {

struct RepoCache {
  std::filesystem::path cache_dir;  // the hub cache
  std::filesystem::path root;       // cache_dir / "models--org--name"

  // The commit `revision` stands for: itself when it is a commit hash, else refs/{revision}
  // (nullopt when there is none). A ref file holding anything but a commit hash is an error.
  std::optional<std::string> commit_of(std::string_view revision) const;
  // Marks cache_dir as a cache (https://bford.info/cachedir/) so that backup tools skip it, as
  // huggingface_hub does; keeps an existing tag.
  void tag_as_cache() const;
  // Writes refs/{revision} = commit, atomically; nothing for a commit-hash revision.
  void set_ref(std::string_view revision, std::string_view commit) const;

  std::filesystem::path snapshot_dir(std::string_view commit) const;
  std::filesystem::path snapshot_file(std::string_view commit, std::string_view filename) const;
  std::filesystem::path blob(std::string_view etag) const;
  std::filesystem::path lock_file(std::string_view etag) const;
  // Points snapshots/{commit}/{filename} at blobs/{etag} with a relative symlink, replacing
  // whatever was there.
  std::filesystem::path link(std::string_view commit, std::string_view filename,
                             std::string_view etag) const;
};

// An exclusive flock() on a lock file (huggingface_hub's filelock takes the same lock), held
// until destruction.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Lowercase hex sha256 of a file's contents.
std::string sha256_file(const std::filesystem::path& path);
// A whole small file; longer than max_bytes is an error naming `what`.
std::string read_small_file(const std::filesystem::path& path, size_t max_bytes,
                            std::string_view what);
// The same without trailing whitespace (ref and token files, which may or may not end in '\n').
std::string read_trimmed_file(const std::filesystem::path& path, size_t max_bytes,
                              std::string_view what);

}  // namespace ember::hub::detail
