// The monitor through its messages: dead man's switch over heartbeats,
// failure escalation, alerts to the JSONL file and the auditor, metrics.
#include <catch2/catch.hpp>

#include <thread>

#include <caf/scheduler/test_coordinator.hpp>

#include "actors/monitor.hpp"
#include "messages/run.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

struct monitor_env : actor_env {
  temp_dir dir;
  recorder_ptr audit = std::make_shared<recorder>();
  probe_handle audit_probe = spawn_probe(sys, audit);
  monitor_actor mon;
  explicit monitor_env(double deadman = 60, uint32_t escalate = 3) {
    monitor_settings s;
    s.alerts_path = dir.path("alerts.jsonl");
    s.deadman_seconds = deadman;
    s.escalate_after = escalate;
    s.run_label = "7";
    mon = spawn_monitor(sys, s, audit_probe);
  }
  ~monitor_env() {
    self->send_exit(mon, caf::exit_reason::user_shutdown);
    exit_all(self, audit_probe);
  }
  // Alerts handled so far are in the file and with the auditor probe.
  void settle() {
    REQUIRE(ask_for<flush_atom>(self, mon, flush_atom::value));
    REQUIRE(ask_for<flush_atom>(self, audit_probe, flush_atom::value));
  }
  std::vector<nlohmann::json> alerts(const std::string& kind) {
    std::vector<nlohmann::json> out;
    for (auto& j : read_jsonl(dir.path("alerts.jsonl")))
      if (j["kind"] == kind)
        out.push_back(j);
    return out;
  }
  void beat(const std::string& source, bool busy, const std::string& task) {
    self->send(mon, heartbeat_atom::value, source, busy, task);
  }
  void outcome(outcome_kind what, const std::string& task) {
    self->send(mon, outcome_atom::value, what, task);
  }
};

} // namespace

namespace {

// The monitor on CAF's test coordinator (sim_config): the dead man's
// switch is tested to the tick.

struct sim_monitor {
  temp_dir dir;
  sim_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  recorder_ptr audit = std::make_shared<recorder>();
  probe_handle audit_probe = spawn_probe(sys, audit);
  monitor_actor mon;
  explicit sim_monitor(double deadman) {
    monitor_settings s;
    s.alerts_path = dir.path("alerts.jsonl");
    s.deadman_seconds = deadman;
    s.run_label = "7";
    mon = spawn_monitor(sys, s, audit_probe);
    sched.run();
  }
  ~sim_monitor() {
    caf::anon_send_exit(mon, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(audit_probe.actor(), caf::exit_reason::user_shutdown);
    sched.run();
  }
  void beat(const std::string& source, bool busy, const std::string& task) {
    caf::anon_send(mon, heartbeat_atom::value, source, busy, task);
    sched.run();
  }
  // Moves the simulated clock on in steps of 10 ms, firing every timer due
  // and running what they cause.
  void advance(double seconds) {
    for (int i = 0; i < static_cast<int>(seconds * 100 + 0.5); ++i) {
      sched.advance_time(std::chrono::milliseconds(10));
      sched.run();
    }
  }
  std::vector<nlohmann::json> dead_mans_switch() {
    std::vector<nlohmann::json> out;
    for (auto& j : read_jsonl(dir.path("alerts.jsonl")))
      if (j["kind"] == "dead_mans_switch")
        out.push_back(j);
    return out;
  }
};

} // namespace

TEST_CASE("monitor: a busy source that stops beating trips the dead man's "
          "switch once per silence",
          "[unit][monitor]") {
  sim_monitor e(0.3);
  e.beat("head/worker-1", true, "t1");
  e.beat("head/worker-2", true, "t2");
  e.beat("head/worker-2", false, ""); // went idle: no longer watched
  e.advance(0.25);
  CHECK(e.dead_mans_switch().empty()); // inside the window
  e.advance(0.2);
  auto dms = e.dead_mans_switch();
  REQUIRE(dms.size() == 1);
  CHECK(dms[0]["severity"] == "critical");
  CHECK(dms[0]["task_id"] == "t1");
  CHECK(dms[0]["run"] == "7");
  CHECK(dms[0]["message"].get<std::string>().find("head/worker-1 sent no "
                                                  "heartbeat") == 0);
  auto ev = e.audit->events("alert");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].task_id == "t1");
  CHECK(ev[0].detail.find("critical dead_mans_switch") == 0);
  e.advance(5); // the same silence: no second alert
  CHECK(e.dead_mans_switch().size() == 1);

  // Beating again re-arms it; a second silence is a second alert.
  e.beat("head/worker-1", true, "t3");
  e.advance(0.25);
  CHECK(e.dead_mans_switch().size() == 1);
  e.advance(0.2);
  dms = e.dead_mans_switch();
  REQUIRE(dms.size() == 2);
  CHECK(dms[1]["task_id"] == "t3");
}

TEST_CASE("monitor: sources that keep beating raise nothing",
          "[unit][monitor]") {
  sim_monitor e(2.0);
  for (int i = 0; i < 30; ++i) { // 3 s of beats, 100 ms apart
    e.beat("supervisor", true, "");
    e.advance(0.1);
  }
  e.beat("supervisor", false, ""); // idle: silence is fine now
  e.advance(10);
  CHECK(e.dead_mans_switch().empty());
  CHECK(e.audit->events("alert").empty());
  // The check: the same source silent while busy does trip it.
  e.beat("supervisor", true, "");
  e.advance(2.5);
  CHECK(e.dead_mans_switch().size() == 1);
}

TEST_CASE("monitor: consecutive failures escalate once until a completion",
          "[unit][monitor]") {
  monitor_env e(60, 3);
  e.outcome(outcome_kind::failed, "a");
  e.outcome(outcome_kind::failed, "b");
  e.outcome(outcome_kind::completed, "c"); // resets the streak
  e.outcome(outcome_kind::failed, "d");
  e.outcome(outcome_kind::failed, "e");
  e.settle();
  CHECK(e.alerts("failure_escalation").empty());
  e.outcome(outcome_kind::failed, "f"); // third in a row
  e.outcome(outcome_kind::failed, "g");
  e.outcome(outcome_kind::failed, "h");
  e.settle();
  auto esc = e.alerts("failure_escalation");
  REQUIRE(esc.size() == 1);
  CHECK(esc[0]["severity"] == "critical");
  CHECK(esc[0]["task_id"] == "f");
  CHECK(esc[0]["message"] == "3 consecutive failed attempts, last on task f");
  e.outcome(outcome_kind::completed, "i");
  for (auto id : {"j", "k", "l"})
    e.outcome(outcome_kind::failed, id);
  e.settle();
  CHECK(e.alerts("failure_escalation").size() == 2);
}

TEST_CASE("monitor: alerts go to the file and the auditor and metrics add up",
          "[unit][monitor]") {
  monitor_env e;
  e.self->send(e.mon, alert_atom::value,
               alert{severity::warning, "budget_alarm", "token budget 50% used", ""});
  e.self->send(e.mon, workers_atom::value, uint64_t{4}, uint64_t{1});
  e.outcome(outcome_kind::completed, "a");
  e.outcome(outcome_kind::completed, "b");
  e.outcome(outcome_kind::failed, "c");
  e.outcome(outcome_kind::retry, "c");
  e.outcome(outcome_kind::quarantined, "c");
  e.outcome(outcome_kind::restart, "c");
  e.self->send(e.mon, calls_atom::value, int64_t{1}, 0.0);
  e.self->send(e.mon, calls_atom::value, int64_t{1}, 0.0);
  e.self->send(e.mon, calls_atom::value, int64_t{-1}, 0.02);
  budget_snapshot b;
  b.tokens_used = 123;
  b.tokens_limit = 1000;
  e.self->send(e.mon, budget_atom::value, b);
  auto m = ask_for<metrics_snapshot>(e.self, e.mon, metrics_atom::value);
  REQUIRE(m);
  CHECK(m->completed == 2);
  CHECK(m->failed_attempts == 1);
  CHECK(m->retries == 1);
  CHECK(m->quarantined == 1);
  CHECK(m->restarts == 1);
  CHECK(m->in_flight == 1);
  CHECK(m->workers == 4);
  CHECK(m->nodes == 1);
  CHECK(m->alerts == 1);
  CHECK(m->budget.tokens_used == 123);
  CHECK(m->latency_count == 1);
  CHECK(m->latency_sum_seconds == Approx(0.02));
  REQUIRE(m->latency_buckets.size() == latency_bucket_bounds().size());
  CHECK(m->latency_buckets[0] == 0); // 5 ms
  CHECK(m->latency_buckets[2] == 1); // 25 ms, cumulative from there
  CHECK(m->latency_buckets.back() == 1);

  e.settle();
  auto lines = read_jsonl(e.dir.path("alerts.jsonl"));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["severity"] == "warning");
  CHECK(lines[0]["kind"] == "budget_alarm");
  CHECK(lines[0]["message"] == "token budget 50% used");
  CHECK(lines[0]["ts"].is_string());
  CHECK(lines[0]["run"] == "7");
  auto ev = e.audit->events("alert");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].detail == "warning budget_alarm: token budget 50% used");
}
