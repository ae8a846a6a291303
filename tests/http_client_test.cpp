// The asynchronous libcurl client against a real local server.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "providers/http_client.hpp"
#include "tests/support/aimock.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

#include <unistd.h>

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// Collects callbacks from the client's thread.
struct inbox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<http_response> got;
  http_client::callback cb() {
    return [this](http_response r) {
      std::lock_guard<std::mutex> lock(m);
      got.push_back(std::move(r));
      cv.notify_all();
    };
  }
  bool wait_for(size_t n, double seconds) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, std::chrono::duration<double>(seconds),
                       [&] { return got.size() >= n; });
  }
};

http_request post(const std::string& url, double timeout = 30) {
  http_request r;
  r.url = url + "/chat/completions";
  r.headers = {"Content-Type: application/json"};
  r.body = R"({"hello": "world"})";
  r.timeout_seconds = timeout;
  r.connect_timeout_seconds = 5;
  return r;
}

} // namespace

TEST_CASE("sequential requests reuse one kept-alive connection",
          "[http_client]") {
  raw_http_server server([](const raw_request& req) {
    return raw_reply{raw_http_server::response(200, req.body,
                                               {"X-Echo: yes"})};
  });
  inbox box;
  http_client client;
  for (int i = 0; i < 20; ++i) {
    client.submit(post(server.base_url()), box.cb());
    REQUIRE(box.wait_for(static_cast<size_t>(i + 1), 30));
  }
  for (auto& r : box.got) {
    CHECK(r.complete);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"hello": "world"})");
    CHECK(r.headers["x-echo"] == "yes");
  }
  CHECK(server.connections() == 1);
  CHECK(client.in_flight() == 0);
}

TEST_CASE("connections their server closes, unannounced while idle or "
          "with Connection: close, are replaced, and the client's loop "
          "stays quiet",
          "[http_client]") {
  // The first answer is followed by the server closing the connection
  // unannounced: the idle connection's next event is that close. The
  // answers after say "Connection: close", so libcurl closes each
  // connection itself and the next request opens another, often on the
  // same descriptor number.
  std::atomic<int> seen{0};
  raw_http_server server([&](const raw_request& req) {
    if (++seen == 1)
      return raw_reply{raw_http_server::response(200, req.body), true};
    return raw_reply{
      raw_http_server::response(200, req.body, {"Connection: close"}), true};
  });
  inbox box;
  http_client client;
  client.submit(post(server.base_url(), 5), box.cb());
  REQUIRE(box.wait_for(1, 30));
  REQUIRE(box.got[0].complete);
  // The close wakes the loop at most once: an idle connection left in the
  // epoll set (level-triggered) would turn it thousands of times in this
  // wait; a few turns are libcurl's own timers.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto turns = client.loop_turns();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(client.loop_turns() - turns <= 10);
  // The next request finds its connection dead and opens another; each
  // after that gets a new one too, watched afresh (a 5 s timeout would
  // fail a request whose socket the loop missed).
  for (int i = 1; i < 20; ++i) {
    client.submit(post(server.base_url(), 5), box.cb());
    REQUIRE(box.wait_for(static_cast<size_t>(i + 1), 30));
  }
  for (auto& r : box.got) {
    CHECK(r.complete);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"hello": "world"})");
  }
  CHECK(server.connections() == 20);
  CHECK(server.requests() == 20);
  CHECK(client.in_flight() == 0);
  // Every closed connection left the epoll set: nothing but timers
  // wakes the loop.
  turns = client.loop_turns();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(client.loop_turns() - turns <= 10);
}

TEST_CASE("many requests are in flight at once on one client thread",
          "[http_client]") {
  std::atomic<int> inside{0}, peak{0};
  raw_http_server server([&](const raw_request&) {
    int now = ++inside;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    --inside;
    return raw_reply{raw_http_server::response(200, "{}")};
  });
  inbox box;
  http_client client;
  const int n = 200;
  for (int i = 0; i < n; ++i)
    client.submit(post(server.base_url()), box.cb());
  REQUIRE(box.wait_for(n, 60));
  for (auto& r : box.got)
    CHECK(r.status == 200);
  // Every request was being served at the same time.
  CHECK(peak.load() == n);
}

TEST_CASE("a slow server hits the per-request timeout", "[http_client]") {
  raw_http_server server([](const raw_request&) {
    return raw_reply{raw_http_server::response(200, "{}"), false, 3000};
  });
  inbox box;
  http_client client;
  client.submit(post(server.base_url(), 0.3), box.cb());
  REQUIRE(box.wait_for(1, 30));
  CHECK_FALSE(box.got[0].complete);
  CHECK(box.got[0].timed_out);
  CHECK(box.got[0].request_sent); // the server may be working on it
}

TEST_CASE("a refused connection is reported, not thrown", "[http_client]") {
  inbox box;
  http_client client;
  client.submit(post("http://127.0.0.1:" + std::to_string(free_port()) +
                     "/v1"),
                box.cb());
  REQUIRE(box.wait_for(1, 30));
  CHECK_FALSE(box.got[0].complete);
  CHECK(box.got[0].status == 0);
  CHECK_FALSE(box.got[0].error.empty());
  CHECK_FALSE(box.got[0].request_sent); // nothing reached anyone
}

TEST_CASE("a request is sent at most once: a kept-alive connection that "
          "dies before answering fails the request, libcurl does not send "
          "it again",
          "[http_client]") {
  // The first request is answered and its connection kept; the second,
  // on that reused connection, is read and the connection closed unanswered.
  std::atomic<int> seen{0};
  raw_http_server server([&](const raw_request&) {
    if (++seen == 2)
      return raw_reply{"", true};
    return raw_reply{raw_http_server::response(200, "{}")};
  });
  inbox box;
  http_client client;
  client.submit(post(server.base_url()), box.cb());
  REQUIRE(box.wait_for(1, 30));
  REQUIRE(box.got[0].complete);
  client.submit(post(server.base_url()), box.cb());
  REQUIRE(box.wait_for(2, 30));
  auto& dropped = box.got[1];
  CHECK_FALSE(dropped.complete);
  CHECK(dropped.status == 0);
  CHECK(dropped.request_sent);
  CHECK(dropped.resend_refused);
  CHECK(dropped.error ==
        "the connection closed after the request was sent, before any "
        "answer");
  // libcurl's own resend would have been a third request (it may open its
  // fresh connection before the pre-request callback refuses: no request
  // on it).
  CHECK(server.requests() == 2);
  // The client goes on: the next request gets a fresh connection.
  client.submit(post(server.base_url()), box.cb());
  REQUIRE(box.wait_for(3, 30));
  CHECK(box.got[2].complete);
  CHECK(server.requests() == 3);
}

TEST_CASE("a truncated body is not a complete response", "[http_client]") {
  raw_http_server server([](const raw_request&) {
    auto full = raw_http_server::response(200, std::string(100, 'x'));
    return raw_reply{full.substr(0, full.size() - 60), true};
  });
  inbox box;
  http_client client;
  client.submit(post(server.base_url()), box.cb());
  REQUIRE(box.wait_for(1, 30));
  CHECK_FALSE(box.got[0].complete);
  CHECK(box.got[0].status == 200);
}

TEST_CASE("cancel abandons a call and calls back once", "[http_client]") {
  raw_http_server server([](const raw_request&) {
    return raw_reply{raw_http_server::response(200, "{}"), false, 2000};
  });
  inbox box;
  http_client client;
  auto id = client.submit(post(server.base_url()), box.cb());
  REQUIRE(wait_until([&] { return server.requests() == 1; }, 30));
  client.cancel(id);
  REQUIRE(box.wait_for(1, 30));
  CHECK(box.got[0].cancelled);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::lock_guard<std::mutex> lock(box.m);
  CHECK(box.got.size() == 1);
}

TEST_CASE("TLS peers are verified: a self-signed server is refused",
          "[http_client]") {
  if (access("/usr/bin/openssl", X_OK) != 0) {
    WARN("SKIPPED: /usr/bin/openssl is not installed");
    return;
  }
  temp_dir dir;
  auto gen = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout",
                  dir.path("key.pem"), "-out", dir.path("cert.pem")},
                 dir.path());
  REQUIRE(gen.exit_code == 0);
  int port = free_port();
  background_process tls({"/usr/bin/openssl", "s_server", "-accept",
                          std::to_string(port), "-cert", dir.path("cert.pem"),
                          "-key", dir.path("key.pem"), "-www", "-quiet"},
                         dir.path());
  REQUIRE(wait_until(
    [&] {
      return read_file(dir.path("cert.pem")).size() > 0 &&
             run({"/usr/bin/openssl", "s_client", "-connect",
                  "127.0.0.1:" + std::to_string(port)},
                 dir.path(), {}, 5)
                 .out.find("BEGIN CERTIFICATE") != std::string::npos;
    },
    30));
  inbox box;
  http_client client;
  client.submit(post("https://127.0.0.1:" + std::to_string(port) + "/v1"),
                box.cb());
  REQUIRE(box.wait_for(1, 30));
  CHECK_FALSE(box.got[0].complete);
  CHECK(box.got[0].status == 0);
  INFO(box.got[0].error);
  CHECK(box.got[0].error.find("certificate") != std::string::npos);
}

TEST_CASE("HTTP/2 is negotiated over TLS and many calls share one "
          "connection",
          "[http_client]") {
  auto node = node_binary();
  if (node.empty()) {
    WARN("SKIPPED: node is not installed (scripts/install-aimock.sh)");
    return;
  }
  temp_dir dir;
  auto gen = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
                  "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout",
                  dir.path("key.pem"), "-out", dir.path("cert.pem")},
                 dir.path());
  REQUIRE(gen.exit_code == 0);
  int port = free_port();
  background_process h2({node,
                         std::string(BGAGENT_SOURCE_DIR) +
                           "/tests/support/h2_server.js",
                         std::to_string(port), dir.path("key.pem"),
                         dir.path("cert.pem")},
                        dir.path(), {}, "h2");
  REQUIRE(wait_until([&] { return h2.out().find("listening") !=
                                  std::string::npos; },
                     30));
  http_client_settings s;
  s.ca_file = dir.path("cert.pem"); // trust the test's own certificate
  inbox box;
  http_client client(s);
  const int n = 50;
  auto base = "https://127.0.0.1:" + std::to_string(port) + "/v1";
  for (int i = 0; i < n; ++i)
    client.submit(post(base), box.cb());
  REQUIRE(box.wait_for(n, 60));
  for (auto& r : box.got) {
    INFO(r.error);
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK(r.http_version == "2");
    CHECK(r.body == R"({"version":"2.0"})");
  }
  // Multiplexed: every request went over the first connection.
  http_request stats;
  stats.url = "https://127.0.0.1:" + std::to_string(port) + "/stats";
  client.submit(stats, box.cb());
  REQUIRE(box.wait_for(n + 1, 30));
  auto j = nlohmann::json::parse(box.got.back().body);
  CHECK(j["sessions"] == 1);
  CHECK(j["streams"] == n);
}
