#include "tests/support/raw_http_server.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace bgagent::testing {

raw_http_server::raw_http_server(handler h) : handler_(std::move(h)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(listen_fd_, 1024) != 0)
    throw std::runtime_error("raw_http_server: bind/listen failed");
  socklen_t len = sizeof(a);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0)
        continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      ++connections_;
      std::lock_guard<std::mutex> lock(mtx_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  });
}

raw_http_server::~raw_http_server() {
  stopping_ = true;
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mtx_);
    for (int fd : fds_)
      shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_)
    t.join();
  for (int fd : fds_)
    close(fd);
  close(listen_fd_);
}

std::string raw_http_server::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

void raw_http_server::serve(int fd) {
  std::string buf;
  char chunk[8192];
  while (!stopping_) {
    // Read one request: headers, then Content-Length bytes of body.
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        if (stopping_)
          return;
        continue;
      }
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0)
        return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    raw_request req;
    req.head = buf.substr(0, head_end);
    size_t length = 0;
    std::string lower = req.head;
    for (auto& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto at = lower.find("content-length:"); at != std::string::npos)
      length = std::stoul(lower.substr(at + 15));
    while (buf.size() < head_end + 4 + length) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0)
        return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    req.body = buf.substr(head_end + 4, length);
    buf.erase(0, head_end + 4 + length);
    ++requests_;
    auto reply = handler_(req);
    if (reply.delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    size_t off = 0;
    while (off < reply.bytes.size()) {
      ssize_t n = send(fd, reply.bytes.data() + off, reply.bytes.size() - off,
                     MSG_NOSIGNAL);
      if (n <= 0)
        return;
      off += static_cast<size_t>(n);
    }
    if (reply.close) {
      shutdown(fd, SHUT_RDWR);
      return;
    }
  }
}

std::string raw_http_server::response(int status, const std::string& body,
                                      const std::vector<std::string>& headers) {
  std::string s = "HTTP/1.1 " + std::to_string(status) + " X\r\n";
  s += "Content-Type: application/json\r\n";
  s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (auto& h : headers)
    s += h + "\r\n";
  s += "\r\n" + body;
  return s;
}

std::string raw_http_server::completion(const std::string& content,
                                        int prompt_tokens,
                                        int completion_tokens) {
  nlohmann::json j{
    {"id", "chatcmpl-raw"},
    {"object", "chat.completion"},
    {"choices",
     {{{"index", 0},
       {"message", {{"role", "assistant"}, {"content", content}}},
       {"finish_reason", "stop"}}}}};
  if (prompt_tokens >= 0)
    j["usage"] = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}};
  return j.dump();
}

} // namespace bgagent::testing
