// What an attacker on the network can send to a head's cluster port, and
// what it gets back: raw bytes over plain TCP (BASP headers crafted by
// hand), and TLS clients with or without a certificate, made with the
// OpenSSL library in the test process. Everything talks to 127.0.0.1 only.
//
// BASP (CAF 0.17.6, caf/io/basp/header.hpp): a 32-byte header in network
// byte order: operation (uint8: 0 server_handshake, 1 client_handshake, 2
// direct_message, ...), two padding bytes, flags (uint8), payload_len
// (uint32), operation_data (uint64; the BASP version in handshakes),
// source_actor (uint64), dest_actor (uint64). A server sends its
// server_handshake as soon as a client connects.
//
// Every socket has a 10 s send/receive timeout so a silent server makes a
// test fail (timed_out), never hang.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace bgagent::testing {

// The 32 bytes of a BASP header.
std::string basp_header(uint8_t operation, uint8_t flags, uint32_t payload_len,
                        uint64_t operation_data, uint64_t source_actor,
                        uint64_t dest_actor);

// True if `bytes` start with a BASP server_handshake header of CAF 0.17's
// BASP version (3).
bool starts_with_basp_server_handshake(const std::string& bytes);

// What a server did after we connected and sent something.
struct plain_outcome {
  bool connected = false;
  std::string received; // everything the server sent until it closed
  bool closed = false;  // EOF or reset: the server hung up
  bool reset = false;   // by a TCP reset
  bool timed_out = false;
};

// Connects to 127.0.0.1:port over plain TCP, sends `bytes` and reads until
// the server closes the connection (or 10 s of silence).
plain_outcome plain_exchange(int port, const std::string& bytes);

// A TLS client: verifies the server against `ca` (so a refusal is the
// server's, not ours) and presents `cert`/`key` when they are not empty.
struct tls_outcome {
  bool tcp_connected = false;
  bool handshake_done = false;   // SSL_connect returned 1
  std::string application_data;  // what SSL_read returned before the end
  // OpenSSL's reason for the first failure (SSL_connect, else SSL_read), as
  // ERR_GET_REASON (e.g. SSL_R_TLSV1_ALERT_UNKNOWN_CA) and as text.
  int failure_reason = 0;
  std::string failure;
  bool closed = false;           // the connection ended (alert, EOF, reset)
  bool timed_out = false;
  std::string protocol;          // e.g. "TLSv1.3" once negotiated
};

tls_outcome tls_exchange(int port, const std::string& ca,
                         const std::string& cert = {},
                         const std::string& key = {});

// One BASP frame as read off the wire.
struct basp_frame {
  uint8_t operation = 0;
  uint8_t flags = 0;
  uint64_t operation_data = 0;
  uint64_t source_actor = 0;
  uint64_t dest_actor = 0;
  std::string payload;
};

// A TLS connection that stays open: a certified peer talking BASP by hand,
// frame by frame. The constructor throws std::runtime_error if the TCP
// connection or the TLS handshake fails.
class tls_stream {
public:
  tls_stream(int port, const std::string& ca, const std::string& cert,
             const std::string& key);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  bool write(const std::string& bytes);

  // The next frame, or nullopt once the server closed the connection or
  // was silent for `timeout_ms`.
  std::optional<basp_frame> read_frame(int timeout_ms);

private:
  bool read_exact(size_t n, std::string& out);
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The resident set size of process `pid` in KiB (VmRSS), -1 if unknown.
long rss_kib(int pid);

} // namespace bgagent::testing
