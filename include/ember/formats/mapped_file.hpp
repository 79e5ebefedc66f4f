#pragma once
// A read-only memory mapping of a whole file, shared by the weight-file readers (safetensors,
// GGUF, PyTorch). Tensors that view the mapping hold a shared_ptr to it, so the mapping lives as
// long as any view does, and name it as their PageReleaser (ember/core/storage.hpp).
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>

#include "ember/core/storage.hpp"

namespace ember {

class MappedFile final : public PageReleaser {
 public:
  // Maps `path` read-only (MAP_PRIVATE). Throws ember::Error naming the path if the file cannot
  // be opened or mapped. An empty file gives an empty span.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&&) = delete;
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Kernel hints (madvise) for the byte range [offset, offset + length), clamped to the file:
  // `advise_sequential` before one front-to-back pass, `advise_willneed` to start read-ahead.
  // Failures are ignored: these are hints.
  void advise_sequential(size_t offset, size_t length) const;
  void advise_willneed(size_t offset, size_t length) const;
  // Maps the range's pages in one system call (MADV_POPULATE_READ, Linux 5.14+) instead of one
  // page fault per page on first touch. Returns false where unsupported; the pages then fault in
  // as usual.
  bool populate_read(size_t offset, size_t length) const;
  // Drops the whole pages inside [data, data + bytes) (a range of this mapping) from the
  // process's resident set (MADV_DONTNEED): the mapping is private and never written, so a later
  // read faults them in again from the page cache with the file's bytes. Pages shared with the
  // bytes around the range stay.
  void release_pages(const std::byte* data, size_t bytes) const override;

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace ember
