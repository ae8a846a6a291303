// The store's schema version and migration, its audit events (seq across
// connections, the floor a log sets, committed-only hand-over) and its
// reservations (stored with the running mark, charged when abandoned).
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "persistence/cache_filter.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/store.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"
#include "tests/support/older_schema.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// A store of version 9's shape at `path` holding `tasks` (submitted from
// a file, so with their task_submitted events): its events without
// task_seq and indexed by task_id, its response cache (empty) keyed by the
// fingerprint's text.
void version_9_store(const std::string& path, const std::vector<task>& tasks) {
  {
    store db(path, store::open_mode::create_if_missing);
    REQUIRE(db.submit(tasks, "f.jsonl").error.empty());
  }
  exec_sql(path,
           std::string(undo_v12_sql) +
           "DROP INDEX events_task_seq;"
           "DROP INDEX events_task_unsequenced;"
           "ALTER TABLE events DROP COLUMN task_seq;"
           "CREATE INDEX events_task ON events(task_id) WHERE task_id IS "
           "NOT NULL;"
           "DROP TABLE response_cache;"
           "CREATE TABLE response_cache(fingerprint TEXT PRIMARY KEY, "
           "result TEXT NOT NULL, response TEXT, provider TEXT NOT NULL, "
           "model TEXT NOT NULL, created_at TEXT NOT NULL);"
           "UPDATE meta SET value = '9' WHERE key = 'schema_version';");
}

// The details of SQLite's plan for `sql`, one line each.
std::string query_plan(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  auto explain = "EXPLAIN QUERY PLAN " + sql;
  REQUIRE(sqlite3_prepare_v2(db, explain.c_str(), -1, &s, nullptr) ==
          SQLITE_OK);
  std::string plan;
  while (sqlite3_step(s) == SQLITE_ROW)
    plan += std::string(reinterpret_cast<const char*>(
              sqlite3_column_text(s, 3))) + "\n";
  sqlite3_finalize(s);
  sqlite3_close(db);
  return plan;
}

} // namespace

TEST_CASE("store: a new store has the current schema version, an events "
          "table and the built-in type definitions",
          "[store]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  {
    store db(path, store::open_mode::create_if_missing);
    CHECK(db.last_event_seq() == 0);
  }
  CHECK(sql_int(path, "SELECT value FROM meta WHERE key = "
                      "'schema_version'") == store::schema_version);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM events") == 0);
  CHECK(sql_int(path, "SELECT COUNT(reserved_cost) FROM tasks") == 0);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM task_types") == 4);
}

TEST_CASE("store: version 1 is migrated in one transaction, and a newer or "
          "foreign database is refused",
          "[store]") {
  temp_dir dir;
  auto v1 = dir.path("v1.db");
  exec_sql(v1, "PRAGMA journal_mode=WAL;"
               "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
               "CREATE TABLE tasks(seq INTEGER PRIMARY KEY, id TEXT NOT NULL "
               "UNIQUE, idempotency_key TEXT NOT NULL UNIQUE, type TEXT NOT "
               "NULL, input TEXT NOT NULL, max_tokens INTEGER NOT NULL "
               "DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending', attempts "
               "INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT, "
               "prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens "
               "INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT "
               "0, provider TEXT, model TEXT, created_at TEXT NOT NULL, "
               "updated_at TEXT NOT NULL);"
               "CREATE TABLE runs(id INTEGER PRIMARY KEY, state TEXT NOT "
               "NULL, started_at TEXT NOT NULL, finished_at TEXT, "
               "token_limit INTEGER NOT NULL DEFAULT 0, cost_limit REAL NOT "
               "NULL DEFAULT 0);"
               "CREATE TABLE usage_ledger(id INTEGER PRIMARY KEY, run_id "
               "INTEGER NOT NULL, task_id TEXT NOT NULL, attempt INTEGER NOT "
               "NULL, prompt_tokens INTEGER NOT NULL, completion_tokens "
               "INTEGER NOT NULL, cost_usd REAL NOT NULL, provider TEXT, "
               "model TEXT, ts TEXT NOT NULL);"
               "INSERT INTO meta VALUES('schema_version', '1');"
               "INSERT INTO tasks(id, idempotency_key, type, input, state, "
               "attempts, created_at, updated_at) VALUES('a', 'ka', "
               "'summarize', 'x', 'running', 1, 't', 't');");
  {
    store db(v1, store::open_mode::must_exist);
    // A running task of version 1 has no reservation: interrupted, not
    // charged.
    auto run = db.open_run(1000, 1.0);
    CHECK(run.interrupted == std::vector<std::string>{"a"});
    CHECK(run.tokens_used == 0);
    db.take_committed_events();
  }
  CHECK(sql_int(v1, "SELECT value FROM meta WHERE key = "
                    "'schema_version'") == store::schema_version);
  CHECK(sql_int(v1, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_interrupted'") == 1);
  CHECK(sql_int(v1, "SELECT COUNT(*) FROM events WHERE event = "
                    "'budget_charged'") == 0);

  const auto next = std::to_string(store::schema_version + 1);
  auto newer = dir.path("newer.db");
  exec_sql(newer, "PRAGMA journal_mode=WAL; CREATE TABLE meta(key TEXT "
                  "PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta "
                  "VALUES('schema_version', '" + next + "');");
  try {
    store db(newer, store::open_mode::must_exist);
    FAIL("opened a store of schema version " + next);
  } catch (const store_error& e) {
    CHECK(e.bad_input());
    CHECK(std::string(e.what()).find("schema version " + next) !=
          std::string::npos);
    CHECK(std::string(e.what()).find(newer) != std::string::npos);
  }
  CHECK(sql_int(newer, "SELECT value FROM meta") ==
        store::schema_version + 1);

  auto foreign = dir.path("notes.db");
  exec_sql(foreign, "CREATE TABLE notes(text TEXT);");
  try {
    store db(foreign, store::open_mode::must_exist);
    FAIL("opened somebody else's database");
  } catch (const store_error& e) {
    CHECK(e.bad_input());
    CHECK(std::string(e.what()).find("not a bgagent store") !=
          std::string::npos);
  }
  CHECK(sql_int(foreign, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                         "'tasks'") == 0);
}

TEST_CASE("store: version 9's events, indexed by task id, are indexed by "
          "task seq after the migration, and a task's events are found "
          "through it",
          "[store]") {
  temp_dir dir;
  auto path = dir.path("v9.db");
  version_9_store(path, {unit_task("a"), unit_task("b")});
  store db(path, store::open_mode::must_exist);
  CHECK(sql_int(path, "SELECT value FROM meta WHERE key = "
                      "'schema_version'") == store::schema_version);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                      "'events_task'") == 0);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM events WHERE task_seq IS "
                      "NULL AND task_id IS NOT NULL") == 0);
  // Migrated events and new ones alike; another task's are not shown.
  db.add_event(make_event("task_started", "b", 1, "new"));
  db.add_event(make_event("alert", {}, -1, "no task"));
  auto b = db.events_of("b", 10);
  REQUIRE(b.size() == 2);
  CHECK(b[0].event.event == "task_submitted");
  CHECK(b[1].event.detail == "new");
  CHECK(db.events_of("a", 10).size() == 1);
  CHECK(db.events_of("nobody", 10).empty());
  auto plan = query_plan(path, "SELECT seq FROM events WHERE task_seq = "
                               "(SELECT seq FROM tasks WHERE id = 'b') "
                               "UNION ALL SELECT seq FROM events WHERE "
                               "task_seq IS NULL AND task_id = 'b' ORDER BY 1");
  CHECK(plan.find("INDEX events_task_seq") != std::string::npos);
  CHECK(plan.find("INDEX events_task_unsequenced") != std::string::npos);
  // An older bgagent still running writes events without task_seq: they
  // are found by their task's id.
  exec_sql(path, "INSERT INTO events(seq, ts, event, task_id, attempt) "
                 "VALUES(1000, 't', 'task_started', 'a', 1)");
  CHECK(db.events_of("a", 10).size() == 2);
  // An attempt's events are found by their task's seq.
  REQUIRE(db.mark_running("a", 1, held_reservation{},
                          make_event("task_started", "a", 1, "go")));
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"A"})";
  REQUIRE(db.mark_completed("a", 1, out, usage{},
                            make_event("task_completed", "a", 1, "done"), 0));
  auto a = db.events_of("a", 10);
  REQUIRE(a.size() == 4);
  CHECK(a[2].event.detail == "go");
  CHECK(a[3].event.detail == "done");
  // (the older writer's has none)
  CHECK(sql_int(path, "SELECT COUNT(*) FROM events WHERE task_seq = "
                      "(SELECT seq FROM tasks WHERE id = 'a')") == 3);
}

TEST_CASE("store: version 9's response cache, keyed by fingerprint text, "
          "keeps its answers under version 10's integer keys, one per "
          "fingerprint",
          "[store][cache]") {
  temp_dir dir;
  auto path = dir.path("v9.db");
  version_9_store(path, {unit_task("b"), unit_task("c")});
  exec_sql(path, "INSERT INTO response_cache VALUES('fp-a', "
                 "'{\"summary\":\"A\"}', NULL, 'openai', 'm', 't');");
  store db(path, store::open_mode::must_exist);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM response_cache WHERE key = 0") ==
        0);
  CHECK(db.response_cache_filter()->may_contain("fp-a"));
  CHECK(db.complete_from_cache({"b"}, {"fp-a"}, {}) ==
        std::vector<std::string>{"b"});
  CHECK(db.results("", "", {"b"}).at(0).result == R"({"summary":"A"})");
  // A new answer for the same request replaces the old one.
  REQUIRE(db.mark_running("c", 1, held_reservation{}, audit_event{}));
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"B"})";
  out.fingerprint = "fp-a";
  REQUIRE(db.mark_completed("c", 1, out, usage{}, audit_event{}, 0));
  CHECK(sql_int(path, "SELECT COUNT(*) FROM response_cache") == 1);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM response_cache WHERE result "
                      "LIKE '%B%'") == 1);
  CHECK(query_plan(path, "SELECT result FROM response_cache WHERE key = 1 "
                         "AND fingerprint = 'x'")
          .find("INDEX response_cache_key") != std::string::npos);
  // A newer row under fp-a's key with another fingerprint (as a collision
  // would make) is not fp-a's answer.
  exec_sql(path, "INSERT INTO response_cache SELECT key, 'fp-other', "
                 "'{\"summary\":\"X\"}', NULL, 'openai', 'm', 't' FROM "
                 "response_cache WHERE fingerprint = 'fp-a'");
  REQUIRE(db.submit({unit_task("d")}).error.empty());
  CHECK(db.complete_from_cache({"d"}, {"fp-a"}, {}) ==
        std::vector<std::string>{"d"});
  CHECK(db.results("", "", {"d"}).at(0).result == R"({"summary":"B"})");
  // An older bgagent still running caches its answers without a key: they
  // are stored (not found by this one: a paid call, not a wrong answer).
  exec_sql(path, "INSERT OR REPLACE INTO response_cache(fingerprint, "
                 "result, response, provider, model, created_at) "
                 "VALUES('fp-old', '{}', NULL, 'openai', 'm', 't')");
  CHECK(sql_int(path, "SELECT COUNT(*) FROM response_cache WHERE key IS "
                      "NULL") == 1);
}

TEST_CASE("store: two files sharing an event clock number their events "
          "from it, above what either file holds", "[store][shard]") {
  temp_dir dir;
  store a(dir.path("a.db"), store::open_mode::create_if_missing);
  store b(dir.path("b.db"), store::open_mode::create_if_missing);
  // File a already holds events up to seq 3; file b holds none.
  for (int i = 0; i < 3; ++i)
    a.add_event(make_event("alert", {}, -1, "before"));
  a.take_committed_events();
  auto clock = std::make_shared<event_clock>();
  a.use_event_clock(clock);
  b.use_event_clock(clock);
  CHECK(clock->next() == 4);
  a.add_event(make_event("alert", {}, -1, "a1"));
  b.add_event(make_event("alert", {}, -1, "b1"));
  a.begin();
  a.add_event(make_event("alert", {}, -1, "a2"));
  a.add_event(make_event("alert", {}, -1, "a3"));
  a.commit();
  // A rolled-back seq is a hole, never given again.
  b.begin();
  b.add_event(make_event("alert", {}, -1, "lost"));
  b.rollback();
  b.add_event(make_event("alert", {}, -1, "b2"));
  auto in_a = a.take_committed_events();
  auto in_b = b.take_committed_events();
  REQUIRE(in_a.size() == 3);
  REQUIRE(in_b.size() == 2);
  CHECK(in_a[0].seq == 4);
  CHECK(in_b[0].seq == 5);
  CHECK(in_a[1].seq == 6);
  CHECK(in_a[2].seq == 7);
  CHECK(in_b[1].seq == 9); // 8 was rolled back
  CHECK(b.events_after(0, 10).size() == 2);
  // A floor raised through either file raises the shared clock.
  b.raise_event_floor(100);
  a.add_event(make_event("alert", {}, -1, "a4"));
  CHECK(a.take_committed_events()[0].seq == 101);

  // A file attached later that holds higher seqs raises the clock, and so
  // does a floor raised before the clock was attached.
  store c(dir.path("c.db"), store::open_mode::create_if_missing);
  c.raise_event_floor(500);
  c.add_event(make_event("alert", {}, -1, "c0"));
  CHECK(c.take_committed_events()[0].seq == 501);
  store d(dir.path("d.db"), store::open_mode::create_if_missing);
  d.raise_event_floor(900);
  c.use_event_clock(clock);
  CHECK(clock->next() == 502);
  d.use_event_clock(clock);
  CHECK(clock->next() == 901);

  // A transaction of more events than are kept in memory without a clock
  // is handed over whole: the rest would look like other files' seqs.
  a.begin();
  for (int i = 0; i < 5000; ++i)
    a.add_event(make_event("alert", {}, -1, "many"));
  a.commit();
  auto many = a.take_committed_events();
  REQUIRE(many.size() == 5000);
  CHECK(many.front().seq == 901);
  CHECK(many.back().seq == 5900);
}

TEST_CASE("store: events are numbered across connections, above the floor, "
          "and handed over only once committed",
          "[store]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  store a(path, store::open_mode::create_if_missing);
  store b(path, store::open_mode::must_exist);
  // The audit log already ends at seq 10 (written by version 1).
  a.raise_event_floor(10);
  a.begin();
  a.add_event(make_event("alert", {}, -1, "one"));
  a.add_event(make_event("alert", {}, -1, "two"));
  CHECK(a.take_committed_events().empty()); // not committed yet
  a.commit();
  auto first = a.take_committed_events();
  REQUIRE(first.size() == 2);
  CHECK(first[0].seq == 11);
  CHECK(first[1].seq == 12);
  CHECK(first[1].event.detail == "two");
  // Another connection (another process) continues the sequence.
  b.add_event(make_event("task_submitted", "t1", -1, "f"));
  auto second = b.take_committed_events();
  REQUIRE(second.size() == 1);
  CHECK(second[0].seq == 13);
  // A rolled-back transaction hands nothing over and uses no seq.
  a.begin();
  a.add_event(make_event("alert", {}, -1, "lost"));
  a.rollback();
  CHECK(a.take_committed_events().empty());
  a.add_event(make_event("alert", {}, -1, "three"));
  CHECK(a.take_committed_events()[0].seq == 14);
  // Read back in seq order, fields intact.
  auto all = b.events_after(11, 10);
  REQUIRE(all.size() == 3);
  CHECK(all[0].seq == 12);
  CHECK(all[1].event.task_id == "t1");
  CHECK(all[1].event.attempt == -1);
  CHECK(all[1].event.node.empty());
  CHECK(all[2].event.detail == "three");
  CHECK(b.events_after(0, 2).size() == 2);
  CHECK(a.last_event_seq() == 14);
}

TEST_CASE("store: a reservation stored with the running mark is charged "
          "when the call is abandoned, and settled otherwise",
          "[store][budget]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  store db(path, store::open_mode::create_if_missing);
  db.submit({unit_task("a"), unit_task("b"), unit_task("c")});
  auto run = db.open_run(100000, 10.0);
  REQUIRE(db.mark_running("a", 1, held_reservation{5, 100, 0.5},
                          make_event("task_started", "a", 1)));
  REQUIRE(db.mark_running("b", 1, held_reservation{6, 200, 0.25},
                          make_event("task_started", "b", 1)));
  REQUIRE(db.mark_running("c", 1, held_reservation{7, 300, 0.125}, {}));
  call_outcome out;
  out.ok = true;
  out.result = "{}";
  out.provider = "p";
  out.model = "m";
  CHECK(db.mark_completed("a", 1, out, usage{60, 20, 0.1},
                          make_event("task_completed", "a", 1)));
  CHECK(db.settle_failed("b", 1, usage{10, 0, 0.01}, "p", "m",
                         make_event("task_failed", "b", 1)));
  CHECK(db.mark_quarantined("b", 1, "bad", {})); // settled: nothing to charge
  CHECK(db.mark_retry_wait("c", 1, "worker died", {})); // abandoned
  auto s = db.take_settlements();
  REQUIRE(s.size() == 3);
  CHECK(s[0].reservation_id == 5);
  CHECK(s[0].spent.total_tokens() == 80);
  CHECK(s[1].reservation_id == 6);
  CHECK(s[1].spent.total_tokens() == 10);
  CHECK(s[2].reservation_id == 7);
  CHECK(s[2].spent.total_tokens() == 300);
  CHECK(s[2].spent.cost_usd == Approx(0.125));
  auto ev = db.take_committed_events();
  std::vector<std::string> names;
  for (auto& e : ev)
    names.push_back(e.event.event);
  CHECK(names == std::vector<std::string>{"task_started", "task_started",
                                          "task_completed", "task_failed",
                                          "budget_charged"});
  auto st = db.status();
  CHECK(st.budget.tokens_used == 80 + 10 + 300);
  CHECK(sql_int(path, "SELECT SUM(reserved_tokens) FROM tasks") == 0);
  auto rows = db.results("");
  CHECK(rows[2].prompt_tokens == 300); // the task carries its charge
  CHECK(run.id == 1);
}

// The marks of an attempt may name the task by its seq (task::seq, as the
// queue fetched it): found without the id's index, the id still checked.
TEST_CASE("store: marks found by a task's seq, and a seq of another task "
          "changes nothing but the task the id names",
          "[store][events]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  store db(path, store::open_mode::create_if_missing);
  REQUIRE(db.submit({unit_task("a"), unit_task("b")}, "f.jsonl")
            .error.empty());
  db.open_run(100000, 10.0);
  auto fetched = db.fetch_runnable(fetch_cursor{}, 10);
  REQUIRE(fetched.size() == 2);
  REQUIRE(fetched[0].id == "a");
  int64_t seq_a = fetched[0].seq, seq_b = fetched[1].seq;
  REQUIRE(seq_a != seq_b);
  call_outcome out;
  out.ok = true;
  out.result = "{}";
  out.provider = "p";
  out.model = "m";
  auto names = [&](const std::string& id) {
    std::vector<std::string> out;
    for (auto& e : db.events_of(id, 100))
      out.push_back(e.event.event);
    return out;
  };
  auto in_state = [&](const std::string& id, const std::string& st) {
    return sql_int(path, "SELECT COUNT(*) FROM tasks WHERE id = '" + id +
                           "' AND state = '" + st + "'") == 1;
  };
  SECTION("its own seq") {
    CHECK(db.mark_running("a", 1, held_reservation{5, 100, 0.5},
                          make_event("task_started", "a", 1), seq_a));
    CHECK(db.mark_completed("a", 1, out, usage{60, 20, 0.1},
                            make_event("task_completed", "a", 1), 5, seq_a));
    CHECK(in_state("a", "completed"));
    CHECK(sql_int(path, "SELECT COUNT(*) FROM events WHERE task_id = 'a' "
                        "AND task_seq = " + std::to_string(seq_a)) == 3);
  }
  SECTION("another task's seq") {
    CHECK(db.mark_running("a", 1, held_reservation{5, 100, 0.5},
                          make_event("task_started", "a", 1), seq_b));
    CHECK(in_state("a", "running"));
    CHECK(in_state("b", "pending"));
    CHECK(db.mark_completed("a", 1, out, usage{60, 20, 0.1},
                            make_event("task_completed", "a", 1), 5, seq_b));
    CHECK(in_state("a", "completed"));
    CHECK(in_state("b", "pending"));
    // Each event under the task it names, never under the seq given.
    CHECK(sql_int(path, "SELECT COUNT(*) FROM events WHERE task_seq = " +
                          std::to_string(seq_b)) == 1);
  }
  // Either way: a's events are a's, b has only its submission.
  CHECK(names("a") == std::vector<std::string>{"task_submitted",
                                               "task_started",
                                               "task_completed"});
  CHECK(names("b") == std::vector<std::string>{"task_submitted"});
  // A stale attempt is stale by seq as by id.
  CHECK_FALSE(db.mark_completed("a", 1, out, usage{}, {}, 0, seq_a));
  CHECK(db.take_settlements().size() == 1);
}
