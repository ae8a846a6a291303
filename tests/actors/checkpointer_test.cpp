// The checkpointer through its messages: submission, runs, fetch, fenced
// transitions, replies to writes only after their group commit, the audit
// outbox (events committed with their state change, then sent to the
// auditor in seq order) and reservations (stored with the running mark,
// settled by completion or failure, charged when abandoned).
#include <catch2/catch.hpp>

#include <thread>

#include "actors/checkpointer.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

call_outcome success() {
  call_outcome out;
  out.ok = true;
  out.result = "{\"summary\":\"done\"}";
  out.provider = "unit";
  out.model = "unit-model";
  out.prompt_tokens = 10;
  out.completion_tokens = 5;
  out.usage_reported = true;
  return out;
}

audit_event ev(const std::string& name, const std::string& id,
               uint32_t attempt, const std::string& detail = "") {
  return make_event(name, id, static_cast<int32_t>(attempt), detail);
}

std::string state_in_db(const std::string& db, const std::string& id) {
  auto rows = task_rows(db);
  auto p = rows.find(id + "|");
  if (p == std::string::npos)
    return {};
  auto b = p + id.size() + 1;
  return rows.substr(b, rows.find('|', b) - b);
}

// A checkpointer with probes standing in for the auditor and the budget
// keeper; the test plays the auditor's start-up (the catch-up request).
struct checkpointer_env : actor_env {
  temp_dir dir;
  std::string db = dir.path("unit.db");
  recorder_ptr audit = std::make_shared<recorder>();
  recorder_ptr keeper_rec = std::make_shared<recorder>();
  probe_handle audit_probe = spawn_probe(sys, audit);
  probe_handle keeper = spawn_probe(sys, keeper_rec);
  checkpointer_actor cp = spawn_checkpointer(
    sys, std::make_unique<store>(db, store::open_mode::create_if_missing),
    audit_probe);

  checkpointer_env() {
    REQUIRE(ask_for<std::vector<committed_event>>(
      self, cp, catch_up_atom::value, uint64_t{0}, uint32_t{1000}));
    self->send(cp, attach_atom::value,
               static_cast<budget_keeper_actor>(keeper));
  }
  ~checkpointer_env() {
    exit_all(self, cp, audit_probe, keeper);
  }
  void start(const std::vector<std::string>& ids) {
    std::vector<task> ts;
    for (auto& id : ids)
      ts.push_back(unit_task(id));
    REQUIRE(ask_for<submit_report>(self, cp, submit_atom::value, ts));
    REQUIRE(ask_for<run_info>(self, cp, open_run_atom::value,
                              uint64_t{100000}, 10.0));
  }
  bool running(const std::string& id, uint32_t attempt, uint64_t res,
               uint64_t tokens, double cost) {
    auto r = mark(self, cp, running_atom::value, id, attempt, res,
                           tokens, cost, ev("task_started", id, attempt),
                           int64_t{0});
    REQUIRE(r);
    return *r;
  }
  // Every event the auditor was sent, in the order sent.
  std::vector<committed_event> pushed() {
    std::vector<committed_event> out;
    for (auto& m : audit->messages())
      if (m.match_elements<std::vector<committed_event>>())
        for (auto& e : m.get_as<std::vector<committed_event>>(0))
          out.push_back(e);
    return out;
  }
  std::vector<committed_event> pushed(const std::string& name) {
    std::vector<committed_event> out;
    for (auto& e : pushed())
      if (e.event.event == name)
        out.push_back(e);
    return out;
  }
  bool wait_pushed(const std::string& name, size_t n) {
    return wait_until([&] { return pushed(name).size() >= n; }, 30);
  }
  // (reservation id, usage) of every commit the keeper was sent.
  std::vector<std::pair<uint64_t, usage>> commits() {
    std::vector<std::pair<uint64_t, usage>> out;
    for (auto& m : keeper_rec->with_atom<commit_atom>())
      if (m.match_elements<commit_atom, std::vector<settlement>>())
        for (auto& s : m.get_as<std::vector<settlement>>(1))
          out.emplace_back(s.reservation_id, s.spent);
    return out;
  }
  long long ledger(const std::string& where = "1") {
    return sql_int(db, "SELECT COALESCE(SUM(prompt_tokens + "
                       "completion_tokens), 0) FROM usage_ledger WHERE " +
                         where);
  }
  long long reserved(const std::string& id) {
    return sql_int(db, "SELECT reserved_tokens FROM tasks WHERE id = '" + id +
                         "'");
  }
  long long events(const std::string& name, const std::string& id = "") {
    return sql_int(db, "SELECT COUNT(*) FROM events WHERE event = '" + name +
                         "'" +
                         (id.empty() ? "" : " AND task_id = '" + id + "'"));
  }
};

} // namespace

TEST_CASE("checkpointer: submit is idempotent and fetch returns store order",
          "[unit][checkpointer]") {
  checkpointer_env e;
  std::vector<task> ts{unit_task("a"), unit_task("b"), unit_task("c")};
  auto rep = ask_for<submit_report>(e.self, e.cp, submit_atom::value, ts,
                                    std::string("f.jsonl"));
  REQUIRE(rep);
  CHECK(rep->error.empty());
  CHECK(rep->inserted == std::vector<std::string>{"a", "b", "c"});
  auto again = ask_for<submit_report>(e.self, e.cp, submit_atom::value,
                                      std::vector<task>{unit_task("a"),
                                                        unit_task("d")},
                                      std::string("g.jsonl"));
  REQUIRE(again);
  CHECK(again->inserted == std::vector<std::string>{"d"});
  CHECK(again->duplicates == std::vector<std::string>{"a"});
  // Audited with the submission, in its transaction.
  CHECK(e.events("task_submitted") == 4);
  CHECK(e.events("task_duplicate", "a") == 1);
  REQUIRE(e.wait_pushed("task_duplicate", 1));
  CHECK(e.pushed("task_submitted")[3].event.detail == "g.jsonl");

  fetch_cursor start;
  auto all = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                        start.priority, start.seq,
                                        uint32_t{10});
  REQUIRE(all);
  REQUIRE(all->size() == 4);
  CHECK((*all)[0].id == "a");
  CHECK((*all)[3].id == "d");
  // Paging by (priority, seq).
  auto rest = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                         (*all)[1].priority, (*all)[1].seq,
                                         uint32_t{1});
  REQUIRE(rest);
  REQUIRE(rest->size() == 1);
  CHECK((*rest)[0].id == "c");
}

const std::string no_answer; // a failure without an answer to repair

TEST_CASE("checkpointer: transitions are fenced by attempt",
          "[unit][checkpointer]") {
  checkpointer_env e;
  REQUIRE(ask_for<submit_report>(e.self, e.cp, submit_atom::value,
                                 std::vector<task>{unit_task("a"),
                                                   unit_task("b")}));
  auto run = ask_for<run_info>(e.self, e.cp, open_run_atom::value,
                               uint64_t{1000}, 1.0);
  REQUIRE(run);
  CHECK(run->id == 1);
  CHECK_FALSE(run->resumed);

  usage u{10, 5, 0.0};
  CHECK(e.running("a", 1, 0, 0, 0.0));
  CHECK(e.running("a", 2, 0, 0, 0.0));
  // Attempt 1 was superseded: it cannot complete.
  CHECK_FALSE(*mark(e.self, e.cp, complete_atom::value,
                             std::string("a"), uint32_t{1}, success(), u,
                             ev("task_completed", "a", 1), uint64_t{0},
                             int64_t{0}));
  CHECK(*mark(e.self, e.cp, complete_atom::value, std::string("a"),
                       uint32_t{2}, success(), u,
                       ev("task_completed", "a", 2), uint64_t{0},
                       int64_t{0}));
  // Never twice.
  CHECK_FALSE(*mark(e.self, e.cp, complete_atom::value,
                             std::string("a"), uint32_t{2}, success(), u,
                             ev("task_completed", "a", 2), uint64_t{0},
                       int64_t{0}));
  CHECK_FALSE(e.running("a", 3, 0, 0, 0.0));
  CHECK(e.events("task_completed", "a") == 1);
  CHECK(e.events("task_started", "a") == 2);

  // retry_wait, then quarantine, then requeue.
  CHECK(e.running("b", 1, 0, 0, 0.0));
  CHECK(*ask_for<bool>(e.self, e.cp, retry_atom::value, std::string("b"),
                       uint32_t{1}, std::string("flaky"),
                       ev("task_retry_scheduled", "b", 1, "flaky"), false));
  CHECK(state_in_db(e.db, "b") == "retry_wait");
  CHECK(*ask_for<bool>(e.self, e.cp, quarantine_atom::value, std::string("b"),
                       uint32_t{2}, std::string("gave up"),
                       ev("task_quarantined", "b", 2, "gave up")));
  auto st = ask_for<status_report>(e.self, e.cp, status_atom::value);
  REQUIRE(st);
  CHECK(st->tasks.completed == 1);
  CHECK(st->tasks.quarantined == 1);
  // The stale completion's tokens were billed too: in the ledger (its
  // reservation was never stored, so its reported usage is charged).
  CHECK(st->budget.tokens_used == 30);
  CHECK(e.events("budget_charged", "a") == 1);
  CHECK(st->run.id == 1);

  auto rows = ask_for<std::vector<task_record>>(e.self, e.cp,
                                                results_atom::value,
                                                std::string("quarantined"));
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].id == "b");
  CHECK((*rows)[0].attempts == 2);
  CHECK((*rows)[0].error == "gave up");

  auto back = ask_for<std::vector<std::string>>(
    e.self, e.cp, requeue_atom::value, std::vector<std::string>{}, true,
    make_event("task_requeued", {}, -1, "by a test"));
  REQUIRE(back);
  CHECK(*back == std::vector<std::string>{"b"});
  CHECK(state_in_db(e.db, "b") == "pending");
  auto gone = ask_for<std::vector<std::string>>(
    e.self, e.cp, cancel_atom::value, std::vector<std::string>{"b", "a"},
    make_event("task_cancelled", {}, -1, "by a test"));
  REQUIRE(gone);
  CHECK(*gone == std::vector<std::string>{"b"}); // a is completed
  CHECK(state_in_db(e.db, "b") == "cancelled");
  CHECK(e.events("task_retry_scheduled", "b") == 1);
  CHECK(e.events("task_quarantined", "b") == 1);
  CHECK(e.events("task_requeued", "b") == 1);
  CHECK(e.events("task_cancelled", "b") == 1);
  CHECK(e.events("task_cancelled", "a") == 0);
  // The auditor got every event, once, in seq order.
  REQUIRE(e.wait_pushed("task_cancelled", 1));
  auto all = e.pushed();
  CHECK(static_cast<long long>(all.size()) ==
        sql_int(e.db, "SELECT COUNT(*) FROM events"));
  for (size_t i = 0; i < all.size(); ++i)
    CHECK(all[i].seq == i + 1);
  // No reservation was stored, so the keeper settled nothing.
  CHECK(e.commits().empty());
}

TEST_CASE("checkpointer: a write is answered only once it is committed",
          "[unit][checkpointer]") {
  checkpointer_env e;
  std::vector<task> ts;
  for (int i = 0; i < 100; ++i)
    ts.push_back(unit_task("t" + std::to_string(i)));
  REQUIRE(ask_for<submit_report>(e.self, e.cp, submit_atom::value, ts));
  REQUIRE(ask_for<run_info>(e.self, e.cp, open_run_atom::value,
                            uint64_t{100000}, 1.0));
  // A burst of writes, answered a commit at a time (fewer than 100
  // messages): each answer must find its change visible to another
  // connection (so it is committed, not just in an open transaction).
  for (auto& t : ts)
    e.self->send(e.cp, running_atom::value, t.id, uint32_t{1}, uint64_t{0},
                 uint64_t{0}, 0.0, ev("task_started", t.id, 1), int64_t{0});
  // Takes the answers to `n` marks, checking at each message that its
  // answers are written and visible there (`visible`: rows and events
  // now in the store).
  auto take = [&](size_t n, auto visible) {
    std::vector<std::string> answered;
    bool durable = true;
    int messages = 0;
    bool waiting = true;
    while (waiting && answered.size() < n)
      e.self->receive(
        [&](marks_atom, std::vector<mark_answer>& answers) {
          ++messages;
          for (auto& m : answers) {
            answered.push_back(m.id);
            durable = durable && m.written;
          }
          durable = durable && visible() >= static_cast<int64_t>(
                                              answered.size());
        },
        caf::after(std::chrono::seconds(60)) >> [&] { waiting = false; });
    CHECK(answered.size() == n);
    CHECK(durable);
    CHECK(messages <= static_cast<int>(n));
    // Each mark answered once, the order of the requests kept.
    std::vector<std::string> asked;
    for (auto& t : ts)
      asked.push_back(t.id);
    CHECK(answered == asked);
  };
  take(100, [&] {
    return sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = 'running'");
  });
  CHECK(sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = 'running'") ==
        100);

  // The same for completion: completed is never reported before commit,
  // and its event is in the store by then.
  for (auto& t : ts)
    e.self->send(e.cp, complete_atom::value, t.id, uint32_t{1}, success(),
                 usage{10, 5, 0.0}, ev("task_completed", t.id, 1), uint64_t{0},
                 int64_t{0});
  take(100, [&] {
    return std::min(
      sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = 'completed'"),
      sql_int(e.db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_completed'"));
  });
  // Events reach the auditor only after their commit, in seq order.
  REQUIRE(e.wait_pushed("task_completed", 100));
  auto all = e.pushed();
  for (size_t i = 1; i < all.size(); ++i)
    CHECK(all[i].seq == all[i - 1].seq + 1);
}

TEST_CASE("checkpointer: a reservation is stored with the running mark and "
          "settled by the completion",
          "[unit][checkpointer][budget]") {
  checkpointer_env e;
  e.start({"a", "b"});
  CHECK(e.running("a", 1, 7, 300, 0.25));
  CHECK(e.reserved("a") == 300);
  CHECK(sql_int(e.db, "SELECT reservation_id FROM tasks WHERE id = 'a'") == 7);
  CHECK(sql_double(e.db, "SELECT reserved_cost FROM tasks WHERE id = 'a'") ==
        Approx(0.25));
  CHECK(e.events("task_started", "a") == 1);
  // May not run (already running at a later attempt): nothing written.
  CHECK(e.running("b", 2, 8, 100, 0.1));
  CHECK_FALSE(e.running("b", 1, 9, 100, 0.1));
  CHECK(e.events("task_started", "b") == 1);
  CHECK(sql_int(e.db, "SELECT reservation_id FROM tasks WHERE id = 'b'") == 8);

  usage u{120, 30, 0.02};
  CHECK(*mark(e.self, e.cp, complete_atom::value, std::string("a"),
                       uint32_t{1}, success(), u,
                       ev("task_completed", "a", 1, "done"), uint64_t{0},
                       int64_t{0}));
  CHECK(e.reserved("a") == 0);
  CHECK(sql_int(e.db, "SELECT reservation_id FROM tasks WHERE id = 'a'") == 0);
  CHECK(e.ledger("task_id = 'a'") == 150);
  CHECK(e.events("task_completed", "a") == 1);
  CHECK(e.events("budget_charged") == 0);
  REQUIRE(wait_until([&] { return e.commits().size() >= 1; }, 30));
  auto c = e.commits();
  REQUIRE(c.size() == 1);
  CHECK(c[0].first == 7);
  CHECK(c[0].second.total_tokens() == 150);
  CHECK(c[0].second.cost_usd == Approx(0.02));
}

TEST_CASE("checkpointer: a failed attempt settles its reservation by its "
          "usage",
          "[unit][checkpointer][budget]") {
  checkpointer_env e;
  e.start({"a", "b"});
  CHECK(e.running("a", 1, 11, 300, 0.25));
  CHECK(*ask_for<bool>(e.self, e.cp, usage_atom::value, std::string("a"),
                       uint32_t{1}, usage{40, 0, 0.01}, std::string("unit"),
                       std::string("m"),
                       ev("task_failed", "a", 1, "retryable: 500"),
                       no_answer, no_answer));
  CHECK(e.reserved("a") == 0);
  CHECK(state_in_db(e.db, "a") == "running"); // the supervisor decides
  CHECK(e.ledger("task_id = 'a'") == 40);
  CHECK(e.events("task_failed", "a") == 1);
  // Then the supervisor's retry: nothing left to charge.
  CHECK(*ask_for<bool>(e.self, e.cp, retry_atom::value, std::string("a"),
                       uint32_t{1}, std::string("500"),
                       ev("task_retry_scheduled", "a", 1, "retry in 1 s"),
                       false));
  CHECK(e.events("budget_charged") == 0);
  CHECK(e.ledger("task_id = 'a'") == 40);

  // Zero usage (never sent): no ledger row, the reservation released.
  CHECK(e.running("b", 1, 12, 300, 0.25));
  CHECK(*ask_for<bool>(e.self, e.cp, usage_atom::value, std::string("b"),
                       uint32_t{1}, usage{}, std::string("unit"),
                       std::string("m"),
                       ev("task_failed", "b", 1, "retryable: refused"),
                       no_answer, no_answer));
  CHECK(sql_int(e.db, "SELECT COUNT(*) FROM usage_ledger WHERE task_id = "
                      "'b'") == 0);
  CHECK(e.reserved("b") == 0);
  REQUIRE(wait_until([&] { return e.commits().size() >= 2; }, 30));
  auto c = e.commits();
  REQUIRE(c.size() == 2);
  CHECK(c[0].first == 11);
  CHECK(c[0].second.total_tokens() == 40);
  CHECK(c[1].first == 12);
  CHECK(c[1].second.total_tokens() == 0);
}

TEST_CASE("checkpointer: an abandoned call is charged at its reservation "
          "when its task leaves running",
          "[unit][checkpointer][budget]") {
  checkpointer_env e;
  e.start({"r", "q", "p", "s"});
  CHECK(e.running("r", 1, 21, 300, 0.25));
  CHECK(e.running("q", 1, 22, 200, 0.5));
  CHECK(e.running("p", 1, 23, 100, 0.125));
  CHECK(e.running("s", 1, 24, 50, 0.0625));
  // A worker died / hung / its node was lost / a shutdown: the supervisor
  // moves the task on without a result.
  CHECK(*ask_for<bool>(e.self, e.cp, retry_atom::value, std::string("r"),
                       uint32_t{1}, std::string("worker died"),
                       ev("task_retry_scheduled", "r", 1, "retry in 1 s"),
                       false));
  CHECK(*ask_for<bool>(e.self, e.cp, quarantine_atom::value, std::string("q"),
                       uint32_t{1}, std::string("hung"),
                       ev("task_quarantined", "q", 1, "hung")));
  CHECK(*ask_for<bool>(e.self, e.cp, give_back_atom::value, std::string("p"),
                       uint32_t{1}));
  // Superseded by a new attempt while still marked running.
  CHECK(e.running("s", 2, 25, 50, 0.0625));
  CHECK(state_in_db(e.db, "r") == "retry_wait");
  CHECK(state_in_db(e.db, "q") == "quarantined");
  CHECK(state_in_db(e.db, "p") == "pending");
  for (auto id : {"r", "q", "p"}) {
    INFO(id);
    CHECK(e.reserved(id) == 0);
    CHECK(e.events("budget_charged", id) == 1);
  }
  CHECK(e.reserved("s") == 50); // attempt 2's
  CHECK(e.events("budget_charged", "s") == 1);
  CHECK(e.ledger("task_id = 'r'") == 300);
  CHECK(e.ledger("task_id = 'q'") == 200);
  CHECK(e.ledger("task_id = 'p'") == 100);
  CHECK(e.ledger("task_id = 's'") == 50);
  CHECK(sql_double(e.db, "SELECT SUM(cost_usd) FROM usage_ledger") ==
        Approx(0.25 + 0.5 + 0.125 + 0.0625));
  // The charge is in the same transaction as the transition and its event.
  CHECK(e.events("task_retry_scheduled", "r") == 1);
  CHECK(e.events("task_quarantined", "q") == 1);
  REQUIRE(e.wait_pushed("budget_charged", 4));
  auto charged = e.pushed("budget_charged");
  CHECK(charged[0].event.task_id == "r");
  CHECK(charged[0].event.attempt == 1);
  CHECK(charged[0].event.detail.find("300 tokens") != std::string::npos);

  // The keeper hears each reservation settled exactly once, at its worst
  // case.
  REQUIRE(wait_until([&] { return e.commits().size() >= 4; }, 30));
  auto c = e.commits();
  REQUIRE(c.size() == 4);
  std::map<uint64_t, usage> by_id;
  for (auto& kv : c)
    by_id[kv.first] = kv.second;
  CHECK(by_id.size() == 4);
  CHECK(by_id[21].total_tokens() == 300);
  CHECK(by_id[22].cost_usd == Approx(0.5));
  CHECK(by_id[23].total_tokens() == 100);
  CHECK(by_id[24].total_tokens() == 50);

  // A late result of an abandoned attempt: covered by what was charged,
  // nothing more (and no second commit to the keeper).
  CHECK_FALSE(*mark(e.self, e.cp, complete_atom::value,
                             std::string("s"), uint32_t{1}, success(),
                             usage{30, 10, 0.01},
                             ev("task_completed", "s", 1), uint64_t{0},
                             int64_t{0}));
  CHECK(e.ledger("task_id = 's'") == 50);
  CHECK(e.events("task_completed", "s") == 0);
  CHECK(e.events("budget_charged", "s") == 2);
  // One that was billed beyond its reservation: the excess is charged.
  CHECK_FALSE(*ask_for<bool>(e.self, e.cp, usage_atom::value,
                             std::string("r"), uint32_t{1},
                             usage{350, 0, 0.25}, std::string("unit"),
                             std::string("m"), ev("task_failed", "r", 1),
                       no_answer, no_answer));
  CHECK(e.ledger("task_id = 'r'") == 350);
  CHECK(e.events("task_failed", "r") == 0);
  CHECK(ask_for<flush_atom>(e.self, e.cp, flush_atom::value));
  CHECK(e.commits().size() == 4);
}

TEST_CASE("checkpointer: a resumed run charges the reservations of the calls "
          "a crash abandoned, and audits them",
          "[unit][checkpointer][budget]") {
  temp_dir dir;
  auto db = dir.path("unit.db");
  {
    actor_env e;
    auto cp = spawn_checkpointer(
      e.sys, std::make_unique<store>(db, store::open_mode::create_if_missing));
    REQUIRE(ask_for<submit_report>(e.self, cp, submit_atom::value,
                                   std::vector<task>{unit_task("a"),
                                                     unit_task("b"),
                                                     unit_task("c")}));
    REQUIRE(ask_for<run_info>(e.self, cp, open_run_atom::value,
                              uint64_t{1000}, 1.0));
    CHECK(*mark(e.self, cp, running_atom::value, std::string("a"),
                         uint32_t{1}, uint64_t{1}, uint64_t{300}, 0.25,
                         ev("task_started", "a", 1), int64_t{0}));
    CHECK(*ask_for<bool>(e.self, cp, usage_atom::value, std::string("a"),
                         uint32_t{1}, usage{40, 2, 0.5}, std::string("unit"),
                         std::string("m"), ev("task_failed", "a", 1),
                       no_answer, no_answer));
    CHECK(*mark(e.self, cp, running_atom::value, std::string("a"),
                         uint32_t{2}, uint64_t{2}, uint64_t{200}, 0.125,
                         ev("task_started", "a", 2), int64_t{0}));
    CHECK(*mark(e.self, cp, running_atom::value, std::string("b"),
                         uint32_t{1}, uint64_t{3}, uint64_t{100}, 0.0625,
                         ev("task_started", "b", 1), int64_t{0}));
    e.self->send_exit(cp, caf::exit_reason::kill); // like a crash
  }
  actor_env e;
  auto rec = std::make_shared<recorder>();
  probe_handle keeper = spawn_probe(e.sys, rec);
  auto audit = std::make_shared<recorder>();
  probe_handle audit_probe = spawn_probe(e.sys, audit);
  auto cp = spawn_checkpointer(
    e.sys, std::make_unique<store>(db, store::open_mode::must_exist),
    audit_probe);
  // The auditor's start: its log ends at seq 3 (the table has 4 events).
  auto missing = ask_for<std::vector<committed_event>>(
    e.self, cp, catch_up_atom::value, uint64_t{3}, uint32_t{100});
  REQUIRE(missing);
  REQUIRE(missing->size() == 1);
  CHECK((*missing)[0].seq == 4);
  CHECK((*missing)[0].event.event == "task_started");
  CHECK((*missing)[0].event.task_id == "b");
  e.self->send(cp, attach_atom::value,
               static_cast<budget_keeper_actor>(keeper));
  auto run = ask_for<run_info>(e.self, cp, open_run_atom::value,
                               uint64_t{1000}, 1.0);
  REQUIRE(run);
  CHECK(run->resumed);
  CHECK(run->id == 1);
  // 42 actually spent, plus both reservations in flight at the crash.
  CHECK(run->tokens_used == 42 + 200 + 100);
  CHECK(run->cost_used == Approx(0.5 + 0.125 + 0.0625));
  CHECK(run->interrupted == std::vector<std::string>{"a", "b"});
  CHECK(state_in_db(db, "a") == "pending");
  CHECK(sql_int(db, "SELECT SUM(reserved_tokens) FROM tasks") == 0);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'budget_charged'") == 2);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_interrupted'") == 2);
  CHECK(sql_int(db, "SELECT attempt FROM events WHERE event = "
                    "'task_interrupted' AND task_id = 'a'") == 2);
  // Sent to the auditor after the commit; no keeper existed for them (its
  // figures start from run_info).
  REQUIRE(wait_until(
    [&] {
      size_t n = 0;
      for (auto& m : audit->messages())
        if (m.match_elements<std::vector<committed_event>>())
          n += m.get_as<std::vector<committed_event>>(0).size();
      return n >= 4;
    },
    30));
  REQUIRE(ask_for<flush_atom>(e.self, cp, flush_atom::value));
  CHECK(rec->with_atom<commit_atom>().empty());
  // The next run continues the ledger: nothing is charged twice.
  e.self->send_exit(cp, caf::exit_reason::kill);
  auto cp2 = spawn_checkpointer(
    e.sys, std::make_unique<store>(db, store::open_mode::must_exist));
  auto again = ask_for<run_info>(e.self, cp2, open_run_atom::value,
                                 uint64_t{1000}, 1.0);
  REQUIRE(again);
  CHECK(again->tokens_used == 342);
  CHECK(again->interrupted.empty());
  exit_all(e.self, cp2, keeper, audit_probe);
}

TEST_CASE("checkpointer: events are numbered after the audit log's last seq "
          "and wait for the auditor's start",
          "[unit][checkpointer][auditor]") {
  temp_dir dir;
  auto db = dir.path("unit.db");
  actor_env e;
  auto audit = std::make_shared<recorder>();
  probe_handle audit_probe = spawn_probe(e.sys, audit);
  auto cp = spawn_checkpointer(
    e.sys, std::make_unique<store>(db, store::open_mode::create_if_missing),
    audit_probe);
  // The checkpointer introduced itself to its auditor ...
  REQUIRE(audit->wait_atom<attach_atom>());
  // ... and holds everything else until the auditor answers: a submission
  // sent now waits.
  e.self->send(cp, submit_atom::value, std::vector<task>{unit_task("a")},
               std::string("f"));
  e.self->send(cp, audit_atom::value, make_event("alert", {}, -1, "x"));
  // (That it waited is shown by the seqs below: stored before the catch-up,
  // its events would be numbered from 1.)
  // A log written by version 1 ends at seq 500: the store continues after.
  auto none = ask_for<std::vector<committed_event>>(
    e.self, cp, catch_up_atom::value, uint64_t{500}, uint32_t{100});
  REQUIRE(none);
  CHECK(none->empty());
  e.self->receive([](submit_report&) {},
                  caf::after(std::chrono::seconds(60)) >> [] {
                    FAIL("the held submission was never answered");
                  });
  REQUIRE(ask_for<flush_atom>(e.self, cp, flush_atom::value));
  CHECK(sql_int(db, "SELECT MIN(seq) FROM events") == 501);
  CHECK(sql_int(db, "SELECT MAX(seq) FROM events") == 502);
  auto later = ask_for<std::vector<committed_event>>(
    e.self, cp, catch_up_atom::value, uint64_t{501}, uint32_t{100});
  REQUIRE(later);
  REQUIRE(later->size() == 1);
  CHECK(later->front().seq == 502);
  CHECK(later->front().event.event == "alert");
  exit_all(e.self, cp, audit_probe);
}
