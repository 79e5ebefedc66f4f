#include "cache.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "ember/base/error.hpp"
#include "names.hpp"

namespace ember::hub::detail {

namespace fs = std::filesystem;

std::optional<std::string> RepoCache::commit_of(std::string_view revision) const {
  if (is_commit_hash(revision)) return std::string(revision);
  const fs::path ref = root / "refs" / std::string(revision);
  std::error_code ec;
  if (!fs::is_regular_file(ref, ec)) return std::nullopt;
  std::string text = read_trimmed_file(ref, 256, "ref file");
  if (!is_commit_hash(text)) {
    throw Error("hub: ref file " + ref.string() + " does not hold a commit hash");
  }
  return text;
}

void RepoCache::tag_as_cache() const {
  const fs::path tag = cache_dir / "CACHEDIR.TAG";
  std::error_code ec;
  if (fs::exists(tag, ec)) return;
  fs::create_directories(cache_dir);
  std::ofstream(tag, std::ios::binary)
      << "Signature: 8a477f597d28d172789f06886806bc55\n"
         "# The Hugging Face hub cache (written here by Ember). Backup tools may skip it.\n"
         "# See https://bford.info/cachedir/\n";
}

void RepoCache::set_ref(std::string_view revision, std::string_view commit) const {
  if (revision == commit) return;
  const fs::path ref = root / "refs" / std::string(revision);
  fs::create_directories(ref.parent_path());
  const fs::path temporary = ref.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << commit;
    if (!out.flush()) throw Error("hub: cannot write " + temporary.string());
  }
  fs::rename(temporary, ref);
}

fs::path RepoCache::snapshot_dir(std::string_view commit) const {
  return root / "snapshots" / std::string(commit);
}

fs::path RepoCache::snapshot_file(std::string_view commit, std::string_view filename) const {
  return snapshot_dir(commit) / std::string(filename);
}

fs::path RepoCache::blob(std::string_view etag) const {
  return root / "blobs" / std::string(etag);
}

fs::path RepoCache::lock_file(std::string_view etag) const {
  return cache_dir / ".locks" / root.filename() / (std::string(etag) + ".lock");
}

fs::path RepoCache::link(std::string_view commit, std::string_view filename,
                         std::string_view etag) const {
  fs::path path = snapshot_file(commit, filename);
  fs::create_directories(path.parent_path());
  // From snapshots/{commit}/{a/b/name} back to the repo folder: one "../" per segment, plus one.
  std::string target;
  for (size_t i = 0, n = std::count(filename.begin(), filename.end(), '/') + 2; i < n; ++i) {
    target += "../";
  }
  target += "blobs/" + std::string(etag);
  const fs::path temporary = path.string() + ".link." + std::to_string(::getpid());
  std::error_code ignored;
  fs::remove(temporary, ignored);
  fs::create_symlink(target, temporary);
  fs::rename(temporary, path);
  return path;
}

FileLock::FileLock(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error("hub: cannot open lock file " + path.string() + ": " + std::strerror(errno));
  }
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int error = errno;
      ::close(fd_);
      throw Error("hub: cannot lock " + path.string() + ": " + std::strerror(error));
    }
  }
}

FileLock::~FileLock() {
  ::close(fd_);
}  // closing releases the lock

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("hub: cannot read " + path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("hub: OpenSSL cannot start a sha256");
  }
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) {
      EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(in.gcount()));
    }
  }
  if (in.bad()) throw Error("hub: reading " + path.string() + " failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

std::string read_small_file(const fs::path& path, size_t max_bytes, std::string_view what) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error("hub: cannot read " + std::string(what) + " " + path.string());
  if (size > max_bytes) {
    throw Error("hub: " + std::string(what) + " " + path.string() + " is larger than " +
                std::to_string(max_bytes) + " bytes");
  }
  std::string text(static_cast<size_t>(size), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) {
    throw Error("hub: reading " + std::string(what) + " " + path.string() + " failed");
  }
  return text;
}

std::string read_trimmed_file(const fs::path& path, size_t max_bytes, std::string_view what) {
  std::string text = read_small_file(path, max_bytes, what);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

}  // namespace ember::hub::detail
