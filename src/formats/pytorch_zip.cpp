// Strict zip central-directory reader for torch.save archives (see pytorch_zip.hpp).
//
// Layout (APPNOTE.TXT 6.3): entries (local header + data), the central directory, optionally a
// ZIP64 end-of-central-directory record and its locator, then the end-of-central-directory
// record with an archive comment. Sizes and offsets are taken from the central directory (the
// local header may defer them to a data descriptor); the local header must agree on the name.
#include "pytorch_zip.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "ember/base/error.hpp"
#include "strict_json.hpp"

namespace ember::formats_detail {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr size_t kLocalHeaderBytes = 30;
constexpr size_t kCentralHeaderBytes = 46;
constexpr size_t kEndBytes = 22;
constexpr size_t kZip64EndBytes = 56;
constexpr size_t kZip64LocatorBytes = 20;
constexpr size_t kMaxCommentBytes = 0xffff;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagStrongEncryption = 0x0040;
constexpr uint16_t kMethodStored = 0;

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw Error("pytorch: " + source + ": zip: " + message);
}

uint64_t read_le(std::span<const std::byte> bytes, size_t at, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

struct EndRecord {
  uint64_t entries = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
  uint64_t directory_end_limit = 0;  // where the central directory must end
};

// The end-of-central-directory record is the last one whose comment runs exactly to the end of
// the archive.
size_t find_end_record(std::span<const std::byte> archive, const std::string& source) {
  if (archive.size() < kEndBytes) fail(source, "archive too short for an end record");
  const size_t lowest =
      archive.size() - kEndBytes - std::min(archive.size() - kEndBytes, kMaxCommentBytes);
  for (size_t at = archive.size() - kEndBytes + 1; at-- > lowest;) {
    if (read_le(archive, at, 4) != kEndSig) continue;
    if (at + kEndBytes + read_le(archive, at + 20, 2) == archive.size()) return at;
  }
  fail(source, "no end of central directory record (not a zip archive)");
}

EndRecord read_end_records(std::span<const std::byte> archive, const std::string& source) {
  const size_t end = find_end_record(archive, source);
  if (read_le(archive, end + 4, 2) != 0 || read_le(archive, end + 6, 2) != 0) {
    fail(source, "multi-disk archives are not supported");
  }
  EndRecord r;
  const uint64_t entries_here = read_le(archive, end + 8, 2);
  r.entries = read_le(archive, end + 10, 2);
  r.directory_size = read_le(archive, end + 12, 4);
  r.directory_offset = read_le(archive, end + 16, 4);
  r.directory_end_limit = end;
  if (entries_here != r.entries) fail(source, "end record: entry counts disagree");

  const bool has_locator = end >= kZip64LocatorBytes &&
                           read_le(archive, end - kZip64LocatorBytes, 4) == kZip64LocatorSig;
  const bool saturated =
      r.entries == 0xffff || r.directory_size == 0xffffffff || r.directory_offset == 0xffffffff;
  if (!has_locator) {
    if (saturated) fail(source, "end record needs ZIP64 values but there is no ZIP64 locator");
    return r;
  }
  const size_t locator = end - kZip64LocatorBytes;
  if (read_le(archive, locator + 4, 4) != 0 || read_le(archive, locator + 16, 4) > 1) {
    fail(source, "ZIP64 locator: multi-disk archives are not supported");
  }
  const uint64_t record = read_le(archive, locator + 8, 8);
  if (record > locator || locator - record < kZip64EndBytes) {
    fail(source,
         "ZIP64 locator: end record offset " + std::to_string(record) + " is outside the archive");
  }
  if (read_le(archive, record, 4) != kZip64EndSig) fail(source, "ZIP64 end record: bad signature");
  const uint64_t record_size = read_le(archive, record + 4, 8);
  if (record_size < kZip64EndBytes - 12 || record_size != locator - record - 12) {
    fail(source, "ZIP64 end record: size field does not reach the locator");
  }
  if (read_le(archive, record + 16, 4) != 0 || read_le(archive, record + 20, 4) != 0) {
    fail(source, "ZIP64 end record: multi-disk archives are not supported");
  }
  const uint64_t entries64_here = read_le(archive, record + 24, 8);
  const uint64_t entries64 = read_le(archive, record + 32, 8);
  if (entries64_here != entries64) fail(source, "ZIP64 end record: entry counts disagree");
  // The 32-bit fields either agree with the 64-bit ones or are saturated.
  const auto agree = [](uint64_t narrow, uint64_t wide, uint64_t saturated_value) {
    return narrow == saturated_value || narrow == wide;
  };
  const uint64_t size64 = read_le(archive, record + 40, 8);
  const uint64_t offset64 = read_le(archive, record + 48, 8);
  if (!agree(r.entries, entries64, 0xffff) || !agree(r.directory_size, size64, 0xffffffff) ||
      !agree(r.directory_offset, offset64, 0xffffffff)) {
    fail(source, "ZIP64 end record disagrees with the end record");
  }
  r.entries = entries64;
  r.directory_size = size64;
  r.directory_offset = offset64;
  r.directory_end_limit = record;
  return r;
}

// Fills the values a central header saturated from its ZIP64 extra field (APPNOTE 4.5.3): the
// 8-byte values follow in a fixed order, present only for the saturated fields.
void apply_zip64_extra(std::span<const std::byte> extra, uint64_t& size, uint64_t& compressed,
                       uint64_t& offset, const std::string& source, const std::string& name) {
  const bool need_size = size == 0xffffffff;
  const bool need_compressed = compressed == 0xffffffff;
  const bool need_offset = offset == 0xffffffff;
  size_t at = 0;
  bool found = false;
  while (at + 4 <= extra.size()) {
    const uint64_t id = read_le(extra, at, 2);
    const uint64_t length = read_le(extra, at + 2, 2);
    if (at + 4 + length > extra.size()) {
      fail(source, "entry " + quote_name(name) + ": extra field runs past its header");
    }
    if (id == kZip64ExtraId) {
      if (found) fail(source, "entry " + quote_name(name) + ": two ZIP64 extra fields");
      found = true;
      const std::span<const std::byte> field = extra.subspan(at + 4, length);
      size_t next = 0;
      for (auto [needed, value] :
           {std::pair{need_size, &size}, std::pair{need_compressed, &compressed},
            std::pair{need_offset, &offset}}) {
        if (!needed) continue;
        if (next + 8 > field.size()) {
          fail(source, "entry " + quote_name(name) + ": ZIP64 extra field is too short");
        }
        *value = read_le(field, next, 8);
        next += 8;
      }
    }
    at += 4 + length;
  }
  if (at != extra.size()) fail(source, "entry " + quote_name(name) + ": truncated extra field");
  if ((need_size || need_compressed || need_offset) && !found) {
    fail(source, "entry " + quote_name(name) + ": saturated sizes but no ZIP64 extra field");
  }
}

}  // namespace

std::vector<ZipEntry> read_zip_directory(std::span<const std::byte> archive,
                                         const std::string& source) {
  const EndRecord end = read_end_records(archive, source);
  if (end.directory_offset > end.directory_end_limit ||
      end.directory_size != end.directory_end_limit - end.directory_offset) {
    fail(source, "central directory (offset " + std::to_string(end.directory_offset) + ", " +
                     std::to_string(end.directory_size) +
                     " bytes) does not end where the end records begin");
  }
  if (end.entries > end.directory_size / kCentralHeaderBytes) {
    fail(source, "end record claims " + std::to_string(end.entries) +
                     " entries, more than the central directory can hold");
  }

  std::vector<ZipEntry> entries;
  entries.reserve(static_cast<size_t>(end.entries));
  std::unordered_set<std::string> names;
  const std::span<const std::byte> directory = archive.subspan(
      static_cast<size_t>(end.directory_offset), static_cast<size_t>(end.directory_size));
  size_t at = 0;
  for (uint64_t i = 0; i < end.entries; ++i) {
    if (directory.size() - at < kCentralHeaderBytes ||
        read_le(directory, at, 4) != kCentralHeaderSig) {
      fail(source, "central directory entry " + std::to_string(i) + ": bad or missing header");
    }
    const uint64_t flags = read_le(directory, at + 8, 2);
    const uint64_t method = read_le(directory, at + 10, 2);
    const auto crc = static_cast<uint32_t>(read_le(directory, at + 16, 4));
    uint64_t compressed = read_le(directory, at + 20, 4);
    uint64_t size = read_le(directory, at + 24, 4);
    const size_t name_length = read_le(directory, at + 28, 2);
    const size_t extra_length = read_le(directory, at + 30, 2);
    const size_t comment_length = read_le(directory, at + 32, 2);
    const uint64_t disk = read_le(directory, at + 34, 2);
    uint64_t header_offset = read_le(directory, at + 42, 4);
    const size_t variable = name_length + extra_length + comment_length;
    if (directory.size() - at - kCentralHeaderBytes < variable) {
      fail(source, "central directory entry " + std::to_string(i) + " runs past the directory");
    }
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(directory.data() + at + kCentralHeaderBytes),
                  name_length);
    apply_zip64_extra(directory.subspan(at + kCentralHeaderBytes + name_length, extra_length), size,
                      compressed, header_offset, source, e.name);
    at += kCentralHeaderBytes + variable;

    const std::string who = "entry " + quote_name(e.name) + ": ";
    if (disk != 0 && disk != 0xffff) fail(source, who + "on another disk");
    if ((flags & (kFlagEncrypted | kFlagStrongEncryption)) != 0) fail(source, who + "encrypted");
    if (method != kMethodStored) {
      fail(source, who + "compression method " + std::to_string(method) +
                       " (torch.save stores entries uncompressed)");
    }
    if (compressed != size) {
      fail(source, who + "stored entry with compressed size " + std::to_string(compressed) +
                       " != size " + std::to_string(size));
    }
    if (!names.insert(e.name).second) fail(source, "duplicate entry " + quote_name(e.name));

    if (header_offset > end.directory_offset ||
        end.directory_offset - header_offset < kLocalHeaderBytes ||
        read_le(archive, header_offset, 4) != kLocalHeaderSig) {
      fail(source, who + "no local header at offset " + std::to_string(header_offset));
    }
    const size_t local_name_length = read_le(archive, header_offset + 26, 2);
    const size_t local_extra_length = read_le(archive, header_offset + 28, 2);
    const uint64_t data_offset =
        header_offset + kLocalHeaderBytes + local_name_length + local_extra_length;
    if (data_offset > end.directory_offset || end.directory_offset - data_offset < size) {
      fail(source, who + std::to_string(size) + " bytes at offset " + std::to_string(data_offset) +
                       " run past the entries into the central directory or the end of the file");
    }
    if (local_name_length != name_length ||
        std::memcmp(archive.data() + header_offset + kLocalHeaderBytes, e.name.data(),
                    name_length) != 0) {
      fail(source, who + "local header names a different entry");
    }
    if (read_le(archive, header_offset + 8, 2) != method) {
      fail(source, who + "local header disagrees on the compression method");
    }
    e.header_offset = header_offset;
    e.data_offset = data_offset;
    e.size = size;
    e.crc32 = crc;
    entries.push_back(std::move(e));
  }
  if (at != directory.size()) fail(source, "central directory has trailing bytes");

  // No two entries may share bytes: each entry's local header and data end before the next
  // entry's local header.
  std::vector<const ZipEntry*> by_offset;
  by_offset.reserve(entries.size());
  for (const ZipEntry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const ZipEntry* a, const ZipEntry* b) {
    return a->header_offset < b->header_offset;
  });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const ZipEntry& prev = *by_offset[k - 1];
    const ZipEntry& next = *by_offset[k];
    if (prev.data_offset + prev.size > next.header_offset) {
      fail(source,
           "entries " + quote_name(prev.name) + " and " + quote_name(next.name) + " overlap");
    }
  }
  return entries;
}

uint32_t crc32(std::span<const std::byte> bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (const std::byte b : bytes) c = table[(c ^ static_cast<uint8_t>(b)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

}  // namespace ember::formats_detail
