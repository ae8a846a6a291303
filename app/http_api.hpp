// `bgagent serve`'s HTTP API (DESIGN.md section 11), on cpp-httplib, from
// a bounded pool of its own threads.
//
// Contract: GET / (the dashboard page), /dashboard.js and /dashboard.css
// are static and need no token; every other path answers only with
// `Authorization: Bearer TOKEN`
// (compared in constant time, before any body is read); a missing or wrong
// token is 401 and audited (`api_refused`, at most 10 lines a minute, the
// rest counted in the next). One request per connection; no compressed
// bodies (415); the control paths take at most 64 KiB with a
// Content-Length.
// Errors are JSON `{"error": {"message", and "line" or "field" where one
// is at fault}}`: 400 bad request, 401, 404 no such task or path, 409 a
// conflict, 413 a body over BG_AGENT_HTTP_MAX_BODY.
//   POST /v1/tasks                 a JSON object, a JSON array or JSON Lines,
//                                  read and stored as `submit` reads a task
//                                  file (all or nothing; ?on_conflict=error|
//                                  skip|replace) -> 202 {"submitted",
//                                  "duplicates", "ids"}
//   GET  /v1/tasks/{id}            one `results --json` record
//   GET  /v1/tasks?state=S&after=ID&limit=N&order=oldest|newest
//                                  JSON Lines in submit order (or newest
//                                  first), at most N
//                                  (default 100, at most 1,000); a full page
//                                  names the next one in `X-Next-After`
//   GET  /v1/tasks/{id}/events     the task's audit lines (JSON Lines)
//   GET  /v1/status                the `status --json` object
//   POST /v1/control/{pause,resume,drain}, POST /v1/control/budget
//        {"tokens", "cost"} (either), POST /v1/tasks/{id}/{requeue,cancel}
//                                  200 JSON; each audited `admin_command`
//   GET  /metrics                  the Prometheus text
// Reads go through a read-only store connection of the request's own
// thread, so a client never queues work on the engine's store thread;
// changes go to the engine's actors by message, with a timeout. A client
// cannot stall the engine: bodies are bounded, reads and writes time out
// (10 s), and at most `threads` requests are served at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

namespace bgagent {

struct head_handles;
class type_registry;

struct http_api_settings {
  std::string host = "127.0.0.1";
  uint16_t port = 8420;
  std::string token;   // the Bearer token
  std::string db_path; // read through its own read-only connections
  uint64_t max_body = 32ull << 20;
  uint64_t max_input_bytes = 1 << 20; // per task, as for task files
  int threads = 4;
};

class http_api {
public:
  // Binds the port or throws usage_error naming the address; serves from
  // then on until destroyed.
  http_api(caf::actor_system& sys, const head_handles& handles,
           const type_registry& types, http_api_settings settings);
  ~http_api();
  http_api(const http_api&) = delete;
  http_api& operator=(const http_api&) = delete;

private:
  struct impl;
  std::unique_ptr<impl> d_;
};

} // namespace bgagent
