#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace ember {

// The owner of borrowed bytes that are a read-only file mapping (formats' MappedFile): it can
// hand their pages back to the kernel, which reads them again from the file on the next touch.
class PageReleaser {
 public:
  // A hint for the whole pages inside [data, data + bytes); failures are ignored.
  virtual void release_pages(const std::byte* data, size_t bytes) const = 0;

 protected:
  PageReleaser() = default;
  PageReleaser(const PageReleaser&) = default;
  PageReleaser& operator=(const PageReleaser&) = default;
  ~PageReleaser() = default;
};

// A contiguous byte range that tensors view. Either owns an aligned heap buffer or borrows
// bytes (e.g. from a memory-mapped file) while holding `keepalive`, so a tensor that views a
// mapping keeps the mapping alive.
class Storage {
 public:
  static constexpr size_t kAlignment = 64;

  // Owned, zero-initialized, 64-byte aligned.
  static std::shared_ptr<Storage> allocate(size_t bytes);
  // Owned, 64-byte aligned, contents unspecified: for buffers that are written in full before
  // they are read (saves a pass over memory on every op output).
  static std::shared_ptr<Storage> allocate_uninitialized(size_t bytes);
  // Borrowed: `data` must stay valid while `keepalive` is held. `pages` (optional, kept alive
  // by `keepalive`) is set when the bytes are a read-only file mapping.
  static std::shared_ptr<Storage> borrow(const std::byte* data, size_t bytes,
                                         std::shared_ptr<const void> keepalive,
                                         const PageReleaser* pages = nullptr);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  const std::byte* data() const { return data_; }
  // Borrowed storage is read-only; asking for mutable bytes of it throws ember::Error.
  std::byte* mutable_data();
  size_t size() const { return size_; }
  bool owned() const { return owned_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Tells the owner of a file mapping that these bytes' pages need not stay resident (e.g. once
  // a weight is packed into a copy that serves every later read): they leave the process's RSS
  // and fault back in from the page cache if read again. A no-op for owned memory and for
  // borrowed memory that is not a file mapping, whose pages cannot be re-read.
  void release_pages() const;
  // The same for bytes [offset, offset + bytes) of this storage (clamped to it).
  void release_pages(size_t offset, size_t bytes) const;

 private:
  Storage() = default;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool owned_ = false;
  std::shared_ptr<const void> keepalive_;
  const PageReleaser* pages_ = nullptr;
};

}  // namespace ember
