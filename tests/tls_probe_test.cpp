// A head's TLS cluster port under attack from a stranger on the network:
// plain TCP speaking BASP, a TLS client without a certificate, one with a
// certificate from another CA, and a BASP header that claims a 3 GiB
// payload. Each is refused at the TLS layer, before CAF's BASP sees a byte:
// nothing BASP comes back and nothing is allocated for the claimed payload.
// After each, the head is still up and a legitimate node (certificates from
// the same `certs init`) joins and completes every task exactly once.
#include <catch2/catch.hpp>

#include <vector>

#include <caf/binary_serializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/version.hpp>
#include <openssl/ssl.h>

#include "tests/support/basp_probe.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string secret = "tls-probe-secret";
constexpr int task_count = 6;

// A head with 0 workers listening with TLS on 127.0.0.1: its tasks stay
// pending until a node joins, so it keeps running through the probes.
struct tls_head {
  temp_dir dir;
  int port = free_port();
  std::unique_ptr<background_process> head;

  tls_head() {
    REQUIRE(run_bgagent({"certs", "init", "pki", "--nodes", "head,node-a"},
                        dir.path())
              .exit_code == 0);
    write_task_file(dir.path("tasks.jsonl"), task_count, "probe");
    head = std::make_unique<background_process>(
      std::vector<std::string>{bgagent_binary(), "run", "--workers", "0",
                               "--listen", loopback(port), "--tasks",
                               "tasks.jsonl"},
      dir.path(),
      tls("head", with_secret(secret)), "head");
    REQUIRE(wait_for_output(*head, "with TLS", 30));
  }

  std::string pki(const std::string& file) const {
    return dir.path("pki/" + file);
  }

  env_map tls(const std::string& node, env_map extra) const {
    extra["BG_AGENT_TLS_CERT"] = pki(node + ".pem");
    extra["BG_AGENT_TLS_KEY"] = pki(node + ".key");
    extra["BG_AGENT_TLS_CA"] = pki("ca.pem");
    return extra;
  }

  // A legitimate node joins: every task completes exactly once and the
  // head ends its run normally.
  void finish_with_a_legitimate_node() {
    REQUIRE(head->running());
    background_process node(node_args(port, "node-a"), dir.path(),
                            tls("node-a", scripted_node_env(secret, 0)),
                            "node-a");
    INFO(head->err() << node.err());
    REQUIRE(head->wait(60) == 0);
    CHECK(node.wait(30) == 0);
    auto audit = dir.path("bgagent-audit.jsonl");
    auto done = count_events_by_task(audit, "task_completed");
    CHECK(done.size() == task_count);
    for (auto& kv : done)
      CHECK(kv.second == 1);
    auto joined = audit_events(audit, "node_joined");
    REQUIRE(joined.size() == 1);
    CHECK(joined[0]["node"] == "node-a");
    auto st = run_bgagent({"status", "--json"}, dir.path());
    REQUIRE(st.exit_code == 0);
    auto j = nlohmann::json::parse(st.out);
    CHECK(j["tasks"]["completed"] == task_count);
    CHECK(j["tasks"]["pending"] == 0);
  }
};

// A TLS alert record: content type 21, a TLS 1.x version, length 2.
bool is_tls_alert_record(const std::string& bytes) {
  return bytes.size() == 7 && bytes[0] == 0x15 && bytes[1] == 0x03 &&
         bytes[3] == 0x00 && bytes[4] == 0x02;
}

} // namespace

TEST_CASE("the probe's BASP headers are byte for byte what CAF 0.17 writes",
          "[tls_probe]") {
  namespace basp = caf::io::basp;
  auto caf_bytes = [](const basp::header& h) {
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    basp::header copy = h;
    REQUIRE_FALSE(sink(copy));
    return std::string(buf.begin(), buf.end());
  };
  REQUIRE(basp::header_size == 32);
  basp::header server{basp::message_type::server_handshake, 0, 77,
                      basp::version, 0, 0};
  CHECK(caf_bytes(server) == basp_header(0, 0, 77, 3, 0, 0));
  CHECK(starts_with_basp_server_handshake(caf_bytes(server)));
  basp::header client{basp::message_type::client_handshake, 0, 3221225472u,
                      basp::version, 0, 0};
  CHECK(basp::valid(client)); // a BASP server would wait for 3 GiB
  CHECK(caf_bytes(client) == basp_header(1, 0, 3221225472u, 3, 0, 0));
  CHECK_FALSE(starts_with_basp_server_handshake(caf_bytes(client)));
  basp::header direct{basp::message_type::direct_message, 1, 12,
                      0x0102030405060708ULL, 9, 10};
  CHECK(caf_bytes(direct) ==
        basp_header(2, 1, 12, 0x0102030405060708ULL, 9, 10));
}

TEST_CASE("plain TCP speaking BASP to a TLS head gets no BASP back and the "
          "head finishes its work",
          "[tls_probe][e2e]") {
  tls_head h;
  // The same probe with the node's certificate does get the head's BASP
  // server handshake: the probe sees BASP when it is there.
  auto legit = tls_exchange(h.port, h.pki("ca.pem"), h.pki("node-a.pem"),
                            h.pki("node-a.key"));
  INFO(legit.failure);
  REQUIRE(legit.handshake_done);
  CHECK(starts_with_basp_server_handshake(legit.application_data));

  // A BASP client handshake (header and payload) in the clear.
  std::string payload(40, '\0');
  auto hello = basp_header(1, 0, static_cast<uint32_t>(payload.size()), 3, 0,
                           0) +
               payload;
  auto r = plain_exchange(h.port, hello);
  REQUIRE(r.connected);
  CHECK_FALSE(r.timed_out);
  // The TLS server took the bytes for a broken ClientHello: it hangs up
  // with at most a TLS alert (OpenSSL 3.0 sends none for a record that is
  // not TLS at all, and the unread bytes turn its close into a reset).
  CHECK(r.closed);
  CHECK_FALSE(starts_with_basp_server_handshake(r.received));
  CHECK((r.received.empty() || is_tls_alert_record(r.received)));
  h.finish_with_a_legitimate_node();
}

TEST_CASE("a TLS client without a certificate is refused before any "
          "application data and the head finishes its work",
          "[tls_probe][e2e]") {
  tls_head h;
  auto r = tls_exchange(h.port, h.pki("ca.pem"));
  INFO(r.failure);
  REQUIRE(r.tcp_connected);
  CHECK_FALSE(r.timed_out);
  CHECK(r.closed);
  CHECK(r.application_data.empty());
  // TLS 1.3: the client's half of the handshake completes, then the server
  // says "certificate required" and hangs up.
  CHECK(r.protocol == "TLSv1.3");
  CHECK(r.failure_reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
  h.finish_with_a_legitimate_node();
}

TEST_CASE("a TLS client with a certificate from another CA is refused "
          "before any application data and the head finishes its work",
          "[tls_probe][e2e]") {
  tls_head h;
  REQUIRE(run_bgagent({"certs", "init", "rogue", "--nodes", "node-a"},
                      h.dir.path())
            .exit_code == 0);
  // Same node name, same key type, a real CA: just not the cluster's.
  auto r = tls_exchange(h.port, h.pki("ca.pem"), h.dir.path("rogue/node-a.pem"),
                        h.dir.path("rogue/node-a.key"));
  INFO(r.failure);
  REQUIRE(r.tcp_connected);
  CHECK_FALSE(r.timed_out);
  CHECK(r.closed);
  CHECK(r.application_data.empty());
  CHECK(r.failure_reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA);
  h.finish_with_a_legitimate_node();
}

TEST_CASE("a BASP header claiming a 3 GiB payload over plain TCP does not "
          "grow a TLS head's memory and the head finishes its work",
          "[tls_probe][e2e]") {
  tls_head h;
  auto before = rss_kib(h.head->pid());
  REQUIRE(before > 0);
  // A valid client handshake header (basp::valid) announcing 3 GiB, sent
  // three times on three connections.
  auto header = basp_header(1, 0, 3221225472u, 3, 0, 0);
  for (int i = 0; i < 3; ++i) {
    auto r = plain_exchange(h.port, header);
    REQUIRE(r.connected);
    CHECK_FALSE(r.timed_out);
    CHECK(r.closed);
    CHECK_FALSE(starts_with_basp_server_handshake(r.received));
  }
  REQUIRE(h.head->running());
  // A legitimate TLS connection after them is served: the head's I/O loop
  // has handled everything before it (and is not stuck zeroing 3 GiB).
  auto legit = tls_exchange(h.port, h.pki("ca.pem"), h.pki("node-a.pem"),
                            h.pki("node-a.key"));
  REQUIRE(starts_with_basp_server_handshake(legit.application_data));
  auto after = rss_kib(h.head->pid());
  INFO("VmRSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after - before < 20 * 1024);
  h.finish_with_a_legitimate_node();
}
