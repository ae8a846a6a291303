// An asynchronous HTTP client: libcurl's multi interface driven by threads
// of its own (epoll + curl_multi_socket_action; one per ~1,024
// connections), shared by every worker of the process through the
// provider that owns it.
//
// Contract:
// - submit() never blocks on the network: it queues the request, wakes the
//   client's thread and returns an id at once. The callback runs exactly
//   once, on one of the client's threads, with the response or the transport error
//   (a cancelled request gets `cancelled = true`). Callbacks must be quick
//   and must not throw (an actor send, a JSON parse).
// - cancel(id) abandons a request; its callback then runs with
//   `cancelled = true` (unless the response had already been delivered).
// - Connections are kept alive and reused; HTTP/2 is negotiated over TLS
//   when the server offers it (and multiplexed); TLS peers and host names
//   are verified. Each request carries its own total and connect timeouts.
// - A request is sent at most once: where libcurl would send it again by
//   itself (a reused connection that died before any byte of the answer,
//   an HTTP/2 stream the server refused), the request fails instead, with
//   request_sent and resend_refused set.
// - The destructor abandons requests still in flight without calling their
//   callbacks (the process is ending), then joins the thread.
// - Thread-safe: any thread may submit and cancel.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bgagent {

struct http_request {
  std::string url;
  std::vector<std::string> headers; // "Name: value"
  std::string body;                 // sent as a POST body
  double timeout_seconds = 300;
  double connect_timeout_seconds = 10;
};

struct http_response {
  bool complete = false; // a whole HTTP response arrived
  int status = 0;        // 0 when no status line arrived
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;
  std::string error;     // libcurl's description when !complete
  bool timed_out = false;
  bool cancelled = false;
  // The request was handed to a connection; when !complete, the server may
  // have processed it (a dropped connection, a timeout).
  bool request_sent = false;
  // libcurl was about to send the request again on a new connection, and
  // was not let (the connection it had died, or its server refused it).
  bool resend_refused = false;
  std::string http_version; // "1.1", "2", ...
};

struct http_client_settings {
  // Connections open at once across every host (CURLMOPT_MAX_TOTAL_
  // CONNECTIONS) and idle ones kept for reuse (CURLMOPT_MAXCONNECTS).
  long max_connections = 4096;
  long max_streams_per_connection = 100; // HTTP/2
  size_t max_response_bytes = 16u << 20;
  // A PEM bundle of trusted CAs instead of the system's (a private CA, or a
  // test's self-signed certificate); empty: the system's.
  std::string ca_file;
  std::string user_agent = "bgagent/1.0";
};

class http_client {
public:
  using callback = std::function<void(http_response)>;

  explicit http_client(http_client_settings s = {});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  uint64_t submit(http_request req, callback cb);
  void cancel(uint64_t id);

  // Requests submitted and not yet called back.
  size_t in_flight() const;
  // Turns of the client threads' event loops so far (for tests and
  // diagnostics): a client with nothing to do turns about once a second
  // per thread, when its wait times out, or sooner for libcurl's timers.
  uint64_t loop_turns() const;

private:
  struct shard;
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<uint64_t> next_id_{1};
};

} // namespace bgagent
