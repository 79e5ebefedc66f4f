#include "ember/core/storage.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ember/base/error.hpp"

namespace ember {

namespace {
// Buffers from this size on are mapped from the kernel and unmapped when freed. glibc would
// serve them from its heap after the first such free (its mmap threshold rises to the largest
// block freed), where a freed block stays resident: a model's per-prompt scratch (16 MiB for a
// 1B Llama's 512-row MLP) then stayed in the process beside the next prompt's, 15 MiB of peak
// RSS (docs/benchmarks-llm.md). Mapping, faulting in and unmapping 16 MiB took 8 ms on a 2-vCPU
// VM, small beside the work that fills such a buffer (that MLP: half a second on one core).
constexpr size_t kMapBytes = size_t{16} << 20;
}  // namespace

std::shared_ptr<Storage> Storage::allocate_uninitialized(size_t bytes) {
  std::shared_ptr<Storage> s(new Storage());
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (bytes >= kMapBytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    s->data_ = static_cast<std::byte*>(p);
  } else if (rounded > 0) {
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
  // Fresh anonymous mappings read as zeros already.
  if (bytes > 0 && bytes < kMapBytes) std::memset(s->data_, 0, bytes);
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
  if (!owned_) return;
  if (size_ >= kMapBytes) {
    ::munmap(data_, size_);
  } else {
    std::free(data_);
  }
}

std::byte* Storage::mutable_data() {
  if (!owned_) throw Error("storage is borrowed (read-only); copy the tensor before writing");
  return data_;
}

}  // namespace ember
