// The checkpointer through its messages: submission, runs, fetch, fenced
// transitions, and replies to writes only after their group commit.
#include <catch2/catch.hpp>

#include "actors/checkpointer.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/job.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

task unit_task(const std::string& id) {
  task t;
  t.id = id;
  t.type = "summarize";
  t.input = "text of " + id;
  t.idempotency_key = "key-" + id;
  return t;
}

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

std::string state_in_db(const std::string& db, const std::string& id) {
  auto rows = task_rows(db);
  auto p = rows.find(id + "|");
  if (p == std::string::npos)
    return {};
  auto b = p + id.size() + 1;
  return rows.substr(b, rows.find('|', b) - b);
}

struct checkpointer_env : actor_env {
  temp_dir dir;
  std::string db = dir.path("unit.db");
  caf::actor cp = spawn_checkpointer(
    sys, std::make_unique<store>(db, store::open_mode::create_if_missing));
  ~checkpointer_env() { self->send_exit(cp, caf::exit_reason::user_shutdown); }
};

} // namespace

TEST_CASE("checkpointer: submit is idempotent and fetch returns store order",
          "[unit][checkpointer]") {
  checkpointer_env e;
  std::vector<task> ts{unit_task("a"), unit_task("b"), unit_task("c")};
  auto rep = ask_for<submit_report>(e.self, e.cp, submit_atom::value, ts);
  REQUIRE(rep);
  CHECK(rep->error.empty());
  CHECK(rep->inserted == std::vector<std::string>{"a", "b", "c"});
  auto again = ask_for<submit_report>(e.self, e.cp, submit_atom::value,
                                      std::vector<task>{unit_task("a"),
                                                        unit_task("d")});
  REQUIRE(again);
  CHECK(again->inserted == std::vector<std::string>{"d"});
  CHECK(again->duplicates == std::vector<std::string>{"a"});

  auto all = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                        int64_t{0}, uint32_t{10});
  REQUIRE(all);
  REQUIRE(all->size() == 4);
  CHECK((*all)[0].id == "a");
  CHECK((*all)[3].id == "d");
  // Paging by seq.
  auto rest = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                         (*all)[1].seq, uint32_t{1});
  REQUIRE(rest);
  REQUIRE(rest->size() == 1);
  CHECK((*rest)[0].id == "c");
}

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
  CHECK(*ask_for<bool>(e.self, e.cp, running_atom::value, std::string("a"),
                       uint32_t{1}));
  CHECK(*ask_for<bool>(e.self, e.cp, running_atom::value, std::string("a"),
                       uint32_t{2}));
  // Attempt 1 was superseded: it cannot complete.
  CHECK_FALSE(*ask_for<bool>(e.self, e.cp, complete_atom::value,
                             std::string("a"), uint32_t{1}, success(), u));
  CHECK(*ask_for<bool>(e.self, e.cp, complete_atom::value, std::string("a"),
                       uint32_t{2}, success(), u));
  // Never twice.
  CHECK_FALSE(*ask_for<bool>(e.self, e.cp, complete_atom::value,
                             std::string("a"), uint32_t{2}, success(), u));
  CHECK_FALSE(*ask_for<bool>(e.self, e.cp, running_atom::value,
                             std::string("a"), uint32_t{3}));

  // retry_wait, then quarantine, then requeue.
  CHECK(*ask_for<bool>(e.self, e.cp, running_atom::value, std::string("b"),
                       uint32_t{1}));
  CHECK(*ask_for<bool>(e.self, e.cp, retry_atom::value, std::string("b"),
                       uint32_t{1}, std::string("flaky")));
  CHECK(state_in_db(e.db, "b") == "retry_wait");
  CHECK(*ask_for<bool>(e.self, e.cp, quarantine_atom::value, std::string("b"),
                       uint32_t{2}, std::string("gave up")));
  auto st = ask_for<status_report>(e.self, e.cp, status_atom::value);
  REQUIRE(st);
  CHECK(st->tasks.completed == 1);
  CHECK(st->tasks.quarantined == 1);
  // Every completion report carries tokens that were spent, stale or
  // refused ones too: all three are in the ledger.
  CHECK(st->budget.tokens_used == 45);
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
    e.self, e.cp, requeue_atom::value, std::vector<std::string>{}, true);
  REQUIRE(back);
  CHECK(*back == std::vector<std::string>{"b"});
  CHECK(state_in_db(e.db, "b") == "pending");
  auto gone = ask_for<std::vector<std::string>>(
    e.self, e.cp, cancel_atom::value, std::vector<std::string>{"b", "a"});
  REQUIRE(gone);
  CHECK(*gone == std::vector<std::string>{"b"}); // a is completed
  CHECK(state_in_db(e.db, "b") == "cancelled");
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
  // A burst of writes: each reply must find its change visible to another
  // connection (so it is committed, not just in an open transaction).
  for (auto& t : ts)
    e.self->send(e.cp, running_atom::value, t.id, uint32_t{1});
  int replies = 0, durable = 0;
  for (int i = 0; i < 100; ++i)
    e.self->receive(
      [&](bool ok) {
        ++replies;
        if (ok && sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = "
                                "'running'") > i)
          ++durable;
      },
      caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(replies == 100);
  CHECK(durable == 100);
  CHECK(sql_int(e.db, "SELECT COUNT(*) FROM tasks WHERE state = 'running'") ==
        100);

  // The same for completion: completed is never reported before commit.
  for (auto& t : ts)
    e.self->send(e.cp, complete_atom::value, t.id, uint32_t{1}, success(),
                 usage{10, 5, 0.0});
  int seen = 0;
  bool all_durable = true;
  for (int i = 0; i < 100; ++i)
    e.self->receive(
      [&](bool ok) {
        ++seen;
        auto n = sql_int(e.db,
                         "SELECT COUNT(*) FROM tasks WHERE state = 'completed'");
        if (!ok || n <= i)
          all_durable = false;
      },
      caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(seen == 100);
  CHECK(all_durable);
}

TEST_CASE("checkpointer: a resumed run restores the ledger and the "
          "interrupted tasks",
          "[unit][checkpointer]") {
  temp_dir dir;
  auto db = dir.path("unit.db");
  {
    actor_env e;
    auto cp = spawn_checkpointer(
      e.sys, std::make_unique<store>(db, store::open_mode::create_if_missing));
    REQUIRE(ask_for<submit_report>(e.self, cp, submit_atom::value,
                                   std::vector<task>{unit_task("a"),
                                                     unit_task("b")}));
    REQUIRE(ask_for<run_info>(e.self, cp, open_run_atom::value,
                              uint64_t{1000}, 1.0));
    CHECK(*ask_for<bool>(e.self, cp, running_atom::value, std::string("a"),
                         uint32_t{1}));
    CHECK(*ask_for<bool>(e.self, cp, usage_atom::value, std::string("a"),
                         uint32_t{1}, usage{40, 2, 0.5},
                         std::string("unit"), std::string("m")));
    e.self->send_exit(cp, caf::exit_reason::kill); // like a crash
  }
  actor_env e;
  auto cp = spawn_checkpointer(
    e.sys, std::make_unique<store>(db, store::open_mode::must_exist));
  auto run = ask_for<run_info>(e.self, cp, open_run_atom::value,
                               uint64_t{1000}, 1.0);
  REQUIRE(run);
  CHECK(run->resumed);
  CHECK(run->id == 1);
  CHECK(run->tokens_used == 42);
  CHECK(run->cost_used == Approx(0.5));
  CHECK(run->interrupted == std::vector<std::string>{"a"});
  CHECK(state_in_db(db, "a") == "pending");
  e.self->send_exit(cp, caf::exit_reason::user_shutdown);
}
