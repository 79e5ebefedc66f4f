#pragma once
// Internal: validation of every name that becomes part of a URL or a path in the cache. A name
// that fails is an ember::Error naming what it was meant to be; one that passes cannot leave the
// folder it is joined to.
#include <string>
#include <string_view>

namespace ember::hub::detail {

// "org/name" or "name": 1-96 bytes, segments of [A-Za-z0-9._-] that neither start nor end with
// '-' or '.', no "--" or ".." (huggingface_hub's rule; "--" separates the parts of a cache
// folder name).
void check_repo_id(std::string_view repo_id);
// A branch, tag or commit: 1-256 bytes of [A-Za-z0-9._/-] with no empty, "." or ".." segment.
void check_revision(std::string_view revision);
// A relative POSIX path inside a repo: 1-1024 bytes, segments of 1-255 bytes, no "." or ".."
// segment, no leading '/', no '\\', no control characters. `source` says where the name came
// from, for the message ("repo 'org/name'", "'modules.json'").
void check_filename(std::string_view filename, std::string_view source);
bool is_commit_hash(std::string_view text);  // 40 lowercase hex digits
bool is_sha256_hex(std::string_view text);   // 64 lowercase hex digits

// The ETag as huggingface_hub stores it: without a weak "W/" prefix and the quotes. Throws unless
// it is a safe file name: 1-128 bytes of [A-Za-z0-9_-] (so never "." or "..").
std::string normalize_etag(std::string_view etag, std::string_view what);

// "models--org--name".
std::string repo_folder_name(std::string_view repo_id);
// Percent-encodes everything except RFC 3986 unreserved characters, and '/' when keep_slashes.
std::string url_encode(std::string_view text, bool keep_slashes);

}  // namespace ember::hub::detail
