#include "ember/formats/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "ember/base/error.hpp"

namespace ember {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// madvise needs a page-aligned start; widen the range down to the page boundary.
bool advise_range(const std::byte* base, size_t size, size_t offset, size_t length, int advice) {
  if (base == nullptr || offset >= size) return true;
  length = std::min(length, size - offset);
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::byte* start = base + offset;
  // Step back by pointer arithmetic (base is page-aligned, so this stays in the mapping) rather
  // than casting an aligned integer back to a pointer.
  const auto below = static_cast<size_t>(reinterpret_cast<uintptr_t>(start) % page);
  // madvise takes a non-const pointer but does not write through it.
  return ::madvise(const_cast<std::byte*>(start - below), length + below, advice) == 0;
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then refused as not regular.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open '" + path.string() + "': " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error("cannot stat '" + path.string() + "': " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("'" + path.string() + "' is not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string why = errno_text();
      ::close(fd);
      throw Error("cannot map '" + path.string() + "': " + why);
    }
    file->data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps its own reference to the file
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::advise_sequential(size_t offset, size_t length) const {
  (void)advise_range(data_, size_, offset, length, MADV_SEQUENTIAL);
}

void MappedFile::advise_willneed(size_t offset, size_t length) const {
  (void)advise_range(data_, size_, offset, length, MADV_WILLNEED);
}

bool MappedFile::populate_read(size_t offset, size_t length) const {
  return advise_range(data_, size_, offset, length, MADV_POPULATE_READ);
}

void MappedFile::release_pages(const std::byte* data, size_t bytes) const {
  if (data_ == nullptr || data < data_ || data >= data_ + size_) return;
  const auto offset = static_cast<size_t>(data - data_);
  bytes = std::min(bytes, size_ - offset);
  // Inward to whole pages (data_ is page-aligned, so offsets from it align as addresses do).
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t first = (offset + page - 1) / page * page;
  const size_t last = (offset + bytes) / page * page;
  if (first < last) (void)advise_range(data_, size_, first, last - first, MADV_DONTNEED);
}

}  // namespace ember
