// A scriptable HTTP/1.1 server on 127.0.0.1 for what aimock cannot send:
// a 503 with Retry-After, retry-after-ms, an empty or truncated body, a
// response without usage, an error echoing the Authorization header.
//
// Contract: each request (headers + Content-Length body) is passed to the
// handler, whose raw bytes are written back as they are; the connection is
// kept open for the next request unless the handler asks to close it. One
// thread per connection; the destructor stops accepting, closes every
// connection and joins the threads. connections() counts accepted ones.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bgagent::testing {

struct raw_request {
  std::string head; // request line and headers
  std::string body;
};

struct raw_reply {
  std::string bytes;
  bool close = false;
  int delay_ms = 0; // wait before writing
};

class raw_http_server {
public:
  using handler = std::function<raw_reply(const raw_request&)>;
  explicit raw_http_server(handler h);
  ~raw_http_server();

  int port() const { return port_; }
  std::string base_url() const; // http://127.0.0.1:PORT/v1
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

  // A complete response with Content-Length.
  static std::string response(int status, const std::string& body,
                              const std::vector<std::string>& headers = {});
  // A chat completions body answering `content`, with usage unless
  // prompt_tokens < 0.
  static std::string completion(const std::string& content,
                                int prompt_tokens = 10,
                                int completion_tokens = 5);

private:
  void serve(int fd);
  handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mtx_;
  std::vector<std::thread> workers_;
  std::vector<int> fds_;
};

} // namespace bgagent::testing
