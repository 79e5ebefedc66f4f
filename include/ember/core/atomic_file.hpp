#pragma once
// Whole-file output that never leaves a half-written or clobbered file behind, and bounded
// whole-file input that never blocks on a FIFO or grows without limit.
//
// AtomicFile writes into a unique temporary file (mkstemp) in the target's directory, checks
// every write, fsyncs it and renames it over the target only in commit(). Until then, and on any
// failure, the target keeps its old contents and the temporary file is removed. Every file
// Ember writes goes through it.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace ember {

class AtomicFile {
 public:
  // Refuses (ember::Error naming the path) a target that exists but is not a regular file
  // (directory, device, FIFO, socket), a read-only target, and a target whose directory does
  // not exist or is not writable. A symbolic link is followed: the file it names is replaced.
  explicit AtomicFile(const std::filesystem::path& target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Without commit(): removes the temporary file; the target is untouched.
  ~AtomicFile();

  // Throws ember::Error on a failed or short write (a full disk, a file size limit).
  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes);
  // fsync, close, rename over the target, fsync the directory. Throws ember::Error on failure,
  // leaving the target as it was.
  void commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  void discard() noexcept;
  [[noreturn]] void fail(const std::string& what);

  std::filesystem::path target_;  // symbolic links resolved
  std::filesystem::path temp_;
  int fd_ = -1;
};

// Writes `bytes` to `path` through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

// Reads a whole regular file into memory. Throws ember::Error naming the path if it cannot be
// opened, is not a regular file (a FIFO is refused without waiting for a writer; /dev/zero is
// refused), or holds more than `max_bytes` bytes (also if it grows past that while being read).
std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes);

}  // namespace ember
