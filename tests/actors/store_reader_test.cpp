// The checkpointer with a store reader: its reads (the queue's fetch,
// status, results, counts) are answered on the reader's own connection, after the open group is
// committed, and a reader that fails takes the checkpointer with it.
#include <catch2/catch.hpp>

#include <fstream>

#include <sqlite3.h>

#include "actors/checkpointer.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

void sql(const std::string& path, const char* statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, statement, nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// A checkpointer whose reader has a connection to `reader_path`; the test
// plays the auditor's start-up.
struct reader_env : actor_env {
  temp_dir dir;
  std::string db = dir.path("unit.db");
  checkpointer_actor cp;

  explicit reader_env(const std::string& reader_path = {}) {
    auto writer = std::make_unique<store>(db,
                                          store::open_mode::create_if_missing);
    // Another file's store, made first when the reader reads that one.
    if (!reader_path.empty())
      store(reader_path, store::open_mode::create_if_missing);
    auto reader = std::make_unique<store>(
      reader_path.empty() ? db : reader_path, store::open_mode::must_exist);
    recorder_ptr audit = std::make_shared<recorder>();
    audit_probe = spawn_probe(sys, audit);
    cp = spawn_checkpointer(sys, std::move(writer), audit_probe,
                            std::move(reader));
    REQUIRE(ask_for<std::vector<committed_event>>(
      self, cp, catch_up_atom::value, uint64_t{0}, uint32_t{1000}));
  }
  ~reader_env() { exit_all(self, cp, audit_probe); }
  probe_handle audit_probe;

  void submit(const std::vector<std::string>& ids) {
    std::vector<task> ts;
    for (auto& id : ids)
      ts.push_back(unit_task(id));
    REQUIRE(ask_for<submit_report>(self, cp, submit_atom::value, ts));
    REQUIRE(ask_for<run_info>(self, cp, open_run_atom::value,
                              uint64_t{100000}, 10.0));
  }
  state_counts counts() {
    auto rep = ask_for<status_report>(self, cp, status_atom::value);
    REQUIRE(rep);
    return rep->tasks;
  }
};

} // namespace

TEST_CASE("checkpointer with a reader: status, results and counts come from "
          "the reader's connection", "[unit][checkpointer][reader]") {
  // The reader reads another file: what it answers can only be that file's.
  temp_dir other;
  std::string other_db = other.path("other.db");
  {
    store seed(other_db, store::open_mode::create_if_missing);
    seed.submit({unit_task("o1"), unit_task("o2"), unit_task("o3")});
  }
  reader_env e(other_db);
  e.submit({"a"});
  auto c = e.counts();
  CHECK(c.pending == 3);
  CHECK(c.total() == 3);
  auto total = ask_for<uint64_t>(e.self, e.cp, status_atom::value,
                                 total_atom::value);
  REQUIRE(total);
  CHECK(*total == 3);
  auto rows = ask_for<std::vector<task_record>>(e.self, e.cp,
                                                results_atom::value,
                                                std::string("pending"));
  REQUIRE(rows);
  REQUIRE(rows->size() == 3);
  CHECK(rows->front().id == "o1");
  // The queue too: the other file's tasks, in run order, with their
  // requests resolved (their type's prompt).
  auto next = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                         int64_t{0}, int64_t{0},
                                         uint32_t{10});
  REQUIRE(next);
  REQUIRE(next->size() == 3);
  CHECK(next->at(0).id == "o1");
  CHECK(next->at(1).id == "o2");
  CHECK(next->at(2).id == "o3");
  CHECK_FALSE(next->at(0).prompt.empty());
}

TEST_CASE("checkpointer with a reader: a read sees every change asked for "
          "before it, though its group had not committed",
          "[unit][checkpointer][reader]") {
  reader_env e;
  e.submit({"a", "b"});
  // The running mark is not awaited: the fetch and the status asked right
  // after it are answered by the reader only once the mark's group has
  // committed.
  e.self->send(e.cp, running_atom::value, std::string("a"), uint32_t{1},
               uint64_t{1}, uint64_t{100}, 0.5,
               make_event("task_started", "a", 1, ""), int64_t{0});
  // So is the queue's fetch: the task marked running is not runnable.
  auto next = ask_for<std::vector<task>>(e.self, e.cp, fetch_atom::value,
                                         int64_t{0}, int64_t{0},
                                         uint32_t{10});
  REQUIRE(next);
  REQUIRE(next->size() == 1);
  CHECK(next->front().id == "b");
  auto c = e.counts();
  CHECK(c.running == 1);
  CHECK(c.pending == 1);
  auto marked = mark_answers(e.self, 1);
  REQUIRE(marked.size() == 1);
  CHECK(marked.front().written);
  auto running = ask_for<std::vector<task_record>>(e.self, e.cp,
                                                   results_atom::value,
                                                   std::string("running"));
  REQUIRE(running);
  REQUIRE(running->size() == 1);
  CHECK(running->front().id == "a");
}

TEST_CASE("checkpointer with a reader: a read the reader cannot answer ends "
          "the reader and the checkpointer, with the store's error",
          "[unit][checkpointer][reader]") {
  temp_dir other;
  std::string other_db = other.path("other.db");
  reader_env e(other_db);
  e.self->monitor(e.cp);
  // The reader's file loses its tasks table under it.
  sql(other_db, "DROP TABLE tasks");
  auto rep = ask_for<status_report>(e.self, e.cp, status_atom::value);
  CHECK_FALSE(rep);
  std::string reason;
  e.self->receive(
    [&](caf::down_msg& dm) { reason = to_string(dm.reason); },
    caf::after(std::chrono::seconds(30)) >> [] {});
  CHECK(reason.find("no such table: tasks") != std::string::npos);
  CHECK(reason.find(other_db) != std::string::npos);
}

TEST_CASE("checkpointer with a reader: reads asked while a group is open "
          "wait for its commit and never split it",
          "[unit][checkpointer][reader]") {
  reader_env e;
  const int n = 40;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i)
    ids.push_back("t" + std::to_string(i));
  e.submit(ids);
  auto wal_frames = [&] {
    std::ifstream wal(e.db + "-wal", std::ios::binary | std::ios::ate);
    auto size = static_cast<long long>(wal.tellg());
    return size <= 32 ? 0 : (size - 32) / (4096 + 24);
  };
  // Another connection holds the write lock, so the checkpointer's first
  // mark waits in BEGIN IMMEDIATE and every message below is in its
  // mailbox when the group opens: the group's commit is queued behind all
  // of them, whatever the threads' timing.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(e.db.c_str(), &blocker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  auto before = wal_frames();
  for (int i = 0; i < n; ++i) {
    e.self->send(e.cp, running_atom::value, ids[i], uint32_t{1},
                 uint64_t(i + 1), uint64_t{10}, 0.01,
                 make_event("task_started", ids[i], 1, ""), int64_t{0});
    e.self->send(e.cp, status_atom::value);
  }
  REQUIRE(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(blocker);
  int marked = 0, answers = 0;
  std::vector<uint64_t> running_seen;
  while (answers < n || running_seen.size() < static_cast<size_t>(n))
    e.self->receive(
      [&](marks_atom, const std::vector<mark_answer>& ms) {
        for (auto& m : ms) {
          ++answers;
          marked += m.written ? 1 : 0;
        }
      },
      [&](const status_report& rep) {
        running_seen.push_back(rep.tasks.running);
      },
      caf::after(std::chrono::seconds(30)) >> [] { FAIL("no answer"); });
  CHECK(marked == n);
  REQUIRE(running_seen.size() == static_cast<size_t>(n));
  // Each read sees every mark asked for before it: the group commits them
  // all before any read is answered.
  for (auto r : running_seen)
    CHECK(r == static_cast<uint64_t>(n));
  // One commit of a few pages, where a commit per read wrote at least one
  // frame (the task's page) for each of the 40 marks.
  CHECK(wal_frames() - before < 20);
}

TEST_CASE("checkpointer with a reader: status requests that arrive together "
          "share scans, and each sees what was asked before it",
          "[unit][checkpointer][reader]") {
  reader_env e;
  e.submit({"a", "b"});
  // A flood of status requests (as /metrics scrapes) with a running mark in
  // its middle: every request after the mark sees it, though the requests
  // before it may be answered by the same scans.
  const int half = 100;
  for (int i = 0; i < half; ++i)
    e.self->send(e.cp, status_atom::value);
  e.self->send(e.cp, running_atom::value, std::string("a"), uint32_t{1},
               uint64_t{1}, uint64_t{100}, 0.5,
               make_event("task_started", "a", 1, ""), int64_t{0});
  for (int i = 0; i < half; ++i)
    e.self->send(e.cp, status_atom::value);
  bool marked = false, answered = false;
  std::vector<state_counts> seen; // in the order the requests were sent
  while (!answered || seen.size() < static_cast<size_t>(2 * half))
    e.self->receive(
      [&](marks_atom, const std::vector<mark_answer>& ms) {
        REQUIRE(ms.size() == 1);
        answered = true;
        marked = ms.front().written;
      },
      [&](const status_report& rep) { seen.push_back(rep.tasks); },
      caf::after(std::chrono::seconds(30)) >> [] { FAIL("no answer"); });
  CHECK(marked);
  REQUIRE(seen.size() == static_cast<size_t>(2 * half));
  for (int i = 0; i < 2 * half; ++i) {
    INFO("request " << i);
    CHECK(seen[i].total() == 2);
    if (i >= half) {
      CHECK(seen[i].running == 1);
      CHECK(seen[i].pending == 1);
    }
  }
}

TEST_CASE("checkpointer with a reader: replies held for a commit get an "
          "error, not silence, when the checkpointer ends first",
          "[unit][checkpointer][reader]") {
  reader_env e;
  e.submit({"a", "b"});
  // The write lock is held elsewhere, so everything below is in the
  // mailbox when the mark opens its group; the group's commit is then
  // queued behind the exit message.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(e.db.c_str(), &blocker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  auto within = std::chrono::seconds(20);
  // The mark opens the group; marks are answered only by a commit's
  // message, which this group never has.
  e.self->send(e.cp, running_atom::value, std::string("a"), uint32_t{1},
               uint64_t{1}, uint64_t{100}, 0.5,
               make_event("task_started", "a", 1, ""), int64_t{0});
  auto status = e.self->request(e.cp, within, status_atom::value);
  auto results = e.self->request(e.cp, within, results_atom::value,
                                 std::string("running"));
  e.self->send_exit(e.cp, caf::exit_reason::user_shutdown);
  REQUIRE(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(blocker);
  // Each gets the checkpointer's end as its answer at once (a requester
  // without a timeout would otherwise wait forever): not a timeout.
  std::vector<caf::error> errs;
  auto got_error = [&](caf::error& err) { errs.push_back(err); };
  status.receive([&](status_report&) { FAIL("the status was answered"); },
                 got_error);
  results.receive(
    [&](std::vector<task_record>&) { FAIL("the results were answered"); },
    got_error);
  REQUIRE(errs.size() == 2);
  for (auto& err : errs)
    CHECK(err == caf::sec::request_receiver_down);
  // Those errors were its last messages: the mark was never answered as
  // written (anything it sent is in the mailbox by now).
  bool answered = false;
  e.self->receive(
    [&](marks_atom, const std::vector<mark_answer>&) { answered = true; },
    caf::after(std::chrono::seconds(0)) >> [] {});
  CHECK_FALSE(answered);
}

TEST_CASE("checkpointer: a grouped write the store refuses answers its "
          "requester with the error, and ends the checkpointer",
          "[unit][checkpointer][reader]") {
  reader_env e;
  e.submit({"a"});
  e.self->monitor(e.cp);
  REQUIRE(mark(e.self, e.cp, running_atom::value, std::string("a"),
               uint32_t{1}, uint64_t{1}, uint64_t{100}, 0.5,
               make_event("task_started", "a", 1, ""), int64_t{0}) ==
          std::optional<bool>(true));
  // The writer's events table disappears under it: the failed attempt's
  // event cannot be stored.
  sql(e.db, "DROP TABLE events");
  caf::error got;
  e.self
    ->request(e.cp, std::chrono::seconds(20), usage_atom::value,
              std::string("a"), uint32_t{1}, usage{10, 5, 0.01},
              std::string("offline"), std::string("m"),
              make_event("task_failed", "a", 1, "boom"), std::string(),
              std::string())
    .receive([&](bool) { FAIL("the failure was answered as stored"); },
             [&](caf::error& err) { got = err; });
  REQUIRE(got);
  CHECK(got != caf::sec::request_timeout);
  std::string reason;
  e.self->receive(
    [&](caf::down_msg& dm) { reason = to_string(dm.reason); },
    caf::after(std::chrono::seconds(30)) >> [] {});
  CHECK(reason.find("events") != std::string::npos);
}
