#include "http.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "names.hpp"

namespace ember::hub::detail {
namespace {

constexpr long kMaxRedirects = 10;

CURL* new_handle() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error("hub: libcurl failed to initialise");
    }
  });
  CURL* curl = curl_easy_init();
  if (!curl) throw Error("hub: libcurl could not create a request");
  return curl;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

// Keeps the headers of the latest response only: a status line starts a new set, so after
// redirects the map describes the final answer.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& headers = *static_cast<std::map<std::string, std::string>*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    headers.clear();
  } else if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    headers[to_lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
  }
  return size * count;
}

// One easy handle with the settings every request shares.
class Request {
 public:
  Request(const std::string& url, const HubOptions& options) : curl_(new_handle()) {
    error_[0] = '\0';
    CURL* c = curl_.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, kMaxRedirects);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ember/0.1.0");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &response_.headers);
    if (!options.token.empty()) add_header("Authorization: Bearer " + options.token);
  }

  void add_header(const std::string& line) {
    curl_slist* list = curl_slist_append(headers_.get(), line.c_str());
    if (!list) throw Error("hub: out of memory building a request");
    if (!headers_) headers_.reset(list);  // later appends return the same head
    curl_easy_setopt(curl_.get(), CURLOPT_HTTPHEADER, headers_.get());
  }

  CURL* handle() { return curl_.get(); }

  // Runs the transfer; a failure that `pending` explains (set by a callback) is rethrown as is.
  HttpResponse perform(const std::string& url) {
    const CURLcode code = curl_easy_perform(curl_.get());
    if (pending_) std::rethrow_exception(pending_);
    if (code != CURLE_OK) {
      throw ConnectionError("hub: request to " + url + " failed: " +
                            (error_[0] ? std::string(error_) : curl_easy_strerror(code)));
    }
    curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &response_.status);
    return std::move(response_);
  }

  HttpResponse& response() { return response_; }
  void set_pending(std::exception_ptr e) { pending_ = std::move(e); }

 private:
  std::unique_ptr<CURL, CurlDeleter> curl_;
  std::unique_ptr<curl_slist, SlistDeleter> headers_;
  HttpResponse response_;
  std::exception_ptr pending_;
  char error_[CURL_ERROR_SIZE];
};

struct BodySink {
  Request* request;
  std::string_view url;
  size_t max_bytes;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& sink = *static_cast<BodySink*>(user);
  HttpResponse& response = sink.request->response();
  if (response.body.size() + size * count > sink.max_bytes) {
    sink.request->set_pending(std::make_exception_ptr(
        Error("hub: response from " + std::string(sink.url) + " is larger than " +
              std::to_string(sink.max_bytes) + " bytes")));
    return 0;  // aborts the transfer
  }
  response.body.append(data, size * count);
  return size * count;
}

// Where a download writes and how far it is; read by the write and progress callbacks.
struct DownloadSink {
  Request* request;
  int fd;
  uint64_t offset;      // bytes in the file before this transfer's body
  uint64_t total_size;  // the whole file
  std::string_view label;
  bool draw_progress;
  uint64_t written = 0;
  bool started = false;
  bool writing = false;  // the final response is a 200/206 whose body belongs in the file
  std::chrono::steady_clock::time_point last_draw{};
};

uint64_t parse_content_range_start(std::string_view value) {
  // "bytes {first}-{last}/{total}"
  if (!value.starts_with("bytes ")) return UINT64_MAX;
  value.remove_prefix(6);
  uint64_t first = 0;
  size_t i = 0;
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9' && i < 19; ++i) {
    first = first * 10 + static_cast<uint64_t>(value[i] - '0');
  }
  return i > 0 && i < value.size() && value[i] == '-' ? first : UINT64_MAX;
}

void start_body(DownloadSink& sink) {
  sink.started = true;
  long status = 0;
  curl_easy_getinfo(sink.request->handle(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 206) {
    const auto& headers = sink.request->response().headers;
    const auto range = headers.find("content-range");
    if (range == headers.end() || parse_content_range_start(range->second) != sink.offset) {
      throw Error("hub: server answered a resume request from byte " + std::to_string(sink.offset) +
                  " with a different range (" +
                  (range == headers.end() ? std::string("none") : quote_name(range->second)) + ")");
    }
    sink.writing = true;
  } else if (status == 200) {
    // The server ignored the Range request: start over.
    if (sink.offset > 0 && (::ftruncate(sink.fd, 0) != 0 || ::lseek(sink.fd, 0, SEEK_SET) != 0)) {
      throw Error(std::string("hub: cannot truncate a partial download: ") + std::strerror(errno));
    }
    sink.offset = 0;
    sink.writing = true;
  }
}

size_t on_download_body(char* data, size_t size, size_t count, void* user) {
  auto& sink = *static_cast<DownloadSink*>(user);
  const size_t n = size * count;
  try {
    if (!sink.started) start_body(sink);
    if (!sink.writing) return n;  // an error page: not part of the file
    if (sink.offset + sink.written + n > sink.total_size) {
      throw Error("hub: " + quote_name(sink.label) + ": server sent more than the announced " +
                  std::to_string(sink.total_size) + " bytes");
    }
    size_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(sink.fd, data + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        throw Error(std::string("hub: writing a download failed: ") + std::strerror(errno));
      done += static_cast<size_t>(w);
    }
    sink.written += n;
    return n;
  } catch (...) {
    sink.request->set_pending(std::current_exception());
    return 0;  // aborts the transfer
  }
}

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

void draw_progress(DownloadSink& sink, bool final) {
  const auto now = std::chrono::steady_clock::now();
  if (!final && now - sink.last_draw < std::chrono::milliseconds(100)) return;
  sink.last_draw = now;
  const uint64_t have = sink.offset + sink.written;
  const int percent =
      sink.total_size ? static_cast<int>(100.0 * static_cast<double>(have) / sink.total_size) : 100;
  constexpr int kBarWidth = 30;
  const int filled = percent * kBarWidth / 100;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kBarWidth, '.');
  std::fprintf(stderr, "\r%.40s [%s] %3d%% %s / %s%s", std::string(sink.label).c_str(), bar.c_str(),
               percent, megabytes(have).c_str(), megabytes(sink.total_size).c_str(),
               final ? "\n" : "");
  std::fflush(stderr);
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& sink = *static_cast<DownloadSink*>(user);
  if (sink.writing) draw_progress(sink, false);
  return 0;
}

}  // namespace

HttpResponse http_head(const std::string& url, const HubOptions& options) {
  Request request(url, options);
  CURL* c = request.handle();
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options.request_timeout.count()));
  return request.perform(url);
}

HttpResponse http_get(const std::string& url, const HubOptions& options, size_t max_body_bytes) {
  Request request(url, options);
  BodySink sink{&request, url, max_body_bytes};
  CURL* c = request.handle();
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options.request_timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  return request.perform(url);
}

HttpResponse http_download(const std::string& url, const HubOptions& options, int fd,
                           uint64_t offset, uint64_t total_size, std::string_view label) {
  Request request(url, options);
  DownloadSink sink{.request = &request,
                    .fd = fd,
                    .offset = offset,
                    .total_size = total_size,
                    .label = label,
                    .draw_progress = options.progress && ::isatty(STDERR_FILENO) == 1};
  CURL* c = request.handle();
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  if (offset > 0) request.add_header("Range: bytes=" + std::to_string(offset) + "-");
  // A large file has no overall deadline; a transfer that stalls does.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_download_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (sink.draw_progress) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &sink);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  HttpResponse response = request.perform(url);
  if (sink.draw_progress && sink.writing) draw_progress(sink, true);
  return response;
}

}  // namespace ember::hub::detail
