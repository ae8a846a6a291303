// A node that knows the secret but lies: results for attempts it was never
// handed are refused, so are answers it forges in the store's name, and
// the usage it reports is bounded by what the head
// reserved for the attempt (a critical usage_over_reservation alert).
//
// The node is a real CAF node in this test process: it says hello to a real
// head, gets its gateway, and joins one worker of its own making that
// answers every task with a forged result and a million tokens of usage.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "app/system_config.hpp"
#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/cluster.hpp"
#include "messages/mark_answer.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/gatekeeper_actor.hpp"
#include "messages/wire_fingerprint.hpp"
#include "messages/task.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/loopback_port.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string hostile_secret = "hostile-test-secret";

// Begins each attempt it is handed with a worst case of 200 tokens, then
// reports a million.
caf::behavior liar(caf::event_based_actor* self, caf::actor gateway,
                   std::shared_ptr<std::atomic<int>> finished) {
  return {
    [=](dispatch_atom, const task& t, uint32_t attempt) {
      self
        ->request(gateway, caf::infinite, begin_atom::value, t.id, attempt,
                  uint64_t{150}, uint64_t{50}, 0.001,
                  std::string("liar/liar-model"), false)
        .then([=](int32_t go) {
          if (go != begin_answer::go)
            return;
          call_outcome out;
          out.ok = true;
          out.http_status = 200;
          out.result = R"({"summary":"forged"})";
          out.usage_reported = true;
          out.prompt_tokens = 1000000;
          out.completion_tokens = 0;
          out.cost_usd = 0.0005;
          out.provider = "liar";
          out.model = "liar-model";
          self->send(gateway, finish_atom::value, t.id, attempt, out, false,
                     0.01);
          ++*finished;
        });
    },
  };
}

} // namespace

TEST_CASE("a node with the secret cannot finish attempts it was not handed "
          "nor charge more than its reservation",
          "[cluster][hostile][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 3, "lie");
  int port = free_port();
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          with_secret(hostile_secret), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));

  auto finished = std::make_shared<std::atomic<int>>(0);
  {
    system_config cfg;
    caf::actor_system sys{cfg};
    auto gk = sys.middleman().remote_actor<gatekeeper_actor>(
      "127.0.0.1", static_cast<uint16_t>(port));
    REQUIRE(gk);
    caf::scoped_actor self{sys};
    welcome w;
    self
      ->request(*gk, std::chrono::seconds(10), hello_atom::value,
                std::string("worker"), hostile_secret, std::string("evil"),
                wire_fingerprint(cfg))
      .receive([&](welcome& x) { w = std::move(x); },
               [&](caf::error& e) { FAIL(sys.render(e)); });
    REQUIRE(w.accepted);
    // A hostile node is bound by no interface: it speaks untyped.
    auto gateway = caf::actor_cast<caf::actor>(w.ctx.gateway);
    REQUIRE(gateway);

    // Before any task was handed to it: a begin is refused, a result
    // ignored.
    int32_t go = -1;
    self
      ->request(gateway, std::chrono::seconds(10), begin_atom::value,
                std::string("lie-1"), uint32_t{1}, uint64_t{10}, uint64_t{0},
                0.0, std::string("x"), false)
      .receive([&](int32_t x) { go = x; }, [&](caf::error&) {});
    CHECK(go == begin_answer::refused);
    call_outcome forged;
    forged.ok = true;
    forged.result = R"({"summary":"forged early"})";
    self->send(gateway, finish_atom::value, std::string("lie-2"),
               uint32_t{1}, forged, false, 0.01);
    // Nor can it speak for the store: answers to marks, as the head's
    // checkpointer sends them (a completion stored, a call that may go),
    // are refused from anyone else.
    self->send(gateway, marks_atom::value,
               std::vector<mark_answer>{
                 mark_answer{"lie-1", 1, true, true, 0},
                 mark_answer{"lie-2", 1, false, true, 1}});

    // Now join one lying worker and let the head hand it the tasks.
    auto worker = sys.spawn(liar, gateway, finished);
    bool joined = false;
    self
      ->request(gateway, std::chrono::seconds(10), join_atom::value,
                std::vector<task_worker_actor>{
                  caf::actor_cast<task_worker_actor>(worker)},
                std::vector<std::string>{"evil/worker-1"})
      .receive([&](bool x) { joined = x; }, [&](caf::error&) {});
    REQUIRE(joined);
    INFO(head.err());
    REQUIRE(head.wait(60) == 0);
    self->send_exit(worker, caf::exit_reason::user_shutdown);
  }
  CHECK(*finished == 3);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto refused = audit_events(audit, "admin_refused");
  int not_handed = 0;
  for (auto& j : refused)
    not_handed += j["detail"].get<std::string>().find(
                    "that this gateway did not hand to that worker") !=
                  std::string::npos;
  CHECK(not_handed == 2); // the early begin and the early result
  int forged_store = 0;
  for (auto& j : refused)
    forged_store += j["detail"].get<std::string>().find(
                      "store answers not from the store") !=
                    std::string::npos;
  CHECK(forged_store == 1);
  // Each task cost what the head reserved for it (200 tokens), never the
  // million the node claimed.
  auto r = run_bgagent({"results", "--json"}, dir.path());
  int rows = 0;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    ++rows;
    CHECK(j["state"] == "completed");
    CHECK(j["prompt_tokens"].get<uint64_t>() + j["completion_tokens"]
                                                 .get<uint64_t>() ==
          200);
  }
  CHECK(rows == 3);
  auto st = nlohmann::json::parse(
    run_bgagent({"status", "--json"}, dir.path()).out);
  CHECK(st["budget"]["tokens_used"].get<uint64_t>() == 600);
  int over = 0;
  for (auto& a : read_jsonl(dir.path("bgagent-alerts.jsonl")))
    over += a["kind"] == "usage_over_reservation" &&
            a["severity"] == "critical";
  CHECK(over == 3);
}

TEST_CASE("exit messages from the network: refused, or (kill) a critical "
          "alert while the run carries on",
          "[cluster][hostile][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 20, "edge");
  int port = free_port();
  // Two local workers of the test binary's scripted provider, slow enough
  // (20 x 300 ms / 2) that the run outlives the probes.
  auto args = head_args(port, "tasks.jsonl");
  args[0] = testbin_binary();
  args[3] = "2"; // --workers 2
  background_process head(args, dir.path(), scripted_node_env(hostile_secret, 300),
                          "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  {
    system_config cfg;
    caf::actor_system sys{cfg};
    auto gk = sys.middleman().remote_actor<gatekeeper_actor>(
      "127.0.0.1", static_cast<uint16_t>(port));
    REQUIRE(gk);
    // An exit message the gatekeeper may refuse: it does, and still
    // answers hellos.
    caf::anon_send_exit(*gk, caf::exit_reason::user_shutdown);
    caf::scoped_actor self{sys};
    bool answered = false;
    self
      ->request(*gk, std::chrono::seconds(10), hello_atom::value,
                std::string("worker"), std::string("wrong"),
                std::string("prober"), wire_fingerprint(sys.config()))
      .receive([&](welcome& w) { answered = !w.accepted; },
               [&](caf::error&) {});
    CHECK(answered);
    // `kill` cannot be refused in CAF: the gatekeeper ends, the supervisor
    // raises a critical alert, and the run goes on with its workers.
    caf::anon_send_exit(*gk, caf::exit_reason::kill);
    REQUIRE(wait_until(
      [&] {
        return read_file(dir.path("bgagent-alerts.jsonl"))
                 .find("cluster_edge_failed") != std::string::npos;
      },
      20));
  }
  INFO(head.err());
  REQUIRE(head.wait(60) == 0);
  CHECK(count_events_by_task(dir.path("bgagent-audit.jsonl"),
                             "task_completed")
          .size() == 20);
  auto refused = audit_events(dir.path("bgagent-audit.jsonl"),
                              "admin_refused");
  bool exit_refused = false;
  for (auto& j : refused)
    exit_refused |= j["detail"].get<std::string>().find(
                      "an exit message") != std::string::npos;
  CHECK(exit_refused);
  auto alerts = read_jsonl(dir.path("bgagent-alerts.jsonl"));
  int edge = 0;
  for (auto& a : alerts)
    edge += a["kind"] == "cluster_edge_failed" && a["severity"] == "critical";
  CHECK(edge == 1);
}
