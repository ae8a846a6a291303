// Durability with the real binary: a store made by version 1 is migrated in
// place and its work finished; a newer store is refused untouched; and
// `bgagent run` killed with SIGKILL again and again, then run to the end,
// completes every task exactly once with exactly one `task_completed` line
// each, the audit log's seq strictly increasing and the log equal to the
// store's `events` table.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include <sqlite3.h>

#include "persistence/store.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string current_version = std::to_string(store::schema_version);
const std::string newer_version = std::to_string(store::schema_version + 1);

// The schema of bgagent's store before version 2, exactly as it shipped.
const char* schema_v1 = R"SQL(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  idempotency_key TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  input TEXT NOT NULL,
  max_tokens INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  provider TEXT,
  model TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  token_limit INTEGER NOT NULL DEFAULT 0,
  cost_limit REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS usage_ledger(
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  provider TEXT,
  model TEXT,
  ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_ledger_run ON usage_ledger(run_id);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
)SQL";

std::string sql_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

env_map offline_env() {
  return {{"LLM_PROVIDER", "offline"},
          {"BG_AGENT_TOKEN_BUDGET", "100000000000"},
          {"BG_AGENT_COST_BUDGET", "1000000"}};
}

// A task row as version 1 wrote it.
std::string v1_task(int seq, const std::string& id, const std::string& state,
                    int attempts, const std::string& extra_cols = "",
                    const std::string& extra_vals = "") {
  return "INSERT INTO tasks(seq, id, idempotency_key, type, input, "
         "max_tokens, state, attempts, created_at, updated_at" +
         extra_cols + ") VALUES(" + std::to_string(seq) + ", '" + id +
         "', 'key-" + id + "', 'summarize', 'Task " + id +
         " is here. It has two sentences.', 32, '" + state + "', " +
         std::to_string(attempts) +
         ", '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'" +
         extra_vals + ");\n";
}

// The number of tasks for the kill -9 test: fewer under AddressSanitizer
// (its binaries run several times slower), or BGAGENT_DURABILITY_TASKS.
int kill_test_tasks() {
  if (const char* v = std::getenv("BGAGENT_DURABILITY_TASKS"))
    return std::max(100, std::atoi(v));
#if defined(__SANITIZE_ADDRESS__)
  return 20000;
#else
  return 100000;
#endif
}

} // namespace

TEST_CASE("a version-1 store is migrated in place (to 2, then 3) and its "
          "work finished",
          "[e2e][durability]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  std::string rows = std::string(schema_v1) +
                     "INSERT INTO runs(id, state, started_at, token_limit, "
                     "cost_limit) VALUES(1, 'running', "
                     "'2026-01-01T00:00:00.000Z', 50000, 1.0);\n";
  rows += v1_task(1, "p1", "pending", 0);
  rows += v1_task(2, "p2", "pending", 0);
  rows += v1_task(3, "r1", "running", 1);
  rows += v1_task(4, "w1", "retry_wait", 1, ", error", ", 'HTTP 503'");
  rows += v1_task(5, "c1", "completed", 1,
                  ", result, prompt_tokens, completion_tokens, provider, "
                  "model",
                  ", '{\"summary\":\"kept\"}', 40, 8, 'offline', 'offline'");
  rows += v1_task(6, "q1", "quarantined", 4, ", error", ", 'HTTP 400'");
  rows += v1_task(7, "x1", "cancelled", 0);
  rows += "INSERT INTO usage_ledger(run_id, task_id, attempt, "
          "prompt_tokens, completion_tokens, cost_usd, provider, model, ts) "
          "VALUES(1, 'c1', 1, 40, 8, 0, 'offline', 'offline', "
          "'2026-01-01T00:00:00.000Z');\n";
  // As bgagent made it: in WAL mode.
  exec_sql(db, "PRAGMA journal_mode=WAL;\n" + rows);
  // Version 1's audit log: its auditor numbered lines itself, up to 40.
  std::string log;
  for (int i = 1; i <= 40; ++i)
    log += "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":" +
           std::to_string(i) + ",\"event\":\"task_submitted\"}\n";
  write_file(dir.path("bgagent-audit.jsonl"), log);
  auto env = offline_env();

  // A read-only command migrates (one transaction) and shows the data.
  auto st = run_bgagent({"status", "--json"}, dir.path(), env);
  INFO(st.err);
  REQUIRE(st.exit_code == 0);
  auto j = nlohmann::json::parse(st.out, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["tasks"]["pending"] == 2);
  CHECK(j["tasks"]["running"] == 1);
  CHECK(j["tasks"]["retry_wait"] == 1);
  CHECK(j["tasks"]["completed"] == 1);
  CHECK(j["tasks"]["quarantined"] == 1);
  CHECK(j["tasks"]["cancelled"] == 1);
  CHECK(j["budget"]["tokens_used"] == 48);
  CHECK(j["run"]["id"] == 1);
  CHECK(sql_text(db, "SELECT value FROM meta WHERE key = "
                     "'schema_version'") == current_version);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events") == 0);
  // Version 3: each task has its built-in type's fingerprint, whose
  // definition is stored.
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE type_fingerprint = "
                    "''") == 0);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks t JOIN task_types ty ON "
                    "ty.fingerprint = t.type_fingerprint AND ty.name = "
                    "t.type") == 7);
  // Version 4: each task's content hash, for conflicts on resubmission.
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE length(content_hash) "
                    "= 64") == 7);
  CHECK(sql_int(db, "SELECT SUM(reserved_tokens) + SUM(reservation_id) FROM "
                    "tasks") == 0);
  CHECK(sql_text(db, "SELECT result FROM tasks WHERE id = 'c1'") ==
        "{\"summary\":\"kept\"}");
  // Opening it again is a no-op.
  REQUIRE(run_bgagent({"results", "--json"}, dir.path(), env).exit_code == 0);
  CHECK(sql_text(db, "SELECT value FROM meta WHERE key = "
                     "'schema_version'") == current_version);

  auto r = run_bgagent({"run"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto res = results_by_id(dir.path(), env);
  REQUIRE(res.size() == 7);
  for (auto id : {"p1", "p2", "r1", "w1", "c1"}) {
    INFO(id);
    CHECK(res[id]["state"] == "completed");
  }
  CHECK(res["q1"]["state"] == "quarantined");
  CHECK(res["x1"]["state"] == "cancelled");
  CHECK(res["c1"]["result"]["summary"] == "kept"); // not run again
  CHECK(res["r1"]["attempts"] == 2); // its interrupted attempt counted
  auto after = status_json(dir.path(), env);
  CHECK(after["run"]["id"] == 1); // the v1 run, resumed and finished
  CHECK(after["run"]["state"] == "finished");
  // Made in 4 KiB pages, it keeps them (only a new store gets 8 KiB).
  CHECK(sql_int(db, "PRAGMA page_size") == 4096);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 4);
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  CHECK(count_by_task(audit, "task_interrupted")["r1"] == 1);
  // seq continues after version 1's lines, strictly increasing, and the
  // new lines are exactly the store's events.
  auto lines = read_jsonl(audit);
  uint64_t last = 0;
  for (auto& l : lines) {
    CHECK(l["seq"].get<uint64_t>() > last);
    last = l["seq"].get<uint64_t>();
  }
  CHECK(sql_int(db, "SELECT MIN(seq) FROM events") == 41);
  CHECK(static_cast<long long>(lines.size()) ==
        40 + sql_int(db, "SELECT COUNT(*) FROM events"));
  CHECK(static_cast<long long>(last) ==
        sql_int(db, "SELECT MAX(seq) FROM events"));
}

TEST_CASE("a store from a newer bgagent is refused and left alone",
          "[e2e][durability]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  exec_sql(db, "PRAGMA journal_mode=WAL;\n" + std::string(schema_v1) +
                 "UPDATE meta SET value = '" + newer_version + "' WHERE key = "
                 "'schema_version';\n" +
                 v1_task(1, "a", "pending", 0));
  auto bytes = read_file(db);
  for (auto args : std::vector<std::vector<std::string>>{
         {"status"}, {"run"}, {"results", "--json"}}) {
    auto r = run_bgagent(args, dir.path(), offline_env());
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 2);
    auto errs = lines_of(r.err);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].find("schema version " + newer_version) !=
          std::string::npos);
    CHECK(errs[0].find("bgagent.db") != std::string::npos);
  }
  CHECK(read_file(db) == bytes);
  CHECK(sql_text(db, "SELECT value FROM meta WHERE key = "
                     "'schema_version'") == newer_version);
}

TEST_CASE("kill -9 again and again: every task completed once, every "
          "completion audited once",
          "[e2e][durability][crash]") {
  temp_dir dir;
  const int n = kill_test_tasks();
  auto env = offline_env();
  env["BG_AGENT_WORKERS"] = "64";
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(n, "k"));
  auto sub = run_bgagent({"submit", tasks}, dir.path(), env, 300);
  INFO(sub.err);
  REQUIRE(sub.exit_code == 0);

  auto db = dir.path("bgagent.db");
  // A store the binary made: 8 KiB pages, the crashes below land in them.
  CHECK(sql_int(db, "PRAGMA page_size") == 8192);
  auto audit = dir.path("bgagent-audit.jsonl");
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> ms(300, 1500);
  int killed = 0;
  for (int i = 0; i < 6; ++i) {
    background_process p({bgagent_binary(), "run"}, dir.path(), env,
                         "victim" + std::to_string(i));
    std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
    if (!p.running())
      break; // finished already (a fast machine)
    p.signal(SIGKILL);
    auto rc = p.wait(30);
    if (rc == 0)
      break; // it finished between the check and the signal
    REQUIRE(rc == 128 + SIGKILL);
    ++killed;
  }
  auto done_before = sql_int(db, "SELECT COUNT(*) FROM tasks WHERE state = "
                                 "'completed'");
  CAPTURE(killed, done_before);
  auto last = run_bgagent({"run"}, dir.path(), env, 600);
  INFO(last.err);
  REQUIRE(last.exit_code == 0);

  // Every task completed exactly once.
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE state = "
                    "'completed'") == n);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_completed'") == n);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM (SELECT task_id FROM events WHERE "
                    "event = 'task_completed' GROUP BY task_id HAVING "
                    "COUNT(*) > 1)") == 0);
  // Exactly one task_completed line per task, seq strictly increasing, no
  // duplicates, and the log is exactly the store's events table.
  auto lines = read_jsonl(audit);
  std::map<std::string, int> completed;
  uint64_t prev = 0;
  bool increasing = true;
  std::set<uint64_t> seqs;
  for (auto& l : lines) {
    auto seq = l["seq"].get<uint64_t>();
    if (seq <= prev)
      increasing = false;
    prev = seq;
    seqs.insert(seq);
    if (l["event"] == "task_completed")
      ++completed[l["task_id"].get<std::string>()];
  }
  CHECK(increasing);
  CHECK(seqs.size() == lines.size());
  CHECK(static_cast<int>(completed.size()) == n);
  int twice = 0;
  for (auto& kv : completed)
    twice += kv.second != 1;
  CHECK(twice == 0);
  CHECK(static_cast<long long>(lines.size()) ==
        sql_int(db, "SELECT COUNT(*) FROM events"));
  CHECK(static_cast<long long>(prev) ==
        sql_int(db, "SELECT MAX(seq) FROM events"));
  // Each interrupted attempt was charged its reservation, audited once.
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_interrupted'") ==
        sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'budget_charged'"));
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE reserved_tokens > "
                    "0") == 0);
}

TEST_CASE("BG_AGENT_SYNC is full or normal", "[e2e][durability][config]") {
  temp_dir dir;
  write_tasks(dir.path("t.jsonl"), make_tasks(3));
  auto env = offline_env();
  env["BG_AGENT_SYNC"] = "sometimes";
  auto bad = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path(), env);
  CHECK(bad.exit_code == 2);
  auto errs = lines_of(bad.err);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].find("BG_AGENT_SYNC=sometimes (environment): not one of "
                     "full, normal") != std::string::npos);
  for (auto mode : {"normal", "full"}) {
    env["BG_AGENT_SYNC"] = mode;
    auto r = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path(), env);
    INFO(mode << ": " << r.err);
    CHECK(r.exit_code == 0);
  }
  CHECK(status_json(dir.path(), offline_env())["tasks"]["completed"] == 3);
}

// What a large `submit` does to a run: its one all-or-nothing transaction
// holds the store's write lock for as long as it takes (tens of seconds for
// a million tasks). Held here by the test itself for 9 s, past SQLite's 5 s
// busy timeout, which used to end the run's checkpointer and the run with
// exit 1.
TEST_CASE("a run waits out another process's long write transaction and "
          "finishes every task once",
          "[e2e][durability][lock]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  // Each fails once, then succeeds: a failed attempt's report waits on the
  // store (its usage is written first), as a completed one does not.
  write_tasks(tasks, make_tasks(30, "t", " [fail:1]"));
  // A 1 s call timeout: a worker silent for 6.5 s counts as hung, which
  // the 9 s hold passes; waiting on the store is not hanging.
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              {"BG_AGENT_TIMEOUT", "1"},
              {"BG_AGENT_HEARTBEAT_SECONDS", "0.5"},
              {"BG_AGENT_TEST_DELAY_MS", "100"}};
  background_process p({testbin_binary(), "run", "--tasks", tasks},
                       dir.path(), env, "run");
  auto audit = dir.path("bgagent-audit.jsonl");
  REQUIRE(wait_until(
    [&] {
      return !p.running() || audit_events(audit, "task_completed").size() >= 2;
    },
    60));
  REQUIRE(p.running());

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.path("bgagent.db").c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  auto held_at = audit_events(audit, "task_completed").size();
  std::this_thread::sleep_for(std::chrono::seconds(9));
  // Nothing was committed while the lock was held...
  CHECK(audit_events(audit, "task_completed").size() <= held_at + 2);
  CHECK(p.running());
  REQUIRE(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  // ...and the run said why it waited, then carried on to the end.
  REQUIRE(p.wait(60) == 0);
  INFO(p.err());
  CHECK(contains(p.err(), "s for the write lock of bgagent.db: another "
                          "process holds it"));
  auto completed = count_events_by_task(audit, "task_completed");
  CHECK(completed.size() == 30);
  for (auto& kv : completed) {
    INFO(kv.first);
    CHECK(kv.second == 1);
  }
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 30);
  CHECK(audit_events(audit, "worker_restarted").empty());
}

// The real thing the test above stands for: a million tasks submitted (one
// streamed transaction) into the store of a run that is going. The run
// waits for the write lock, then goes on with the new work; the submission
// loses nothing; no task is completed twice.
TEST_CASE("a submit of a million tasks while a run is going: the run goes "
          "on, nothing is lost, nothing is completed twice",
          "[e2e][durability][lock][million]") {
  temp_dir dir;
  write_tasks(dir.path("first.jsonl"), make_tasks(30));
  {
    // Short inputs: 1,000,000 lines in about 70 MB.
    std::string text;
    text.reserve(72u * 1000000u);
    for (int i = 1; i <= 1000000; ++i)
      text += R"({"id":"m)" + std::to_string(i) +
              R"(","type":"summarize","input":"Task )" + std::to_string(i) +
              R"(. Short."})" "\n";
    write_file(dir.path("million.jsonl"), text);
  }
  // Slow calls and a 2 s timeout: the run is still going when the
  // submission starts, and waiting on the store is not hanging.
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              {"BG_AGENT_TIMEOUT", "2"},
              {"BG_AGENT_HEARTBEAT_SECONDS", "0.5"},
              {"BG_AGENT_POLL_INTERVAL", "0.5"},
              {"BG_AGENT_TEST_DELAY_MS", "50"}};
  background_process p(
    {testbin_binary(), "run", "--follow", "--tasks", "first.jsonl"},
    dir.path(), env, "run");
  auto db = dir.path("bgagent.db");
  auto completed = [&] {
    return sql_int(db, "SELECT COUNT(*) FROM tasks WHERE state = "
                       "'completed'");
  };
  // Still going, or what it said when it ended.
  auto going = [&] {
    bool up = p.running();
    if (!up)
      FAIL_CHECK("the run ended: " << p.err());
    return up;
  };
  REQUIRE(wait_until([&] { return !p.running() || completed() >= 2; }, 60));
  REQUIRE(going());

  auto s = run_bgagent({"submit", "million.jsonl"}, dir.path());
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  CHECK(contains(s.out, "1000000 task(s) submitted"));
  REQUIRE(going());
  // The run goes on with the new work (following, it polls the store).
  REQUIRE(wait_until(
    [&] {
      return !p.running() ||
             sql_int(db, "SELECT COUNT(*) FROM tasks WHERE id LIKE 'm%' AND "
                         "state = 'completed'") >= 4;
    },
    120));
  REQUIRE(going());
  p.signal(SIGTERM);
  CHECK(p.wait(120) == 143); // stopped by the signal: resumable
  INFO(p.err());
  // (The two overlapped: the run was going before the submission began
  // and after it ended. Whether it said it waited depends on how long the
  // submission held the lock: 5 s at least, on this machine about 25.)

  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks") == 1000030);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE state NOT IN "
                    "('pending', 'completed')") == 0);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE state = 'completed' "
                    "AND id LIKE 't%'") == 30);
  // Each completion audited once, and each task submitted once.
  CHECK(sql_int(db, "SELECT COUNT(*) FROM (SELECT task_id FROM events WHERE "
                    "event = 'task_completed' GROUP BY task_id HAVING "
                    "COUNT(*) > 1)") == 0);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_completed'") == completed());
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = "
                    "'task_submitted' AND task_id LIKE 'm%'") == 1000000);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "worker_restarted")
          .empty());
}
