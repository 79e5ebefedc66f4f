#include "ember/core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "ember/base/error.hpp"

namespace ember {
namespace {

std::string quoted(const std::filesystem::path& path) {
  std::string out = path.string();
  out.insert(out.begin(), '\'');
  out.push_back('\'');
  return out;
}

// The process umask, read without changing it (umask(2) can only read it by setting it, which
// would race with files other threads create meanwhile). Linux reports it in /proc since 4.7.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "Umask:") {
      std::string octal;
      status >> octal;
      return static_cast<mode_t>(std::strtoul(octal.c_str(), nullptr, 8));
    }
    status.ignore(4096, '\n');
  }
  return 022;
}

// A symbolic link is replaced by nothing: the file it names is the one rewritten.
std::filesystem::path resolve_target(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::canonical(path, ec);
  if (ec) throw Error("cannot write " + quoted(path) + ": the symbolic link cannot be resolved");
  return resolved;
}

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& target) : target_(resolve_target(target)) {
  mode_t mode = 0666 & ~current_umask();
  struct stat st {};
  if (::stat(target_.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      throw Error("cannot write " + quoted(target) + ": it exists and is not a regular file");
    }
    // Root may write anywhere; a file without write permission is still meant to be kept.
    if ((st.st_mode & 0222) == 0 || ::access(target_.c_str(), W_OK) != 0) {
      throw Error("cannot write " + quoted(target) + ": the file is read-only");
    }
    mode = st.st_mode & 07777;
  } else if (errno != ENOENT) {
    throw Error("cannot write " + quoted(target) + ": " + std::strerror(errno));
  }
  const std::filesystem::path dir =
      target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  // Hidden, next to the target (rename needs the same file system), unique by mkstemp.
  std::string name = (dir / ".").string() + target_.filename().string() + ".XXXXXX";
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) {
    throw Error("cannot write " + quoted(target) + ": cannot create a temporary file in " +
                quoted(dir) + ": " + std::strerror(errno));
  }
  temp_ = name;
  if (::fchmod(fd_, mode) != 0) fail("cannot set the permissions of " + quoted(temp_));
}

AtomicFile::~AtomicFile() {
  discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

void AtomicFile::fail(const std::string& what) {
  const std::string why = std::strerror(errno);
  discard();
  throw Error(what + ": " + why);
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) throw Error("cannot write " + quoted(target_) + ": the file is already closed");
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      fail("cannot write " + quoted(target_));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicFile::write(std::string_view bytes) {
  write(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error("cannot write " + quoted(target_) + ": the file is already closed");
  if (::fsync(fd_) != 0) fail("cannot write " + quoted(target_) + " (fsync)");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot write " + quoted(target_) + " (close)");
  // The target may have been replaced by something else since the constructor looked at it.
  struct stat st {};
  if (::lstat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    errno = EEXIST;
    fail("cannot write " + quoted(target_) + ": it is no longer a regular file");
  }
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    fail("cannot replace " + quoted(target_));
  }
  temp_.clear();
  // Makes the rename itself durable. The new file is in place whatever this returns, so a
  // failure here is not reported as a failed write.
  const std::filesystem::path dir =
      target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then refused as not regular.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open " + quoted(path) + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw Error("cannot read " + quoted(path) + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw Error(quoted(path) + " is not a regular file");
  const auto too_large = [&] {
    return Error(quoted(path) + " is larger than the limit of " + std::to_string(max_bytes) +
                 " bytes");
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) throw too_large();
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t have = 0;
  while (true) {
    // One byte of room past the expected end tells a file that grew from one that did not.
    if (have == bytes.size()) {
      if (have >= max_bytes + 1) throw too_large();
      bytes.resize(std::min<uint64_t>(max_bytes + 1, have + 65536));
    }
    const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read " + quoted(path) + ": " + std::strerror(errno));
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  if (have > max_bytes) throw too_large();
  bytes.resize(have);
  return bytes;
}

}  // namespace ember
