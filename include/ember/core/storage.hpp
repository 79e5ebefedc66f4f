#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace ember {

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
  // Borrowed: `data` must stay valid while `keepalive` is held.
  static std::shared_ptr<Storage> borrow(const std::byte* data, size_t bytes,
                                         std::shared_ptr<const void> keepalive);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  const std::byte* data() const { return data_; }
  // Borrowed storage is read-only; asking for mutable bytes of it throws ember::Error.
  std::byte* mutable_data();
  size_t size() const { return size_; }
  bool owned() const { return owned_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  Storage() = default;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool owned_ = false;
  std::shared_ptr<const void> keepalive_;
};

}  // namespace ember
