#pragma once
// Internal: a strict, bounded reader of the zip archives torch.save writes (since PyTorch 1.6).
// Only what such archives use is accepted: one disk, stored (uncompressed) entries, no
// encryption, optional ZIP64 records. Every entry's bytes are a span of the archive, so tensors
// can view the mapping directly.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ember::formats_detail {

struct ZipEntry {
  std::string name;
  uint64_t header_offset = 0;  // local file header
  uint64_t data_offset = 0;    // first byte of the stored data
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

// Reads the central directory of `archive` and checks every entry against its local header.
// Refuses (ember::Error prefixed with `source`) compressed or encrypted entries, multi-disk
// archives, entries outside the archive or overlapping one another or the central directory,
// duplicate names, and counts or sizes the archive cannot hold. Entries are in directory order.
std::vector<ZipEntry> read_zip_directory(std::span<const std::byte> archive,
                                         const std::string& source);

// The CRC-32 (ISO-HDLC, as zip uses) of `bytes`.
uint32_t crc32(std::span<const std::byte> bytes);

}  // namespace ember::formats_detail
