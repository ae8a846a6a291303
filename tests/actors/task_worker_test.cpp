// A task worker through its messages, with a tiny in-test provider and the
// real head side (node gateway, budget_keeper, checkpointer, auditor):
// dispatch through the gateway -> begin (reserve + mark running) -> call ->
// finish (store the result and the usage) -> the supervisor is told.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include <caf/scheduler/test_coordinator.hpp>
#include <nlohmann/json.hpp>

#include "actors/auditor.hpp"
#include "actors/budget_keeper.hpp"
#include "actors/checkpointer.hpp"
#include "actors/head_handles.hpp"
#include "actors/node_gateway.hpp"
#include "actors/task_worker.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/worker_context.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

enum class mode { answer, fail, never, boom };

// Answers at once (from the calling thread), fails, never answers, or
// throws. Priced so cost budgets see real figures.
class unit_provider : public provider {
public:
  explicit unit_provider(mode m) : provider(model_price{1000, 2000}), m_(m) {}
  std::string name() const override { return "unit"; }
  std::string model() const override { return "unit-model"; }
  uint64_t start(const llm_request& req, completion done) override {
    switch (m_) {
      case mode::answer: {
        call_outcome out;
        out.ok = true;
        out.result = "{\"summary\":\"" + req.task_id + "\"}";
        out.prompt_tokens = 10;
        out.completion_tokens = 5;
        out.cost_usd = 0.02;
        out.usage_reported = true;
        out.provider = name();
        out.model = model();
        done(out);
        break;
      }
      case mode::fail: {
        auto out = make_failure(error_kind::retryable, "HTTP 503: busy", 503);
        out.provider = name();
        done(out);
        break;
      }
      case mode::never:
        break;
      case mode::boom:
        throw std::runtime_error("unit provider exploded");
    }
    return 1;
  }

private:
  mode m_;
};

struct worker_env : actor_env {
  temp_dir dir;
  std::string db = dir.path("unit.db");
  recorder_ptr sup = std::make_shared<recorder>();
  recorder_ptr mon = std::make_shared<recorder>();
  probe_handle sup_probe = spawn_probe(sys, sup);
  std::string audit_log = dir.path("audit.jsonl");
  auditor_actor auditor = spawn_auditor(sys, audit_log);
  probe_handle mon_probe = spawn_probe(sys, mon);
  checkpointer_actor cp = spawn_checkpointer(
    sys, std::make_unique<store>(db, store::open_mode::create_if_missing),
    auditor);
  budget_keeper_actor keeper;
  node_gateway_actor gateway;
  task_worker_actor worker;
  task t;

  worker_env(mode m, uint64_t token_limit = 100000, double timeout = 60) {
    budget_settings bs;
    bs.token_limit = token_limit;
    bs.cost_limit = 10;
    keeper = spawn_budget_keeper(sys, bs, cp, auditor, mon_probe);
    self->send(cp, attach_atom::value, keeper); // settles reservations
    t.id = "w1";
    t.type = "summarize";
    t.input = "One sentence to summarise. Another one.";
    t.idempotency_key = "key-w1";
    t.max_tokens = 64;
    REQUIRE(ask_for<submit_report>(self, cp, submit_atom::value,
                                   std::vector<task>{t}));
    REQUIRE(ask_for<run_info>(self, cp, open_run_atom::value, token_limit,
                              10.0));
    worker_settings ws;
    ws.name = "head/worker-1";
    ws.timeout_seconds = timeout;
    ws.heartbeat_seconds = 0.05;
    // The head's half of each attempt: the local node gateway.
    gateway = spawn_node_gateway(
      sys, head_handles{sup_probe, keeper, cp, auditor, mon_probe, counters, {}, {}},
      gateway_settings{});
    worker = spawn_task_worker(sys, worker_context{gateway},
                               std::make_shared<unit_provider>(m), ws);
  }
  std::shared_ptr<call_counters> counters = std::make_shared<call_counters>();
  ~worker_env() {
    exit_all(self, worker, gateway, keeper, cp, sup_probe, auditor, mon_probe);
  }
  void dispatch(uint32_t attempt = 1) {
    // As the supervisor does: through the worker's gateway.
    caf::send_as(sup_probe.actor(), gateway, dispatch_atom::value, worker, t,
                 attempt);
  }
  budget_snapshot budget() {
    auto b = ask_for<budget_snapshot>(self, keeper, budget_atom::value);
    REQUIRE(b);
    return *b;
  }
  std::string state() {
    auto rows = task_rows(db);
    auto b = rows.find('|') + 1;
    return rows.substr(b, rows.find('|', b) - b);
  }
  // The audit log as written (committed through the store first).
  std::vector<nlohmann::json> audit_lines() {
    REQUIRE(ask_for<flush_atom>(self, auditor, flush_atom::value));
    return read_jsonl(audit_log);
  }
  std::vector<std::string> audit_names() {
    std::vector<std::string> out;
    for (auto& j : audit_lines())
      out.push_back(j["event"]);
    return out;
  }
  nlohmann::json first_event(const std::string& name) {
    for (auto& j : audit_lines())
      if (j["event"] == name)
        return j;
    FAIL("no " << name << " event");
    return {};
  }
};

} // namespace

TEST_CASE("task_worker: a successful attempt reserves, runs, commits, reports",
          "[unit][task_worker]") {
  worker_env e(mode::answer);
  e.dispatch();
  REQUIRE(e.sup->wait_atom<done_atom>());
  // The worker was freed when its answer went to the store, before done.
  REQUIRE(e.sup->with_atom<freed_atom>().size() == 1);
  // Each report names the worker the attempt was handed to.
  auto freed = e.sup->with_atom<freed_atom>()[0];
  CHECK(freed.get_as<caf::actor_addr>(1) == e.worker.address());
  CHECK(freed.get_as<std::string>(2) == "w1");
  // Done comes with the other completions of its commit, in one message.
  auto done = e.sup->with_atom<done_atom>()[0];
  REQUIRE(done.match_elements<done_atom, std::vector<mark_answer>>());
  auto& answers = done.get_as<std::vector<mark_answer>>(1);
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].id == "w1");
  CHECK(answers[0].attempt == 1);
  CHECK(answers[0].completion);
  CHECK(answers[0].written);
  // Durable before it was reported.
  CHECK(e.state() == "completed");
  auto b = e.budget();
  CHECK(b.tokens_used == 15); // the provider's usage, not the reservation
  CHECK(b.cost_used == Approx(0.02));
  CHECK(b.tokens_reserved == 0);
  CHECK(b.grants == 1);
  CHECK(sql_int(e.db, "SELECT prompt_tokens + completion_tokens FROM "
                      "usage_ledger WHERE task_id = 'w1'") == 15);
  // The grant is written in task_started (the keeper audits only grants
  // it scaled up).
  auto names = e.audit_names();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"task_completed", "task_started"});
  auto started = e.first_event("task_started");
  CHECK(started["detail"].get<std::string>().find(", reserved ") !=
        std::string::npos);
  auto completed = e.first_event("task_completed");
  CHECK(completed["attempt"] == 1);
  CHECK(completed["node"] == "head");
  CHECK(completed["detail"].get<std::string>().find(
          "prompt_tokens=10 completion_tokens=5") == 0);
  // The call was counted up and down (no message: the run's counters);
  // heartbeats ended idle.
  REQUIRE(wait_until(
    [&] {
      auto beats = e.mon->with_atom<heartbeat_atom>();
      return !beats.empty() && !beats.back().get_as<bool>(2);
    },
    30));
  metrics_snapshot m;
  e.counters->fill(m);
  CHECK(m.in_flight == 0);
  CHECK(m.latency_count == 1);
  CHECK(e.mon->with_atom<calls_atom>().empty());
  // The worker is idle again and takes the next dispatch (attempt fencing
  // makes the store refuse a completed task: skipped).
  e.dispatch(2);
  REQUIRE(e.sup->wait_atom<skipped_atom>());
  CHECK(e.sup->with_atom<skipped_atom>()[0].get_as<caf::actor_addr>(1) ==
        e.worker.address());
  CHECK(e.budget().tokens_reserved == 0);
}

TEST_CASE("task_worker: a failed call is reported, not stored as done",
          "[unit][task_worker]") {
  worker_env e(mode::fail);
  e.dispatch();
  REQUIRE(e.sup->wait_atom<failed_atom>());
  auto f = e.sup->with_atom<failed_atom>()[0];
  CHECK(f.get_as<caf::actor_addr>(1) == e.worker.address());
  CHECK(f.get_as<std::string>(2) == "w1");
  CHECK(f.get_as<uint32_t>(3) == 1);
  auto& out = f.get_as<call_outcome>(4);
  CHECK_FALSE(out.ok);
  CHECK(out.error_class() == error_kind::retryable);
  CHECK(out.http_status == 503);
  CHECK(e.state() == "running"); // the supervisor decides what comes next
  auto b = e.budget();
  CHECK(b.tokens_reserved == 0);
  CHECK(b.tokens_used == 0); // no usage reported for a refused call
  auto names = e.audit_names();
  CHECK(std::count(names.begin(), names.end(), "task_failed") == 1);
  CHECK(e.first_event("task_failed")["detail"] ==
        "retryable: HTTP 503: busy");
  CHECK(e.sup->with_atom<done_atom>().empty());
}

TEST_CASE("task_worker: a budget denial leaves the task pending",
          "[unit][task_worker]") {
  worker_env e(mode::answer, 20); // far less than the worst case
  e.dispatch();
  REQUIRE(e.sup->wait_atom<denied_atom>());
  auto d = e.sup->with_atom<denied_atom>()[0];
  CHECK(d.get_as<caf::actor_addr>(1) == e.worker.address());
  CHECK(d.get_as<std::string>(2) == "w1");
  CHECK(d.get_as<std::string>(4).find("token budget") != std::string::npos);
  CHECK(e.state() == "pending"); // never marked running
  CHECK(e.budget().tokens_used == 0);
  auto names = e.audit_names();
  CHECK(std::find(names.begin(), names.end(), "task_started") == names.end());
}

TEST_CASE("task_worker: an attempt that does not answer in time fails as a "
          "timeout and is charged its reservation",
          "[unit][task_worker]") {
  worker_env e(mode::never, 100000, 0.2);
  e.dispatch();
  REQUIRE(e.sup->wait_atom<failed_atom>());
  auto& out = e.sup->with_atom<failed_atom>()[0].get_as<call_outcome>(4);
  CHECK(out.error == "timed out after 0.2 s (BG_AGENT_TIMEOUT)");
  CHECK(out.error_class() == error_kind::retryable);
  auto b = e.budget();
  CHECK(b.tokens_reserved == 0);
  CHECK(b.tokens_used > 64); // estimated prompt + max_tokens
  REQUIRE(wait_until(
    [&] {
      return sql_int(e.db, "SELECT COUNT(*) FROM usage_ledger") == 1;
    },
    30));
}

TEST_CASE("task_worker: a provider that throws kills the worker, and its "
          "reservation is charged when the task moves on, never released",
          "[unit][task_worker]") {
  worker_env e(mode::boom);
  e.self->monitor(e.worker);
  e.dispatch();
  std::string reason;
  e.self->receive(
    [&](caf::down_msg& dm) { reason = to_string(dm.reason); },
    caf::after(std::chrono::seconds(30)) >> [] {});
  CHECK(reason.find("unit provider exploded") != std::string::npos);
  // The call may have reached the provider: the reservation stays held...
  auto held = e.budget().tokens_reserved;
  CHECK(held > 64);
  CHECK(e.budget().tokens_used == 0);
  CHECK(e.sup->with_atom<done_atom>().empty());
  CHECK(e.sup->with_atom<failed_atom>().empty());
  CHECK(e.state() == "running"); // the supervisor counts the attempt
  // ...until the supervisor moves the task on: then it is charged whole.
  REQUIRE(ask_for<bool>(e.self, e.cp, retry_atom::value, std::string("w1"),
                        uint32_t{1}, std::string("worker died"),
                        make_event("task_retry_scheduled", "w1", 1,
                                   "worker died"),
                        false));
  REQUIRE(wait_until([&] { return e.budget().tokens_reserved == 0; }, 30));
  CHECK(e.budget().tokens_used == held);
  auto charged = e.first_event("budget_charged");
  CHECK(charged["task_id"] == "w1");
}

namespace {

// Answers a call only when the test says so.
class held_provider : public provider {
public:
  held_provider() : provider(model_price{1000, 2000}) {}
  std::string name() const override { return "unit"; }
  std::string model() const override { return "unit-model"; }
  uint64_t start(const llm_request&, completion done) override {
    calls.push_back(std::move(done));
    return calls.size();
  }
  void answer(size_t call) {
    call_outcome out;
    out.ok = true;
    out.result = "{\"summary\":\"ok\"}";
    out.prompt_tokens = 10;
    out.completion_tokens = 5;
    out.usage_reported = true;
    out.http_status = 200;
    calls.at(call)(out);
  }
  std::vector<completion> calls;
};

// The worker's half of a gateway: every begin may go; finishes are kept.
struct finished_call {
  std::string id;
  call_outcome out;
};

node_gateway_actor::behavior_type
go_gateway(node_gateway_actor::pointer,
           std::shared_ptr<std::vector<finished_call>> finished) {
  return {
    [](dispatch_atom, const task_worker_actor&, task&, uint32_t) {},
    [](begin_atom, const std::string&, uint32_t, uint64_t, uint64_t, double,
       const std::string&, bool) { return begin_answer::go; },
    [finished](finish_atom, const std::string& id, uint32_t,
               const call_outcome& out, bool, double) {
      finished->push_back(finished_call{id, out});
    },
    [](marks_atom, std::vector<mark_answer>&) {},
    [](heartbeat_atom, const std::string&, bool, const std::string&) {},
    [](join_atom, const std::vector<task_worker_actor>&,
       const std::vector<std::string>&) { return false; },
  };
}

// One worker on simulated time, with a 10 s BG_AGENT_TIMEOUT.
struct sim_worker {
  sim_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<held_provider> prov = std::make_shared<held_provider>();
  std::shared_ptr<std::vector<finished_call>> finished =
    std::make_shared<std::vector<finished_call>>();
  node_gateway_actor gateway = sys.spawn(go_gateway, finished);
  task_worker_actor worker;
  sim_worker() {
    worker_settings ws;
    ws.name = "head/worker-1";
    ws.timeout_seconds = 10;
    ws.heartbeat_seconds = 1000; // its tick: one more timer, far away
    worker = spawn_task_worker(sys, worker_context{gateway}, prov, ws);
    sched.run();
  }
  ~sim_worker() {
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    sched.run();
  }
  void dispatch(const std::string& id) {
    task t;
    t.id = id;
    t.type = "summarize";
    t.input = "One sentence to summarise.";
    t.max_tokens = 64;
    caf::anon_send(worker, dispatch_atom::value, t, uint32_t{1});
    sched.run();
  }
  void advance(std::chrono::milliseconds d) {
    sched.advance_time(d);
    sched.run();
  }
  size_t timers() const { return sched.clock().schedule().size(); }
};

} // namespace

TEST_CASE("task_worker: a thousand calls leave one deadline timer pending, "
          "and each call still times out at its own deadline",
          "[unit][task_worker]") {
  using std::chrono::milliseconds;
  sim_worker e;
  // Back to back, 1 s each: the calls span 100 timeouts' worth of time.
  for (size_t i = 0; i < 1000; ++i) {
    e.dispatch("c" + std::to_string(i));
    REQUIRE(e.prov->calls.size() == i + 1);
    // The heartbeat tick and one deadline timer; a timer per call would
    // leave the last ten calls' timers here.
    REQUIRE(e.timers() == 2);
    e.advance(milliseconds(1000));
    e.prov->answer(i);
    e.sched.run();
    REQUIRE(e.finished->size() == i + 1);
    REQUIRE(e.finished->back().out.ok);
  }
  // A call that never answers, started between two firings of the timer:
  // it fails 10 s after it started, not when the earlier timer was due.
  e.advance(milliseconds(500));
  e.dispatch("slow");
  // A stray timeout message (no deadline reached) changes nothing.
  caf::anon_send(e.worker, timeout_atom::value);
  e.sched.run();
  e.advance(milliseconds(9999));
  CHECK(e.finished->size() == 1000);
  e.advance(milliseconds(1));
  REQUIRE(e.finished->size() == 1001);
  CHECK(e.finished->back().id == "slow");
  CHECK(e.finished->back().out.error ==
        "timed out after 10 s (BG_AGENT_TIMEOUT)");
  // Its answer, after the timeout, is dropped; no timer is left for it.
  e.prov->answer(1000);
  e.sched.run();
  e.advance(milliseconds(20000));
  CHECK(e.finished->size() == 1001);
  CHECK(e.timers() == 1); // the heartbeat tick alone
}
