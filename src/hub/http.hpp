#pragma once
// Internal: the few HTTP requests the hub client makes, over libcurl. Only http:// and https://
// are allowed, also for redirects; the Authorization header goes to the endpoint's host only
// (libcurl drops custom Authorization headers when a redirect changes host).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/hub/hub.hpp"

namespace ember::hub::detail {

// The server could not be reached or the transfer broke off (as opposed to an HTTP error
// status): hub_model falls back to the cache on this one.
class ConnectionError : public Error {
 public:
  using Error::Error;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the last response; names in lower case
  std::string body;
};

// HEAD without following redirects.
HttpResponse http_head(const std::string& url, const HubOptions& options);
// GET following redirects; a body longer than max_body_bytes is an error.
HttpResponse http_get(const std::string& url, const HubOptions& options, size_t max_body_bytes);

// GET following redirects, appending the body to the open file `fd`, which holds `offset` bytes
// already (then a "Range: bytes={offset}-" request). A 200 answer restarts the file from byte 0;
// a 206 must start at `offset`. More than `total_size` bytes in all is an error. Returns the
// final response (status and headers, no body): any status other than 200/206 writes nothing.
HttpResponse http_download(const std::string& url, const HubOptions& options, int fd,
                           uint64_t offset, uint64_t total_size, std::string_view label);

}  // namespace ember::hub::detail
