// The supervisor through its messages, with the scripted provider, real
// collaborators and a temporary database: dispatch, retries, quarantine,
// worker restarts, restart intensity, budget stop and drain; with the test
// standing in for a node's gateway: freed workers, pause, a gateway's end.
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

#include "actors/auditor.hpp"
#include "actors/budget_keeper.hpp"
#include "actors/checkpointer.hpp"
#include "actors/monitor.hpp"
#include "actors/supervisor.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/doubles/scripted_provider.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

task scripted_task(const std::string& id, const std::string& marker = "") {
  task t;
  t.id = id;
  t.type = "summarize";
  t.input = "Task " + id + " has a sentence. " + marker;
  t.idempotency_key = "key-" + id;
  t.max_tokens = 32;
  return t;
}

struct supervisor_env : actor_env {
  temp_dir dir;
  std::string db = dir.path("unit.db");
  auditor_actor aud = spawn_auditor(sys, dir.path("audit.jsonl"));
  // Paired: task events are committed with their state changes and then
  // written by the auditor.
  checkpointer_actor cp = spawn_checkpointer(
    sys, std::make_unique<store>(db, store::open_mode::create_if_missing),
    aud);
  std::shared_ptr<call_counters> counters = std::make_shared<call_counters>();
  monitor_actor mon;
  budget_keeper_actor keeper;
  supervisor_actor sup;

  // `before_store`: what the supervisor is given as its checkpointer (a
  // stand-in in front of cp), else cp itself.
  supervisor_env(const std::vector<task>& tasks, supervisor_settings ss,
                 uint64_t token_limit = 1000000,
                 std::function<checkpointer_actor(checkpointer_actor)>
                   before_store = {}) {
    REQUIRE(ask_for<submit_report>(self, cp, submit_atom::value, tasks));
    REQUIRE(ask_for<run_info>(self, cp, open_run_atom::value, token_limit,
                              1.0));
    monitor_settings ms;
    ms.alerts_path = dir.path("alerts.jsonl");
    ms.counters = counters;
    mon = spawn_monitor(sys, ms, aud);
    budget_settings bs;
    bs.token_limit = token_limit;
    keeper = spawn_budget_keeper(sys, bs, cp, aud, mon);
    self->send(cp, attach_atom::value, keeper); // settles reservations
    provider_settings ps;
    ps.name = "scripted";
    ps.model = "scripted";
    ss.retry_initial_seconds = 0.01;
    ss.retry_cap_seconds = 0.05;
    ss.heartbeat_seconds = 0.2;
    store_for_sup = before_store ? before_store(cp) : cp;
    sup = spawn_supervisor(
      sys, ss, run_handles{store_for_sup, keeper, aud, mon, counters, {}},
      make_scripted_provider(ps));
  }
  checkpointer_actor store_for_sup;
  ~supervisor_env() {
    exit_all(self, sup, keeper, mon, cp, aud);
    if (store_for_sup != cp)
      exit_all(self, store_for_sup);
  }
  run_summary run() {
    auto s = ask_for<run_summary>(self, sup, run_atom::value);
    REQUIRE(s);
    return *s;
  }
  std::map<std::string, task_record> records() {
    auto rows = ask_for<std::vector<task_record>>(self, cp, results_atom::value,
                                                  std::string());
    REQUIRE(rows);
    std::map<std::string, task_record> out;
    for (auto& r : *rows)
      out[r.id] = r;
    return out;
  }
  std::vector<nlohmann::json> audit(const std::string& event) {
    REQUIRE(ask_for<flush_atom>(self, aud, flush_atom::value));
    return audit_events(dir.path("audit.jsonl"), event);
  }
};

supervisor_settings with_workers(uint32_t n, uint32_t max_retries = 2) {
  supervisor_settings s;
  s.workers = n;
  s.max_retries = max_retries;
  return s;
}

// A remote node as the supervisor sees it: one (dummy) worker joined by
// `gateway`, a blocking actor standing in for the node's gateway, which
// then receives what the supervisor dispatches to that worker.
struct stand_in_node {
  supervisor_env& e;
  caf::scoped_actor& gateway;
  caf::actor dummy;
  task_worker_actor worker;

  stand_in_node(supervisor_env& env, caf::scoped_actor& gw,
                const std::string& name = "node-a")
    : e(env), gateway(gw) {
    // (An argument: CAF 0.17 dereferences a null tuple when a function
    // actor takes none, which UBSan reports.)
    dummy = e.sys.spawn(
      [](caf::event_based_actor* a, int) {
        a->set_default_handler(caf::drop);
        return caf::behavior{[](int) {}};
      },
      0);
    worker = caf::actor_cast<task_worker_actor>(dummy);
    bool joined = false;
    gateway
      ->request(e.sup, caf::infinite, join_atom::value, name,
                std::string("127.0.0.1:1"),
                std::vector<task_worker_actor>{worker},
                std::vector<std::string>{name + "/worker-1"})
      .receive([&](bool ok) { joined = ok; },
               [](caf::error& err) { FAIL(to_string(err)); });
    REQUIRE(joined);
  }

  // The id of the next task dispatched to the worker (first attempts).
  std::string next_dispatch(caf::scoped_actor& gateway) {
    std::string id;
    gateway->receive(
      [&](dispatch_atom, const task_worker_actor& to, const task& t,
          uint32_t attempt) {
        CHECK(to == worker);
        CHECK(attempt == 1);
        id = t.id;
      },
      caf::after(std::chrono::seconds(30)) >> [] { FAIL("no dispatch"); });
    return id;
  }

  // What a gateway stores before it reports done: the attempt marked
  // running, then completed (else the run's last look finds it pending).
  void store_completed(const std::string& id) {
    REQUIRE(mark(e.self, e.cp, running_atom::value, id, uint32_t{1},
                          uint64_t{0}, uint64_t{0}, 0.0, audit_event{},
                          int64_t{0}));
    call_outcome out;
    out.ok = true;
    out.result = R"({"summary":"s."})";
    REQUIRE(mark(e.self, e.cp, complete_atom::value, id,
                          uint32_t{1}, out, usage{}, audit_event{},
                          uint64_t{0}, int64_t{0}));
  }

  // An answer stored and its worker freed, as a gateway does at a finish.
  void stored_and_freed(const std::string& id) {
    store_completed(id);
    report(freed_atom::value, id);
  }

  // The worker's report, as its gateway sends it (as itself, naming the
  // worker).
  template <class Atom>
  void report(Atom atom, const std::string& id) {
    gateway->send(e.sup, atom, worker.address(), id, uint32_t{1});
  }

  std::vector<std::string> workers() {
    std::vector<std::string> listed;
    e.self->request(e.sup, caf::infinite, workers_atom::value)
      .receive([&](const std::vector<std::string>& ws) { listed = ws; },
               [](caf::error& err) { FAIL(to_string(err)); });
    return listed;
  }

  run_summary summary() { return summary_of(e); }

  // The run's summary, answering the run_atom the test sent.
  static run_summary summary_of(supervisor_env& e) {
    run_summary s;
    e.self->receive([&](const run_summary& got) { s = got; },
                    caf::after(std::chrono::seconds(30)) >>
                      [] { FAIL("no run summary"); });
    return s;
  }
};

// Tasks t1, t2, t3 (run in that order) on the only worker, a stand-in
// node's whose gateway is the test.
struct three_tasks_one_node {
  supervisor_env e{std::vector<task>{scripted_task("t1"), scripted_task("t2"),
                                     scripted_task("t3")},
                   with_workers(0)};
  bool started = (e.self->send(e.sup, run_atom::value), true); // then joins
  stand_in_node node{e, e.self};
};

} // namespace

TEST_CASE("supervisor: dispatches everything, retries, quarantines, restarts",
          "[unit][supervisor]") {
  std::vector<task> tasks;
  for (int i = 0; i < 20; ++i)
    tasks.push_back(scripted_task("ok" + std::to_string(i)));
  tasks.push_back(scripted_task("flaky", "[fail:1]"));
  tasks.push_back(scripted_task("bad", "[fail]"));
  tasks.push_back(scripted_task("refused", "[permanent]"));
  tasks.push_back(scripted_task("boom", "[crash]"));
  // One local gateway for the three workers, or three (one each), or two
  // (one of them with two workers): the same run.
  auto gateways = GENERATE(1u, 2u, 3u);
  INFO("local gateways: " << gateways);
  auto settings = with_workers(3, 2);
  settings.local_gateways = gateways;
  supervisor_env e(tasks, settings);
  auto s = e.run();
  CHECK(s.exit_code == 0);
  CHECK(s.stop_reason.empty());
  CHECK(s.completed == 21);
  CHECK(s.quarantined == 3);
  CHECK(s.restarts == 3);   // boom: 1 + 2 retries, each on a new worker
  CHECK(s.retries == 5);    // flaky 1, bad 2, boom 2
  CHECK(s.store.completed == 21);
  CHECK(s.store.quarantined == 3);
  CHECK(s.store.pending + s.store.running + s.store.retry_wait == 0);
  // Counted without messages, read by the monitor: every call's end (29
  // attempts, crashed ones included) and each completion once.
  auto m = ask_for<metrics_snapshot>(e.self, e.mon, metrics_atom::value);
  REQUIRE(m);
  CHECK(m->completed == 21);
  CHECK(m->in_flight == 0);
  CHECK(m->latency_count == 29);

  auto rec = e.records();
  CHECK(rec["flaky"].state == "completed");
  CHECK(rec["flaky"].attempts == 2);
  CHECK(rec["bad"].state == "quarantined");
  CHECK(rec["bad"].attempts == 3);
  CHECK(rec["refused"].state == "quarantined");
  CHECK(rec["refused"].attempts == 1); // permanent: at once
  CHECK(rec["boom"].state == "quarantined");
  CHECK(rec["boom"].attempts == 3);
  for (int i = 0; i < 20; ++i)
    CHECK(rec["ok" + std::to_string(i)].attempts == 1);

  auto started = e.audit("task_started");
  CHECK(started.size() == 20 + 2 + 3 + 1 + 3);
  auto restarts = e.audit("worker_restarted");
  REQUIRE(restarts.size() == 3);
  for (auto& r : restarts)
    CHECK(r["task_id"] == "boom");
  CHECK(e.audit("task_quarantined").size() == 3);
}

TEST_CASE("supervisor: too many restarts end the run with exit code 1",
          "[unit][supervisor]") {
  std::vector<task> tasks;
  for (int i = 0; i < 6; ++i)
    tasks.push_back(scripted_task("c" + std::to_string(i), "[crash]"));
  auto ss = with_workers(2, 5);
  ss.max_restarts = 2;
  supervisor_env e(tasks, ss);
  auto s = e.run();
  CHECK(s.exit_code == 1);
  CHECK(s.stop_reason == "restart_intensity");
  CHECK(s.restarts >= 3);
  CHECK(s.store.completed == 0);
  CHECK(s.store.running == 0);
  auto alerts = read_jsonl(e.dir.path("alerts.jsonl"));
  REQUIRE(wait_until(
    [&] {
      for (auto& a : read_jsonl(e.dir.path("alerts.jsonl")))
        if (a["kind"] == "restart_intensity")
          return true;
      return false;
    },
    30));
}

TEST_CASE("supervisor: a budget denial stops dispatching with exit code 3",
          "[unit][supervisor]") {
  std::vector<task> tasks;
  for (int i = 0; i < 30; ++i)
    tasks.push_back(scripted_task("b" + std::to_string(i)));
  supervisor_env e(tasks, with_workers(8), 600);
  auto s = e.run();
  CHECK(s.exit_code == 3);
  CHECK(s.stop_reason == "budget");
  CHECK(s.store.completed > 0);
  CHECK(s.store.completed < 30);
  CHECK(s.store.pending == 30 - s.store.completed);
  CHECK(s.store.running == 0);
  auto b = ask_for<budget_snapshot>(e.self, e.keeper, budget_atom::value);
  REQUIRE(b);
  CHECK(b->tokens_used <= 600);
  CHECK(b->tokens_reserved == 0);
}

TEST_CASE("supervisor: a drain lets calls in flight finish and picks the exit "
          "code from the reason",
          "[unit][supervisor]") {
  std::vector<task> tasks;
  for (int i = 0; i < 40; ++i)
    tasks.push_back(scripted_task("d" + std::to_string(i), "[delay:100]"));
  supervisor_env e(tasks, with_workers(2));
  auto h = e.self->request(e.sup, std::chrono::seconds(60), run_atom::value);
  REQUIRE(wait_until(
    [&] {
      return sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = "
                           "'completed'") >= 2;
    },
    30));
  auto drained = ask_for<bool>(e.self, e.sup, drain_atom::value,
                               int32_t{15});
  REQUIRE(drained);
  run_summary s;
  bool got = false;
  h.receive(
    [&](run_summary& x) {
      s = x;
      got = true;
    },
    [&](caf::error&) {});
  REQUIRE(got);
  CHECK(s.exit_code == 143);
  CHECK(s.stop_reason == "signal:15");
  CHECK(s.store.running == 0);
  CHECK(s.store.completed >= 2);
  CHECK(s.store.completed < 40);
  CHECK(s.store.pending == 40 - s.store.completed);
}

TEST_CASE("supervisor: a freed worker takes the next task while its answer "
          "is stored, done counts once, a stale report idles nothing",
          "[unit][supervisor]") {
  three_tasks_one_node run;
  auto& e = run.e;
  auto& node = run.node;
  // Run order: t1, t2, t3, each to the only worker.
  REQUIRE(node.next_dispatch(e.self) == "t1");
  node.store_completed("t1");
  // t1's answer is being stored: t2 goes to the worker before t1's done.
  node.report(freed_atom::value, "t1");
  REQUIRE(node.next_dispatch(e.self) == "t2");
  node.report(done_atom::value, "t1");
  // Stale reports of t1 (a second done, a skipped, a freed) do not make the
  // worker, busy with t2, idle: the supervisor handles them before the
  // workers request, and the worker is still busy with t2, not t3.
  node.report(done_atom::value, "t1");
  node.report(skipped_atom::value, "t1");
  node.report(freed_atom::value, "t1");
  auto listed = node.workers();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == "node-a node-a/worker-1 busy t2");
  // t2 freed and then skipped (the store refused its answer); t3 runs.
  node.report(freed_atom::value, "t2");
  REQUIRE(node.next_dispatch(e.self) == "t3");
  REQUIRE(ask_for<std::vector<std::string>>(
    e.self, e.cp, cancel_atom::value, std::vector<std::string>{"t2"},
    make_event("task_cancelled", "t2", -1, "by the test")));
  node.report(skipped_atom::value, "t2");
  node.store_completed("t3");
  node.report(done_atom::value, "t3");
  caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
  CHECK(node.summary().completed == 2); // t1 and t3, each once
}

TEST_CASE("supervisor: an attempt's reports count only from the gateway of "
          "the worker holding it, not from the worker, another gateway or "
          "any other actor",
          "[unit][supervisor]") {
  three_tasks_one_node run;
  auto& e = run.e;
  auto& node = run.node;
  REQUIRE(node.next_dispatch(e.self) == "t1");
  // A second node joins and takes t2 through its own gateway.
  caf::scoped_actor gateway_b{e.sys};
  stand_in_node node_b{e, gateway_b, "node-b"};
  REQUIRE(node_b.next_dispatch(gateway_b) == "t2");
  node.store_completed("t1");
  node_b.store_completed("t2");
  call_outcome failed = make_failure(error_kind::permanent, "forged");
  caf::scoped_actor stranger{e.sys};
  // Each shape of report naming node-a's worker and its attempt, from an
  // actor that is no gateway, from node-b's gateway, and from the worker
  // itself; and node-a's gateway naming node-b's worker and its attempt,
  // or no worker.
  caf::actor_addr w = node.worker.address();
  for (int from = 0; from < 4; ++from) {
    auto worker = from == 3 ? node_b.worker.address() : w;
    auto id = std::string(from == 3 ? "t2" : "t1");
    auto send = [&](auto... xs) {
      if (from == 0)
        stranger->send(e.sup, xs...);
      else if (from == 1)
        gateway_b->send(e.sup, xs...);
      else if (from == 2)
        caf::send_as(node.worker, e.sup, xs...);
      else
        e.self->send(e.sup, xs...); // node-a's gateway
    };
    send(freed_atom::value, worker, id, uint32_t{1});
    send(failed_atom::value, worker, id, uint32_t{1}, failed);
    send(denied_atom::value, worker, id, uint32_t{1}, std::string("forged"));
    send(skipped_atom::value, worker, id, uint32_t{1});
    send(done_atom::value, worker, id, uint32_t{1});
    send(failed_atom::value, caf::actor_addr{}, id, uint32_t{1}, failed);
  }
  // Handled in order before this request: none of them idled a worker.
  auto listed = node.workers();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0] == "node-a node-a/worker-1 busy t1");
  CHECK(listed[1] == "node-b node-b/worker-1 busy t2");
  // The real reports count: t3 goes to node-a once t1 is freed.
  node.report(freed_atom::value, "t1");
  REQUIRE(node.next_dispatch(e.self) == "t3");
  node.report(done_atom::value, "t1");
  node_b.report(done_atom::value, "t2");
  node.stored_and_freed("t3");
  node.report(done_atom::value, "t3");
  caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(node_b.dummy, caf::exit_reason::user_shutdown);
  auto s = node.summary();
  CHECK(s.completed == 3); // each once
  CHECK(s.quarantined == 0); // no forged permanent failure counted
  CHECK(s.exit_code == 0);
}

TEST_CASE("supervisor: a late report about a worker that died is not "
          "credited to the sibling that took the same attempt through the "
          "same gateway",
          "[unit][supervisor]") {
  supervisor_env e(std::vector<task>{scripted_task("t1")}, with_workers(0));
  e.self->send(e.sup, run_atom::value);
  // One node, two workers, one gateway (e.self).
  auto spawn_dummy = [&] {
    return e.sys.spawn(
      [](caf::event_based_actor* a, int) {
        a->set_default_handler(caf::drop);
        return caf::behavior{[](int) {}};
      },
      0);
  };
  caf::actor d1 = spawn_dummy(), d2 = spawn_dummy();
  auto w1 = caf::actor_cast<task_worker_actor>(d1);
  auto w2 = caf::actor_cast<task_worker_actor>(d2);
  REQUIRE(ask_for<bool>(e.self, e.sup, join_atom::value,
                        std::string("node-a"), std::string("127.0.0.1:1"),
                        std::vector<task_worker_actor>{w1, w2},
                        std::vector<std::string>{"node-a/worker-1",
                                                 "node-a/worker-2"}) ==
          std::optional<bool>(true));
  auto next_dispatch = [&](uint32_t want_attempt) {
    task_worker_actor to;
    e.self->receive(
      [&](dispatch_atom, const task_worker_actor& w, const task& t,
          uint32_t attempt) {
        CHECK(t.id == "t1");
        CHECK(attempt == want_attempt);
        to = w;
      },
      caf::after(std::chrono::seconds(30)) >> [] { FAIL("no dispatch"); });
    return to;
  };
  auto first = next_dispatch(1);
  REQUIRE((first == w1 || first == w2));
  auto second = first == w1 ? w2 : w1;
  // The first worker leaves with its node's shutdown: t1 goes back, with
  // the same attempt number, to its sibling through the same gateway.
  caf::anon_send_exit(first == w1 ? d1 : d2, caf::exit_reason::user_shutdown);
  REQUIRE(next_dispatch(1) == second);
  // A report the gateway had sent about the first worker arrives now.
  e.self->send(e.sup, failed_atom::value, first.address(), std::string("t1"),
               uint32_t{1}, make_failure(error_kind::permanent, "late"));
  e.self->send(e.sup, freed_atom::value, first.address(), std::string("t1"),
               uint32_t{1});
  auto listed = ask_for<std::vector<std::string>>(e.self, e.sup,
                                                  workers_atom::value);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().find(" busy t1") != std::string::npos);
  // The sibling's own reports end it.
  REQUIRE(mark(e.self, e.cp, running_atom::value, std::string("t1"),
               uint32_t{1}, uint64_t{0}, uint64_t{0}, 0.0, audit_event{},
               int64_t{0}));
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"s."})";
  REQUIRE(mark(e.self, e.cp, complete_atom::value, std::string("t1"),
               uint32_t{1}, out, usage{}, audit_event{}, uint64_t{0},
               int64_t{0}));
  e.self->send(e.sup, freed_atom::value, second.address(), std::string("t1"),
               uint32_t{1});
  e.self->send(e.sup, done_atom::value,
               std::vector<mark_answer>{mark_answer{"t1", 1, true, true, 0}});
  caf::anon_send_exit(first == w1 ? d2 : d1, caf::exit_reason::user_shutdown);
  auto s = stand_in_node::summary_of(e);
  CHECK(s.completed == 1);
  CHECK(s.quarantined == 0); // the late permanent failure was not counted
  CHECK(s.exit_code == 0);
}

TEST_CASE("supervisor: a gateway's answers of one commit come in one "
          "message: each freed attempt settled once, done or skipped",
          "[unit][supervisor]") {
  three_tasks_one_node run;
  auto& e = run.e;
  auto& node = run.node;
  REQUIRE(node.next_dispatch(e.self) == "t1");
  node.stored_and_freed("t1");
  REQUIRE(node.next_dispatch(e.self) == "t2");
  node.stored_and_freed("t2");
  REQUIRE(node.next_dispatch(e.self) == "t3");
  // One commit's answers, as the gateway sends them (as itself): t1 done,
  // t2 stale (nothing written), and t1 again (a stale repeat).
  e.self->send(e.sup, done_atom::value,
               std::vector<mark_answer>{
                 mark_answer{"t1", 1, true, true, 0},
                 mark_answer{"t2", 1, true, false, 0},
                 mark_answer{"t1", 1, true, true, 0}});
  // Neither touched the worker, busy with t3.
  auto listed = node.workers();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == "node-a node-a/worker-1 busy t3");
  node.stored_and_freed("t3");
  // An answer for an attempt that was never freed settles nothing.
  e.self->send(e.sup, done_atom::value,
               std::vector<mark_answer>{mark_answer{"t9", 1, true, true, 0},
                                        mark_answer{"t3", 1, true, true, 0}});
  caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
  auto s = node.summary();
  CHECK(s.completed == 2); // t1 and t3, each once; t2 skipped
  CHECK(s.exit_code == 0);
}

TEST_CASE("supervisor: while paused, a worker that finishes takes nothing, "
          "a queued task cancelled meanwhile never runs, and resume dispatches "
          "again",
          "[unit][supervisor]") {
  three_tasks_one_node run;
  auto& e = run.e;
  auto& node = run.node;
  REQUIRE(node.next_dispatch(e.self) == "t1"); // t2, t3 queued
  REQUIRE(ask_for<bool>(e.self, e.sup, pause_atom::value));
  auto cancelled = ask_for<std::vector<std::string>>(
    e.self, e.sup, cancel_atom::value, std::vector<std::string>{"t3"},
    make_event("task_cancelled", "t3", -1, "by the test"));
  REQUIRE(cancelled);
  CHECK(*cancelled == std::vector<std::string>{"t3"});
  node.store_completed("t1");
  node.report(done_atom::value, "t1");
  // Handled in order: the done, then the workers request. Had the done
  // dispatched t2, the worker would be listed busy with it.
  auto listed = node.workers();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == "node-a node-a/worker-1 idle");
  REQUIRE(ask_for<bool>(e.self, e.sup, resume_atom::value));
  REQUIRE(node.next_dispatch(e.self) == "t2");
  node.store_completed("t2");
  node.report(done_atom::value, "t2");
  // Had t3 stayed queued, it would be dispatched now and the run would not
  // end without its report.
  caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
  auto s = node.summary();
  CHECK(s.completed == 2);
  CHECK(s.store.cancelled == 1);
  CHECK(s.store.pending == 0);
}

TEST_CASE("supervisor: when a node's gateway ends, the answers it was "
          "storing are not waited for and the run ends, and no other actor "
          "settles them",
          "[unit][supervisor]") {
  std::vector<task> tasks{scripted_task("t1")};
  supervisor_env e(tasks, with_workers(0));
  e.self->send(e.sup, run_atom::value);
  caf::scoped_actor stranger{e.sys};
  run_summary s;
  {
    caf::scoped_actor gateway{e.sys};
    stand_in_node node(e, gateway);
    e.self->send(e.sup, watch_atom::value,
                 caf::actor_cast<caf::actor>(gateway),
                 std::string("node-a's gateway"));
    REQUIRE(node.next_dispatch(gateway) == "t1");
    node.store_completed("t1");
    node.report(freed_atom::value, "t1");
    // Another actor's done for it, in both shapes: not counted.
    stranger->send(e.sup, done_atom::value,
                   std::vector<mark_answer>{
                     mark_answer{"t1", 1, true, true, 0}});
    stranger->send(e.sup, done_atom::value, node.worker.address(),
                   std::string("t1"), uint32_t{1});
    // The worker is idle, t1's answer is stored, and its done never comes:
    // the run waits for it while the gateway lives.
    auto listed = node.workers();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0] == "node-a node-a/worker-1 idle");
    caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
  } // the gateway ends here
  s = stand_in_node::summary_of(e);
  CHECK(s.completed == 0); // never reported done (the stranger's: 1)
  CHECK(s.store.completed == 1); // but stored
  CHECK(s.exit_code == 0);
}

namespace {

// In front of the checkpointer: passes every message on, but holds the
// answer to the second fetch, read at once, until the test releases it
// (as a store reader's answer read before a commit can arrive after it).
struct fetch_holder_state {
  int fetches = 0;
  caf::typed_response_promise<std::vector<task>> held;
  std::vector<task> answer;
  bool read = false;
};

caf::behavior fetch_holder(caf::stateful_actor<fetch_holder_state>* self,
                           checkpointer_actor cp) {
  auto store = caf::actor_cast<caf::actor>(cp);
  self->set_default_handler(
    [self, store](caf::scheduled_actor*,
                  caf::message_view& x) -> caf::result<caf::message> {
      auto msg = x.move_content_to_message();
      if (self->current_message_id().is_request())
        return self->delegate(store, std::move(msg));
      self->send(store, std::move(msg));
      return caf::message{};
    });
  return {
    [self, cp](fetch_atom a, int64_t priority, int64_t seq, uint32_t n)
      -> caf::result<std::vector<task>> {
      if (++self->state.fetches != 2)
        return self->delegate(cp, a, priority, seq, n);
      self->state.held = self->make_response_promise<std::vector<task>>();
      self->request(cp, caf::infinite, a, priority, seq, n)
        .then([self](std::vector<task>& ts) {
          self->state.answer = std::move(ts);
          self->state.read = true;
        });
      return self->state.held;
    },
    // -> whether the second fetch was read (then its answer is sent)
    [self](release_atom) {
      if (!self->state.read)
        return false;
      self->state.held.deliver(std::move(self->state.answer));
      return true;
    },
    // -> the ids of the held answer (none until it is read)
    [self](fetch_atom) {
      std::vector<std::string> ids;
      for (auto& t : self->state.answer)
        ids.push_back(t.id);
      return ids;
    },
  };
}

} // namespace

TEST_CASE("supervisor: a fetch read before a task completed and answered "
          "after does not bring that task back",
          "[unit][supervisor]") {
  auto ss = with_workers(0);
  ss.follow = true; // polls the store again while t1 runs
  ss.poll_interval_seconds = 0.02;
  caf::actor holder;
  supervisor_env e{std::vector<task>{scripted_task("t1")}, ss, 1000000,
                   [&](checkpointer_actor cp) {
                     holder = e.sys.spawn(fetch_holder, cp);
                     return caf::actor_cast<checkpointer_actor>(holder);
                   }};
  e.self->send(e.sup, run_atom::value);
  stand_in_node node{e, e.self};
  REQUIRE(node.next_dispatch(e.self) == "t1");
  // The next poll's fetch is read while t1 is still pending in the store
  // (its running mark not yet stored): its answer holds t1.
  std::vector<std::string> ids;
  REQUIRE(wait_until(
    [&] {
      auto got = ask_for<std::vector<std::string>>(e.self, holder,
                                                   fetch_atom::value);
      if (!got || got->empty())
        return false;
      ids = *got;
      return true;
    },
    30));
  REQUIRE(ids == std::vector<std::string>{"t1"});
  // t1 completes, and the supervisor hears of it, before that answer.
  node.stored_and_freed("t1");
  e.self->send(e.sup, done_atom::value,
               std::vector<mark_answer>{mark_answer{"t1", 1, true, true, 0}});
  auto listed = node.workers(); // after the done: handled in order
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == "node-a node-a/worker-1 idle");
  REQUIRE(ask_for<bool>(e.self, holder, release_atom::value) ==
          std::optional<bool>(true));
  // Handled before this request (sent after the answer): t1 was not taken
  // from it, so the only worker is still idle, not busy with t1 again.
  listed = node.workers();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == "node-a node-a/worker-1 idle");
  CHECK(e.records()["t1"].state == "completed");
  caf::anon_send_exit(node.dummy, caf::exit_reason::user_shutdown);
}
