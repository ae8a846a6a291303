#include "tests/support/basp_probe.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace bgagent::testing {

namespace {

constexpr size_t enough = 32; // one BASP header: stop reading there
constexpr int timeout_seconds = 10;

void put_be(std::string& out, uint64_t x, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out += static_cast<char>((x >> (8 * i)) & 0xff);
}

uint64_t get_be(const std::string& in, size_t at, int bytes) {
  uint64_t x = 0;
  for (int i = 0; i < bytes; ++i)
    x = (x << 8) | static_cast<unsigned char>(in[at + static_cast<size_t>(i)]);
  return x;
}

// A connected TCP socket to 127.0.0.1:port with timeouts, or -1.
int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  timeval tv{timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};

void note_failure(tls_outcome& out, SSL* ssl, int ret) {
  auto kind = SSL_get_error(ssl, ret);
  auto e = ERR_peek_last_error();
  if (e != 0) {
    out.failure_reason = ERR_GET_REASON(e);
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out.failure = buf;
  } else if (kind == SSL_ERROR_ZERO_RETURN) {
    out.failure = "closed by the server (close_notify)";
  } else if (kind == SSL_ERROR_SYSCALL) {
    out.failure = errno == EAGAIN || errno == EWOULDBLOCK
                    ? "timed out"
                    : std::string("connection ended: ") +
                        (errno ? std::strerror(errno) : "EOF");
  } else {
    out.failure = "SSL error " + std::to_string(kind);
  }
  if (kind == SSL_ERROR_SYSCALL &&
      (errno == EAGAIN || errno == EWOULDBLOCK))
    out.timed_out = true;
  else
    out.closed = true;
  ERR_clear_error();
}

} // namespace

std::string basp_header(uint8_t operation, uint8_t flags, uint32_t payload_len,
                        uint64_t operation_data, uint64_t source_actor,
                        uint64_t dest_actor) {
  std::string h;
  put_be(h, operation, 1);
  put_be(h, 0, 2); // padding
  put_be(h, flags, 1);
  put_be(h, payload_len, 4);
  put_be(h, operation_data, 8);
  put_be(h, source_actor, 8);
  put_be(h, dest_actor, 8);
  return h;
}

bool starts_with_basp_server_handshake(const std::string& bytes) {
  return bytes.size() >= 32 && bytes[0] == 0 && get_be(bytes, 8, 8) == 3;
}

plain_outcome plain_exchange(int port, const std::string& bytes) {
  plain_outcome out;
  int fd = connect_loopback(port);
  if (fd < 0)
    return out;
  out.connected = true;
  // A failed send is no failure here: the server may already have hung
  // up, and what it sent before is still readable.
  if (!bytes.empty())
    (void)send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  char buf[4096];
  while (out.received.size() < enough) {
    auto n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.received.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      out.closed = true;
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.timed_out = true;
      break;
    } else {
      out.closed = true;
      out.reset = errno == ECONNRESET;
      break;
    }
  }
  close(fd);
  return out;
}

tls_outcome tls_exchange(int port, const std::string& ca,
                         const std::string& cert, const std::string& key) {
  tls_outcome out;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx{SSL_CTX_new(TLS_client_method())};
  if (!ctx ||
      SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
    throw std::runtime_error("cannot load " + ca);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) !=
         1))
    throw std::runtime_error("cannot load " + cert + " / " + key);
  int fd = connect_loopback(port);
  if (fd < 0)
    return out;
  out.tcp_connected = true;
  std::unique_ptr<SSL, ssl_ctx_free> ssl{SSL_new(ctx.get())};
  SSL_set_fd(ssl.get(), fd);
  auto ret = SSL_connect(ssl.get());
  if (ret != 1) {
    note_failure(out, ssl.get(), ret);
    close(fd);
    return out;
  }
  out.handshake_done = true;
  out.protocol = SSL_get_version(ssl.get());
  char buf[4096];
  while (out.application_data.size() < enough) {
    auto n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) {
      note_failure(out, ssl.get(), n);
      break;
    }
    out.application_data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

struct tls_stream::impl {
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx;
  std::unique_ptr<SSL, ssl_ctx_free> ssl;
  int fd = -1;
};

tls_stream::tls_stream(int port, const std::string& ca,
                       const std::string& cert, const std::string& key)
  : impl_(std::make_unique<impl>()) {
  ERR_clear_error();
  impl_->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!impl_->ctx ||
      SSL_CTX_load_verify_locations(impl_->ctx.get(), ca.c_str(), nullptr) !=
        1 ||
      SSL_CTX_use_certificate_chain_file(impl_->ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(impl_->ctx.get(), key.c_str(),
                                  SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("cannot load " + ca + ", " + cert + ", " + key);
  SSL_CTX_set_verify(impl_->ctx.get(), SSL_VERIFY_PEER, nullptr);
  impl_->fd = connect_loopback(port);
  if (impl_->fd < 0)
    throw std::runtime_error("cannot connect to 127.0.0.1:" +
                             std::to_string(port));
  impl_->ssl.reset(SSL_new(impl_->ctx.get()));
  SSL_set_fd(impl_->ssl.get(), impl_->fd);
  if (SSL_connect(impl_->ssl.get()) != 1)
    throw std::runtime_error("TLS handshake with 127.0.0.1:" +
                             std::to_string(port) + " failed");
}

tls_stream::~tls_stream() {
  impl_->ssl.reset();
  if (impl_->fd >= 0)
    close(impl_->fd);
}

bool tls_stream::write(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = SSL_write(impl_->ssl.get(), bytes.data() + done,
                       static_cast<int>(bytes.size() - done));
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool tls_stream::read_exact(size_t n, std::string& out) {
  out.clear();
  char buf[4096];
  while (out.size() < n) {
    auto want = std::min(sizeof(buf), n - out.size());
    auto got = SSL_read(impl_->ssl.get(), buf, static_cast<int>(want));
    if (got <= 0) {
      ERR_clear_error();
      return false;
    }
    out.append(buf, static_cast<size_t>(got));
  }
  return true;
}

std::optional<basp_frame> tls_stream::read_frame(int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(impl_->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string h;
  if (!read_exact(32, h))
    return std::nullopt;
  basp_frame f;
  f.operation = static_cast<uint8_t>(h[0]);
  f.flags = static_cast<uint8_t>(h[3]);
  auto len = get_be(h, 4, 4);
  f.operation_data = get_be(h, 8, 8);
  f.source_actor = get_be(h, 16, 8);
  f.dest_actor = get_be(h, 24, 8);
  if (len > 0 && !read_exact(len, f.payload))
    return std::nullopt;
  return f;
}

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

} // namespace bgagent::testing
