// The audit outbox with real actors: the auditor writes what the store
// committed, with the store's seq; after a crash the next start appends
// exactly what the log lacks; two processes sharing one log (and one store)
// never duplicate or reorder a seq; a torn last line does not glue onto
// the next.
#include <catch2/catch.hpp>

#include "actors/auditor.hpp"
#include "actors/checkpointer.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/store.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// An auditor paired with a checkpointer, as `run` and `submit` have them.
struct pair_env {
  actor_env& e;
  auditor_actor aud;
  checkpointer_actor cp;
  pair_env(actor_env& env, const std::string& db, const std::string& log)
    : e(env) {
    aud = spawn_auditor(e.sys, log);
    cp = spawn_checkpointer(
      e.sys, std::make_unique<store>(db, store::open_mode::create_if_missing),
      aud);
  }
  ~pair_env() {
    e.self->send_exit(aud, caf::exit_reason::user_shutdown);
    e.self->send_exit(cp, caf::exit_reason::user_shutdown);
  }
  void flush() { REQUIRE(ask_for<flush_atom>(e.self, aud, flush_atom::value)); }
};

// Every seq strictly increasing; returns how many lines.
size_t check_log(const std::string& log) {
  auto lines = read_jsonl(log);
  uint64_t prev = 0;
  for (auto& l : lines) {
    auto seq = l["seq"].get<uint64_t>();
    CHECK(seq > prev);
    prev = seq;
  }
  return lines.size();
}

} // namespace

TEST_CASE("audit outbox: the log is written from the store, in seq order",
          "[unit][auditor]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  actor_env e;
  pair_env p(e, db, log);
  for (int i = 0; i < 300; ++i)
    e.self->send(p.aud, make_event("alert", {}, -1, std::to_string(i)));
  REQUIRE(ask_for<submit_report>(e.self, p.cp, submit_atom::value,
                                 std::vector<task>{unit_task("a")},
                                 std::string("f.jsonl")));
  p.flush();
  auto lines = read_jsonl(log);
  REQUIRE(lines.size() == 301);
  CHECK(static_cast<long long>(lines.size()) ==
        sql_int(db, "SELECT COUNT(*) FROM events"));
  for (size_t i = 0; i < lines.size(); ++i)
    CHECK(lines[i]["seq"] == i + 1);
  // The alerts in the order sent (the submission took another path, so it
  // may be anywhere among them).
  int next = 0;
  size_t submitted = 0;
  for (auto& l : lines) {
    if (l["event"] == "task_submitted") {
      submitted = l["seq"].get<size_t>();
      continue;
    }
    CHECK(l["detail"] == std::to_string(next++));
  }
  CHECK(next == 300);
  REQUIRE(submitted > 0);
  // The line's ts is the store's.
  CHECK(lines[submitted - 1]["ts"].get<std::string>() ==
        [&] {
          sqlite3* h = nullptr;
          std::string ts;
          sqlite3_open(db.c_str(), &h);
          sqlite3_stmt* st = nullptr;
          auto sql = "SELECT ts FROM events WHERE seq = " +
                     std::to_string(submitted);
          sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr);
          if (sqlite3_step(st) == SQLITE_ROW)
            ts = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
          sqlite3_finalize(st);
          sqlite3_close(h);
          return ts;
        }());
}

TEST_CASE("audit outbox: the next start appends exactly what the log lacks",
          "[unit][auditor]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  {
    actor_env e;
    pair_env p(e, db, log);
    for (int i = 0; i < 50; ++i)
      e.self->send(p.aud, make_event("alert", {}, -1, std::to_string(i)));
    p.flush();
  }
  // Events committed after the log's last write (a kill -9 in between),
  // and a torn last line.
  {
    store s(db, store::open_mode::must_exist);
    s.begin();
    for (int i = 50; i < 80; ++i)
      s.add_event(make_event("alert", {}, -1, std::to_string(i)));
    s.commit();
  }
  write_file(log, read_file(log) + "{\"ts\":\"2026-01-01T00:0");
  {
    actor_env e;
    pair_env p(e, db, log);
    e.self->send(p.aud, make_event("run_started"));
    p.flush();
  }
  auto lines = read_jsonl(log);
  REQUIRE(lines.size() == 81);
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO(i);
    CHECK(lines[i]["seq"] == i + 1);
  }
  CHECK(lines[79]["detail"] == "79");
  CHECK(lines[80]["event"] == "run_started");
  // The torn line was ended, not glued onto.
  auto text = read_file(log);
  CHECK(text.find("T00:0{") == std::string::npos);
  CHECK(jsonl_writer::last_seq(log) == 81);
}

TEST_CASE("audit outbox: two processes sharing a log and a store never "
          "duplicate or reorder a seq",
          "[unit][auditor]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  actor_env e1, e2;
  pair_env run(e1, db, log);
  pair_env submit(e2, db, log);
  for (int i = 0; i < 2000; ++i) {
    e1.self->send(run.aud, make_event("alert", {}, -1, "r" + std::to_string(i)));
    e2.self->send(submit.aud,
                  make_event("alert", {}, -1, "s" + std::to_string(i)));
  }
  run.flush();
  submit.flush();
  auto n = check_log(log);
  CHECK(n == 4000);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events") == 4000);
  CHECK(sql_int(db, "SELECT MAX(seq) FROM events") == 4000);
}

TEST_CASE("audit outbox: seq continues after a version-1 log",
          "[unit][auditor]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  std::string old;
  for (int i = 1; i <= 25; ++i)
    old += "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":" +
           std::to_string(i) + ",\"event\":\"alert\"}\n";
  write_file(log, old);
  actor_env e;
  pair_env p(e, db, log);
  e.self->send(p.aud, make_event("run_started"));
  p.flush();
  auto lines = read_jsonl(log);
  REQUIRE(lines.size() == 26);
  CHECK(lines[25]["seq"] == 26);
  CHECK(sql_int(db, "SELECT seq FROM events") == 26);
}

TEST_CASE("audit outbox: a submission too big to hold in memory is written "
          "from the table",
          "[unit][auditor]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  actor_env e;
  pair_env p(e, db, log);
  std::vector<task> ts;
  for (int i = 0; i < 20000; ++i)
    ts.push_back(unit_task("t" + std::to_string(i)));
  auto rep = ask_for<submit_report>(e.self, p.cp, submit_atom::value, ts,
                                    std::string("big.jsonl"));
  REQUIRE(rep);
  CHECK(rep->inserted.size() == 20000);
  p.flush();
  auto lines = read_jsonl(log);
  REQUIRE(lines.size() == 20000);
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i]["seq"] != i + 1 ||
        lines[i]["task_id"] != "t" + std::to_string(i)) {
      FAIL("line " << i << ": " << lines[i].dump());
    }
}
