#include "ember/core/storage.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ember/base/error.hpp"

namespace ember {

std::shared_ptr<Storage> Storage::allocate_uninitialized(size_t bytes) {
  std::shared_ptr<Storage> s(new Storage());
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded > 0) {
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) throw std::bad_alloc();
    s->data_ = static_cast<std::byte*>(p);
  }
  s->size_ = bytes;
  s->owned_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes) {
  std::shared_ptr<Storage> s = allocate_uninitialized(bytes);
  if (bytes > 0) std::memset(s->data_, 0, bytes);
  return s;
}

std::shared_ptr<Storage> Storage::borrow(const std::byte* data, size_t bytes,
                                         std::shared_ptr<const void> keepalive,
                                         const PageReleaser* pages) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = const_cast<std::byte*>(data);  // never written through: mutable_data() refuses
  s->size_ = bytes;
  s->owned_ = false;
  s->keepalive_ = std::move(keepalive);
  s->pages_ = pages;
  return s;
}

void Storage::release_pages() const {
  release_pages(0, size_);
}

void Storage::release_pages(size_t offset, size_t bytes) const {
  if (pages_ == nullptr || offset >= size_) return;
  pages_->release_pages(data_ + offset, std::min(bytes, size_ - offset));
}

Storage::~Storage() {
  if (owned_) std::free(data_);
}

std::byte* Storage::mutable_data() {
  if (!owned_) throw Error("storage is borrowed (read-only); copy the tensor before writing");
  return data_;
}

}  // namespace ember
