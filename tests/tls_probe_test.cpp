// A head's TLS cluster port under attack from a stranger on the network:
// plain TCP speaking BASP, a TLS client without a certificate, one with a
// certificate from another CA, and a BASP header that claims a 3 GiB
// payload. Each is refused at the TLS layer, before CAF's BASP sees a byte:
// nothing BASP comes back and nothing is allocated for the claimed payload.
// After each, the head is still up and a legitimate node (certificates from
// the same `certs init`) joins and completes every task exactly once.
//
// Last, a certified peer without the secret speaks BASP by hand after a
// node has joined (so the head has sent actor handles to the network): it
// addresses every actor id the head could have, and only the gatekeeper,
// the node's own gateway and CAF's helper for that node answer; none of the
// head's internal actors (their ids come from the head's debug log).
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <set>
#include <vector>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/version.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include "app/system_config.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "tests/support/basp_probe.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string probe_secret = "tls-probe-secret";

// A head with 0 workers listening with TLS on 127.0.0.1: its tasks stay
// pending until a node joins, so it keeps running through the probes.
struct tls_head {
  temp_dir dir;
  int port = free_port();
  int task_count;
  std::unique_ptr<background_process> head;

  explicit tls_head(int tasks = 6, const std::string& nodes = "head,node-a",
                    env_map head_env = {})
    : task_count(tasks) {
    REQUIRE(run_bgagent({"certs", "init", "pki", "--nodes", nodes},
                        dir.path())
              .exit_code == 0);
    write_task_file(dir.path("tasks.jsonl"), task_count, "probe");
    head = std::make_unique<background_process>(
      std::vector<std::string>{bgagent_binary(), "run", "--workers", "0",
                               "--listen", loopback(port), "--tasks",
                               "tasks.jsonl"},
      dir.path(),
      tls("head", with_secret(probe_secret, std::move(head_env))), "head");
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
                            tls("node-a", scripted_node_env(probe_secret, 0)),
                            "node-a");
    check_finished(node);
  }

  // The head and `node` end normally with every task completed once.
  void check_finished(background_process& node) {
    INFO(head->err() << node.err());
    REQUIRE(head->wait(60) == 0);
    CHECK(node.wait(30) == 0);
    auto audit = dir.path("bgagent-audit.jsonl");
    auto done = count_events_by_task(audit, "task_completed");
    CHECK(done.size() == static_cast<size_t>(task_count));
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

namespace {

// CAF's own binary form of `xs`, as its BASP instance writes payloads.
template <class... Ts>
std::string caf_payload(caf::actor_system& sys, Ts&&... xs) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (auto err = sink(std::forward<Ts>(xs)...))
    throw std::runtime_error("cannot serialize: " + sys.render(err));
  return std::string(buf.begin(), buf.end());
}

// A BASP direct_message from actor `from` on the prober's node to actor
// `to` on the head, sent as request number `n`.
std::string direct_request(caf::actor_system& sys, uint64_t n, uint64_t from,
                           uint64_t to, caf::message msg) {
  auto payload = caf_payload(sys, std::vector<caf::strong_actor_ptr>{}, msg);
  auto request = caf::message_id::default_async_value | n;
  return basp_header(2, 0, static_cast<uint32_t>(payload.size()), request,
                     from, to) +
         payload;
}

// "head actor ids: auditor 7, checkpointer 8, ..." and "node NAME: gateway
// actor id N" from a head's debug log, as name -> id.
std::map<std::string, uint64_t> actor_ids_in_log(const std::string& log) {
  std::map<std::string, uint64_t> ids;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("head actor ids: ");
    if (at != std::string::npos) {
      std::istringstream items(line.substr(at + 16));
      for (std::string item; std::getline(items, item, ',');) {
        std::istringstream kv(item);
        std::string name;
        uint64_t id = 0;
        if (kv >> name >> id)
          ids[name] = id;
      }
    }
    auto gw = line.find(": gateway actor id ");
    auto node = line.find("node ");
    if (gw != std::string::npos && node != std::string::npos && node < gw)
      ids[line.substr(node + 5, gw - node - 5) + " gateway"] =
        std::stoull(line.substr(gw + 19));
    // "local gateway K actor id N", one line per local gateway
    auto local = line.find("local gateway ");
    auto local_id = line.find(" actor id ", local);
    if (local != std::string::npos && local_id != std::string::npos)
      ids["local gateway " +
          line.substr(local + 14, local_id - local - 14)] =
        std::stoull(line.substr(local_id + 10));
  }
  return ids;
}

} // namespace

TEST_CASE("a certified peer without the secret probing every actor id after "
          "a node joined reaches none of the head's internal actors, "
          "and a forged budget change changes nothing",
          "[tls_probe][e2e]") {
  tls_head h(40, "head,node-a,prober", {{"BG_AGENT_TOKEN_BUDGET", "100000"},
                                           {"BG_AGENT_LOG_LEVEL", "debug"}});
  // A legitimate node, slow enough that the run is under way while probed.
  background_process node(node_args(h.port, "node-a", 2), h.dir.path(),
                          h.tls("node-a", scripted_node_env(probe_secret, 100)),
                          "node-a");
  REQUIRE(wait_for_output(node, "joined the head", 30));

  system_config cfg; // the message types, for CAF's serializer only
  caf::actor_system sys{cfg};
  tls_stream peer(h.port, h.pki("ca.pem"), h.pki("prober.pem"),
                  h.pki("prober.key"));
  auto hs = peer.read_frame(10000);
  REQUIRE(hs);
  REQUIRE(hs->operation == 0); // server_handshake
  caf::node_id head_node;
  std::vector<std::string> app_ids;
  caf::actor_id gatekeeper = 0;
  std::set<std::string> iface;
  {
    caf::binary_deserializer src{sys, hs->payload.data(), hs->payload.size()};
    REQUIRE_FALSE(src(head_node, app_ids, gatekeeper, iface));
  }
  REQUIRE(gatekeeper != 0);
  caf::node_id me = sys.node();
  auto client_hs = caf_payload(sys, me);
  REQUIRE(peer.write(basp_header(1, 0, static_cast<uint32_t>(client_hs.size()),
                                 0, 0, 0) +
                     client_hs));

  // Every id up to max_id is asked for the budget, told a new budget and
  // sent a hello with a wrong secret, each as a request from its own
  // prober actor (id offset + target id), so every reply names its target.
  constexpr uint64_t max_id = 1000, offset = 1000000;
  REQUIRE(gatekeeper < max_id);
  uint64_t n = 0;
  for (uint64_t aid = 1; aid <= max_id; ++aid) {
    std::string out;
    out += direct_request(sys, ++n, offset + aid, aid,
                          caf::make_message(budget_atom::value));
    out += direct_request(sys, ++n, offset + aid, aid,
                          caf::make_message(set_budget_atom::value,
                                            budget_change{true, 1, true,
                                                          0.0}));
    out += direct_request(sys, ++n, offset + aid, aid,
                          caf::make_message(hello_atom::value,
                                            std::string("worker"),
                                            std::string("not-the-secret"),
                                            std::string("prober"),
                                            std::string("0.0.0/0")));
    REQUIRE(peer.write(out));
  }
  // Replies: from the actor itself when it exists; from nobody (actor id
  // 0, an error) when the id names no actor the network may reach.
  std::map<uint64_t, int> answered_by; // target id -> replies from it
  std::map<uint64_t, int> bounced;     // target id -> replies from nobody
  std::map<uint64_t, int> non_errors;  // target id -> replies not an error
  while (auto f = peer.read_frame(5000)) {
    // CAF's own traffic between middlemen (messages to named receivers
    // such as the prober's "SpawnServ", monitors of the prober's actors)
    // is no reply.
    constexpr uint8_t named_receiver_flag = 0x01;
    if (f->operation != 2 || (f->flags & named_receiver_flag) != 0 ||
        f->dest_actor <= offset)
      continue;
    auto target = f->dest_actor - offset;
    if (f->source_actor == 0) {
      ++bounced[target];
      continue;
    }
    CHECK(f->source_actor == target);
    ++answered_by[target];
    // Anything but an error is an answer (the gatekeeper's welcome that
    // refuses the hello, or worse).
    std::vector<caf::strong_actor_ptr> stages;
    caf::message msg;
    caf::binary_deserializer src{sys, f->payload.data(), f->payload.size()};
    if (src(stages, msg) || !msg.match_elements<caf::error>())
      ++non_errors[target];
  }
  // The head's own ids, from its debug log.
  auto ids = actor_ids_in_log(h.head->err());
  INFO(h.head->err());
  REQUIRE(ids.count("supervisor") == 1);
  REQUIRE(ids.count("node-a gateway") == 1);
  REQUIRE(ids.count("local gateway 1") == 1); // and one per scheduler thread
  std::string reachable;
  for (auto& kv : answered_by)
    reachable += " " + std::to_string(kv.first);
  INFO("actor ids that answered:" << reachable << "; gatekeeper "
       << gatekeeper);
  // None of the head's internal actors answered...
  for (auto& kv : ids)
    if (kv.first != "gatekeeper" && kv.first != "node-a gateway")
      CHECK(answered_by.count(kv.second) == 0);
  // ...the gatekeeper did (it refused the hellos), as did node-a's gateway
  // with errors only; the one other actor that may answer is CAF's helper
  // for node-a (it relays spawn requests to node-a, which has no actor
  // types to spawn), with errors only.
  CHECK(ids["gatekeeper"] == gatekeeper);
  CHECK(answered_by.count(gatekeeper) == 1);
  CHECK(non_errors[gatekeeper] == 1);
  CHECK(answered_by.count(ids["node-a gateway"]) == 1);
  CHECK(answered_by.size() <= 3);
  for (auto& kv : non_errors)
    CHECK((kv.first == gatekeeper || kv.second == 0));
  // Every other id bounced all three requests (at most one more, CAF's
  // helper for the prober's own node, waits silently for a reply that never
  // comes), and none of them answered to the budget: CAF's SpawnServ and
  // ConfigServ are stopped on a listening head.
  CHECK(bounced.size() + answered_by.size() >= max_id - 1);
  for (auto& kv : bounced)
    CHECK(kv.second == 3);
  CHECK(bounced.count(1) == 1); // SpawnServ
  CHECK(bounced.count(2) == 1); // ConfigServ

  // The head carried on, and the budget it finished with is its own.
  h.check_finished(node);
  auto st = run_bgagent({"status", "--json"}, h.dir.path());
  auto j = nlohmann::json::parse(st.out);
  CHECK(j["budget"]["tokens_limit"].get<uint64_t>() == 100000);
  CHECK(audit_events(h.dir.path("bgagent-audit.jsonl"), "admin_command")
          .empty());
}
