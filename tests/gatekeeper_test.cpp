// The published gatekeeper against a hostile client: this test process is a
// CAF node of its own that connects to a real head on 127.0.0.1 and sends
// what an attacker would. Nothing it sends without the secret changes
// anything; every refusal is audited; the head keeps running.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <sys/stat.h>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/gatekeeper.hpp"
#include "app/system_config.hpp"
#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/gatekeeper_actor.hpp"
#include "messages/wire_fingerprint.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string gatekeeper_secret = "gatekeeper-test-secret";

// A client node in this process.
struct client {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  caf::actor gk;

  explicit client(int port) {
    auto x = sys.middleman().remote_actor<gatekeeper_actor>(
      "127.0.0.1", static_cast<uint16_t>(port));
    REQUIRE(x);
    // Untyped from here: a hostile client sends whatever it likes.
    gk = caf::actor_cast<caf::actor>(*x);
  }

  // `wire`: what the client says it speaks; empty: this build's.
  welcome hello(const std::string& role, const std::string& s,
                std::string wire = {}) {
    if (wire.empty())
      wire = wire_fingerprint(cfg);
    welcome w;
    self->request(gk, std::chrono::seconds(30), hello_atom::value, role, s,
                  std::string("test-client"), wire)
      .receive([&](welcome& x) { w = std::move(x); },
               [&](caf::error& e) { FAIL(sys.render(e)); });
    return w;
  }

  // Sends `xs` and returns the error text ("answered" if it was answered
  // with a bool, as admin commands are).
  template <class Handle, class... Ts>
  std::string refused(const Handle& dest, Ts&&... xs) {
    std::string err = "answered";
    self->request(dest, std::chrono::seconds(30), std::forward<Ts>(xs)...)
      .receive([&](bool) {},
               [&](caf::error& e) { err = sys.render(e); });
    return err;
  }
};

// A head with `tasks` tasks listening (plain, loopback) for nodes.
struct listening_head {
  temp_dir dir;
  int port = free_port();
  std::string audit = dir.path("bgagent-audit.jsonl");
  background_process head;
  listening_head(int tasks, const std::string& prefix)
    : head((write_task_file(dir.path("tasks.jsonl"), tasks, prefix),
            head_args(port, "tasks.jsonl")),
           dir.path(), {{"BG_AGENT_SECRET", gatekeeper_secret}}, "head") {
    REQUIRE(wait_for_output(head, "listening for worker", 30));
  }
};

} // namespace

TEST_CASE("secrets are compared exactly", "[gatekeeper]") {
  CHECK(secrets_match("abc", "abc"));
  CHECK_FALSE(secrets_match("abd", "abc"));
  CHECK_FALSE(secrets_match("abc", "abcd"));
  CHECK_FALSE(secrets_match("", ""));
}

TEST_CASE("the wire fingerprint is the same for one build and changes with "
          "a message type",
          "[gatekeeper]") {
  system_config a, b;
  auto wa = wire_fingerprint(a);
  CHECK(wa == wire_fingerprint(b));
  CHECK(wa.rfind(std::string(BGAGENT_VERSION) + "/", 0) == 0);
  CHECK(wa.size() == std::string(BGAGENT_VERSION).size() + 1 + 16);
  // A build that registers one more type (or a type with another field)
  // speaks differently.
  system_config c;
  c.add_message_type<std::vector<int32_t>>("std::vector<int32_t>");
  CHECK(wire_fingerprint(c) != wa);
  CHECK(well_formed_wire(wa));
  CHECK(well_formed_wire("0.0.1/00000000deadbeef"));
  CHECK_FALSE(well_formed_wire("0.5.0/xyz"));
  CHECK_FALSE(well_formed_wire("0.5.0/00000000deadbeef\n"));
  CHECK_FALSE(well_formed_wire(std::string(100, 'a') + "/00000000deadbeef"));
  CHECK_FALSE(well_formed_wire("\x1b[31m/00000000deadbeef"));
}

TEST_CASE("a node of another release is refused with both releases named, "
          "audited, and the head keeps running",
          "[gatekeeper][e2e]") {
  listening_head h(3, "rel");
  auto& audit = h.audit;
  auto& head = h.head;
  int port = h.port;
  {
    client c(port);
    auto mine = wire_fingerprint(c.cfg);
    for (auto* role : {"worker", "admin"}) {
      auto w = c.hello(role, gatekeeper_secret, "0.0.1/00000000deadbeef");
      CHECK_FALSE(w.accepted);
      CHECK_FALSE(w.ctx.gateway);
      CHECK_FALSE(w.admin);
      CHECK(w.reason == "it runs bgagent " + mine +
                          " and this node 0.0.1/00000000deadbeef: their "
                          "messages differ; run one release on every machine");
    }
    // The same client speaking this release is let in (and its idle
    // admin endpoint does not hold the head's exit below).
    CHECK(c.hello("admin", gatekeeper_secret).accepted);
  }
  REQUIRE(wait_until(
    [&] { return audit_events(audit, "admin_refused").size() == 2; }, 30));
  for (auto& e : audit_events(audit, "admin_refused"))
    CHECK(e["detail"].get<std::string>().find(
            "hello from another release (0.0.1/00000000deadbeef") !=
          std::string::npos);
  CHECK(head.running());
  head.signal(SIGTERM);
  INFO(head.err());
  CHECK(head.wait(30) == 128 + SIGTERM);
}

TEST_CASE("a wrong secret or a command without hello or an unexpected message "
          "is refused and audited and changes nothing - the head keeps running",
          "[gatekeeper][e2e]") {
  listening_head h(5, "sec");
  auto& dir = h.dir;
  auto& audit = h.audit;
  auto& head = h.head;
  int port = h.port;
  {
    client c(port);
    // Wrong secret: refused with a reason, no handle.
    auto w = c.hello("worker", "guess");
    CHECK_FALSE(w.accepted);
    CHECK(w.reason.find("wrong cluster secret") != std::string::npos);
    CHECK_FALSE(w.ctx.gateway);
    auto a = c.hello("admin", "guess");
    CHECK_FALSE(a.accepted);
    CHECK_FALSE(a.admin);
    // An admin command straight to the gatekeeper, without a hello.
    CHECK(c.refused(c.gk, shutdown_atom::value).find("unexpected_message") !=
          std::string::npos);
    // A message of a type the gatekeeper does not know at all.
    CHECK(c.refused(c.gk, std::string("let me in"), 42).find(
            "unexpected_message") != std::string::npos);
    // A hello with a wrong shape is just as unexpected.
    CHECK(c.refused(c.gk, hello_atom::value, gatekeeper_secret).find(
            "unexpected_message") != std::string::npos);
    // An anonymous message (no sender to answer) is dropped and audited.
    caf::anon_send(c.gk, drain_atom::value);
  }
  REQUIRE(wait_until(
    [&] { return audit_events(audit, "admin_refused").size() == 6; }, 30));
  for (auto& e : audit_events(audit, "admin_refused"))
    CHECK(e["detail"].get<std::string>().find(" from ") != std::string::npos);
  auto refusals = audit_events(audit, "admin_refused");
  // The anonymous message is audited too, as such.
  CHECK(std::any_of(refusals.begin(), refusals.end(), [](auto& e) {
    return e["detail"].template get<std::string>().find("from anonymous") !=
           std::string::npos;
  }));
  CHECK(refusals[0]["detail"].get<std::string>().find("127.0.0.1:") !=
        std::string::npos);
  // (Not by position: a refused command is answered at once and audited
  // once its peer's address is looked up, so the anonymous message, which
  // needs no lookup, may be audited before it.)
  CHECK(std::any_of(refusals.begin(), refusals.end(), [](auto& e) {
    return e["detail"].template get<std::string>().find(
             "'shutdown' (1 element(s)) without a valid hello from "
             "127.0.0.1:") != std::string::npos;
  }));
  // Nothing changed: the head runs, nothing was paused, drained or stopped.
  CHECK(head.running());
  CHECK(audit_events(audit, "admin_command").empty());
  auto st = run_bgagent({"admin", "--connect", loopback(port), "status", "--json"},
                        dir.path(), {{"BG_AGENT_SECRET", gatekeeper_secret}});
  REQUIRE(st.exit_code == 0);
  auto j = nlohmann::json::parse(st.out);
  CHECK(j["paused"] == false);
  CHECK(j["tasks"]["pending"] == 5);
  // And it still serves the right secret.
  {
    client c(port);
    auto w = c.hello("admin", gatekeeper_secret);
    REQUIRE(w.accepted);
    CHECK(c.refused(w.admin, pause_atom::value) == "answered");
    CHECK(c.refused(w.admin, resume_atom::value) == "answered");
  }
  head.signal(SIGTERM);
  CHECK(head.wait(30) == 128 + SIGTERM);
}

TEST_CASE("refusals are rate-limited per host", "[gatekeeper][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 1, "rate");
  int port = free_port();
  auto audit = dir.path("bgagent-audit.jsonl");
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          {{"BG_AGENT_SECRET", gatekeeper_secret}}, "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  client c(port);
  for (int i = 0; i < 9; ++i)
    CHECK_FALSE(c.hello("admin", "guess-" + std::to_string(i)).accepted);
  // Now even the right secret is refused from this host for a while.
  auto w = c.hello("admin", gatekeeper_secret);
  CHECK_FALSE(w.accepted);
  CHECK(w.reason.find("too many refused hellos") != std::string::npos);
  // 5 refusals audited in full, then one line saying the host is limited.
  REQUIRE(wait_until(
    [&] { return audit_events(audit, "admin_refused").size() == 6; }, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto refusals = audit_events(audit, "admin_refused");
  REQUIRE(refusals.size() == 6);
  CHECK(refusals[5]["detail"].get<std::string>().find("rate-limited") !=
        std::string::npos);
  CHECK(head.running());
}

TEST_CASE("run --listen without a secret writes one next to the database "
          "with mode 0600 and a node on the same machine finds it",
          "[gatekeeper][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 2, "gen");
  int port = free_port();
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          {}, "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  auto path = dir.path("bgagent.db.secret");
  CHECK(head.err().find("bgagent.db.secret (new)") != std::string::npos);
  struct stat sb {};
  REQUIRE(stat(path.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
  CHECK(read_file(path).size() == 65); // 64 hex digits and a newline
  auto st = run_bgagent({"admin", "--connect", loopback(port), "status"}, dir.path());
  CHECK(st.exit_code == 0);
  auto elsewhere = run_bgagent({"admin", "--connect", loopback(port), "status"},
                               "/tmp");
  CHECK(elsewhere.exit_code == 2);
  CHECK(elsewhere.err.find("no cluster secret") != std::string::npos);
  auto by_file = run_bgagent({"admin", "--connect", loopback(port), "status"},
                             "/tmp", {{"BG_AGENT_SECRET_FILE", path}});
  CHECK(by_file.exit_code == 0);
  head.signal(SIGTERM);
  head.wait(30);
}

TEST_CASE("with TLS certificates a node signed by the CA joins and a plain or "
          "foreign node cannot connect",
          "[gatekeeper][tls][e2e]") {
  temp_dir dir;
  auto make_cert = [&](const std::string& name) {
    auto r = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-keyout", name + "-key.pem", "-out",
                  name + "-cert.pem", "-days", "2", "-subj", "/CN=" + name},
                 dir.path());
    REQUIRE(r.exit_code == 0);
  };
  make_cert("cluster");
  make_cert("rogue");
  auto tls = [&](const std::string& name) {
    return env_map{{"BG_AGENT_SECRET", gatekeeper_secret},
                   {"BG_AGENT_TLS_CERT", dir.path(name + "-cert.pem")},
                   {"BG_AGENT_TLS_KEY", dir.path(name + "-key.pem")},
                   {"BG_AGENT_TLS_CA", dir.path("cluster-cert.pem")}};
  };
  write_task_file(dir.path("tasks.jsonl"), 10, "tls");
  int port = free_port();
  auto args = head_args(port, "tasks.jsonl");
  args[4] = "--listen"; // mutual TLS instead of --insecure-listen
  background_process head(args, dir.path(), tls("cluster"), "head");
  REQUIRE(wait_for_output(head, "with TLS", 30));
  auto plain = run_bgagent({"admin", "--connect", loopback(port), "status"},
                           dir.path(), {{"BG_AGENT_SECRET", gatekeeper_secret}});
  CHECK(plain.exit_code == 5);
  auto rogue = run_bgagent({"admin", "--connect", loopback(port), "status"},
                           dir.path(), tls("rogue"));
  CHECK(rogue.exit_code == 5);
  CHECK(head.running());
  auto node = run_bgagent({"worker", "--connect", loopback(port), "--workers", "2"},
                          dir.path(), tls("cluster"));
  INFO(node.err << head.err());
  CHECK(node.exit_code == 0);
  CHECK(head.wait(60) == 0);
  CHECK(count_events_by_task(dir.path("bgagent-audit.jsonl"), "task_completed")
          .size() == 10);
}

TEST_CASE("a node meeting a head of another release (a gatekeeper of "
          "another interface) exits 6 saying so",
          "[gatekeeper][e2e]") {
  // The gatekeeper of the release before this one: a hello of 3 strings.
  using old_gatekeeper = caf::typed_actor<caf::replies_to<
    hello_atom, std::string, std::string, std::string>::with<welcome>>;
  system_config cfg;
  caf::actor_system sys{cfg};
  // (An argument: CAF 0.17 dereferences a null tuple for an actor function
  // without any, which UBSan reports.)
  auto old = sys.spawn(
    [](int) -> old_gatekeeper::behavior_type {
      return {[](hello_atom, const std::string&, const std::string&,
                 const std::string&) { return welcome{}; }};
    },
    0);
  auto port = sys.middleman().publish(old, 0, "127.0.0.1");
  REQUIRE(port);
  temp_dir dir;
  for (auto args : {std::vector<std::string>{"worker", "--connect",
                                             loopback(*port), "--workers",
                                             "1"},
                    std::vector<std::string>{"admin", "--connect",
                                             loopback(*port), "status"}}) {
    auto r = run_bgagent(args, dir.path(), {{"BG_AGENT_SECRET", gatekeeper_secret}});
    INFO(r.err);
    CHECK(r.exit_code == 6);
    CHECK(r.err.find("the head at " + loopback(*port) +
                     " runs another release of bgagent") !=
          std::string::npos);
  }
  caf::anon_send_exit(old, caf::exit_reason::kill);
}
