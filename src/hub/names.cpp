#include "names.hpp"

#include <algorithm>

#include "ember/base/error.hpp"

namespace ember::hub::detail {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool is_hex_of_length(std::string_view text, size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), is_lower_hex);
}

bool is_repo_id_segment(std::string_view segment) {
  if (segment.empty()) return false;
  for (char c : segment) {
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  auto is_edge = [](char c) { return c == '-' || c == '.'; };
  return !is_edge(segment.front()) && !is_edge(segment.back());
}

}  // namespace

void check_repo_id(std::string_view repo_id) {
  const size_t slash = repo_id.find('/');
  const bool ok =
      !repo_id.empty() && repo_id.size() <= 96 && repo_id.find("--") == std::string_view::npos &&
      repo_id.find("..") == std::string_view::npos &&
      (slash == std::string_view::npos ? is_repo_id_segment(repo_id)
                                       : is_repo_id_segment(repo_id.substr(0, slash)) &&
                                             is_repo_id_segment(repo_id.substr(slash + 1)));
  if (!ok) {
    throw Error("hub: invalid repo id " + quote_name(repo_id) +
                ": expected 'org/name' (letters, digits, '-', '_', '.'; at most 96 bytes; no "
                "'--' or '..'; no '-' or '.' at either end of a part)");
  }
}

void check_revision(std::string_view revision) {
  bool ok = !revision.empty() && revision.size() <= 256;
  size_t begin = 0;
  while (ok) {
    const size_t end = std::min(revision.find('/', begin), revision.size());
    const std::string_view segment = revision.substr(begin, end - begin);
    ok = !segment.empty() && segment != "." && segment != ".." &&
         std::all_of(segment.begin(), segment.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
    if (end == revision.size()) break;
    begin = end + 1;
  }
  if (!ok) {
    throw Error("hub: invalid revision " + quote_name(revision) +
                ": expected a branch, tag or commit hash (letters, digits, '-', '_', '.', '/')");
  }
}

void check_filename(std::string_view filename, std::string_view source) {
  auto fail = [&](const std::string& why) {
    throw Error("hub: refusing file name " + quote_name(filename) + " from " + std::string(source) +
                ": " + why);
  };
  if (filename.empty()) fail("empty");
  if (filename.size() > 1024) fail("longer than 1024 bytes");
  if (filename.front() == '/') fail("absolute path");
  for (char c : filename) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) fail("control character");
    if (c == '\\') fail("backslash");
  }
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(filename.find('/', begin), filename.size());
    const std::string_view segment = filename.substr(begin, end - begin);
    if (segment.empty()) fail("empty path segment");
    if (segment == "." || segment == "..") fail("'.' or '..' path segment");
    if (segment.size() > 255) fail("path segment longer than 255 bytes");
    if (end == filename.size()) break;
    begin = end + 1;
  }
}

bool is_commit_hash(std::string_view text) {
  return is_hex_of_length(text, 40);
}
bool is_sha256_hex(std::string_view text) {
  return is_hex_of_length(text, 64);
}

std::string normalize_etag(std::string_view etag, std::string_view what) {
  std::string_view text = etag;
  if (text.starts_with("W/")) text.remove_prefix(2);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  const bool ok = !text.empty() && text.size() <= 128 &&
                  std::all_of(text.begin(), text.end(),
                              [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
  if (!ok) {
    throw Error("hub: " + std::string(what) + ": unusable ETag " + quote_name(etag) +
                " (expected 1-128 letters, digits, '-' or '_')");
  }
  return std::string(text);
}

std::string repo_folder_name(std::string_view repo_id) {
  std::string name = "models--";
  for (char c : repo_id) {
    if (c == '/') {
      name += "--";
    } else {
      name.push_back(c);
    }
  }
  return name;
}

std::string url_encode(std::string_view text, bool keep_slashes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slashes && c == '/')) {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

}  // namespace ember::hub::detail
