// `bgagent run` on a store of several files (BG_AGENT_SHARDS; docs/plans/
// sharded-store.md step 3), the real binary on real files: every task
// completed once, the audit log the union of the files' events in strictly
// increasing seq order, status and results read over every file, a kill -9
// taken up with nothing charged twice, and what does not run on such a
// store yet refused with exit 2.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <set>

#include "persistence/shard_map.hpp"
#include "tests/support/job.hpp"
#include "tests/support/store_files.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

constexpr uint32_t files = 4;

// Each event naming a task is in its task's file, and so is the task.
void check_events_in_their_files(const std::string& db) {
  for (uint32_t k = 0; k < files; ++k) {
    auto ids = sql_text_all(shard_file(db, k),
                            "SELECT DISTINCT task_id FROM events WHERE "
                            "task_id IS NOT NULL AND task_id != ''");
    CHECK_FALSE(ids.empty());
    for (auto& id : ids) {
      INFO(id);
      CHECK(shard_of(id, files) == k);
    }
    for (auto& id : sql_text_all(shard_file(db, k), "SELECT id FROM tasks"))
      CHECK(shard_of(id, files) == k);
  }
}

} // namespace

TEST_CASE("a run on a store of 4 files completes every task once, and its "
          "audit log holds every file's events once in seq order",
          "[e2e][shard]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(2000));
  env_map env{{"BG_AGENT_SHARDS", "4"}, {"BG_AGENT_WORKERS", "32"}};
  auto r = run_bgagent({"run", "--tasks", tasks}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  auto db = dir.path("bgagent.db");
  for (uint32_t k = 1; k < files; ++k)
    REQUIRE(std::filesystem::exists(shard_file(db, k)));
  // The tasks are spread over the files by id, each in one file.
  long long sum = 0;
  for (uint32_t k = 0; k < files; ++k) {
    auto n = sql_int(shard_file(db, k), "SELECT COUNT(*) FROM tasks");
    CHECK(n > 300); // 2,000 over 4 files: about 500 each
    sum += n;
    CHECK(sql_int(shard_file(db, k),
                  "SELECT COUNT(*) FROM tasks WHERE state != 'completed'") ==
          0);
  }
  CHECK(sum == 2000);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 2000);
  for (auto& [id, n] : completed) {
    INFO(id);
    CHECK(n == 1);
  }
  CHECK(count_by_task(audit, "task_submitted").size() == 2000);
  CHECK(count_by_task(audit, "task_started").size() == 2000);
  // The log is exactly the union of the files' events, in seq order.
  auto seqs = log_seqs(audit);
  auto in_files = store_events(db, files);
  REQUIRE(seqs.size() == in_files.size());
  size_t i = 0;
  for (auto& [seq, k] : in_files)
    CHECK(seqs[i++] == seq);
  check_events_in_their_files(db);
  // Each task's events are in order: submitted, started, completed.
  std::map<std::string, std::string> last_event;
  for (auto& j : read_jsonl(audit)) {
    if (!j.contains("task_id") || j["task_id"].is_null())
      continue;
    auto id = j["task_id"].get<std::string>();
    auto ev = j["event"].get<std::string>();
    auto& before = last_event[id];
    if (ev == "task_started")
      CHECK(before == "task_submitted");
    if (ev == "task_completed")
      CHECK(before == "task_started");
    before = ev;
  }

  // status and results read every file.
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 2000);
  CHECK(st["run"]["state"] == "finished");
  long long tokens = 0;
  for (uint32_t k = 0; k < files; ++k)
    tokens += sql_int(shard_file(db, k),
                      "SELECT COALESCE(SUM(prompt_tokens + "
                      "completion_tokens), 0) FROM usage_ledger");
  CHECK(tokens > 0);
  CHECK(st["budget"]["tokens_used"].get<long long>() == tokens);
  auto rows = results_by_id(dir.path());
  CHECK(rows.size() == 2000);
}

TEST_CASE("kill -9 of a run on a store of 4 files, then run again: every "
          "task completed once and every call charged once",
          "[e2e][shard][crash]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(60));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_SHARDS", "4"},
              {"BG_AGENT_WORKERS", "8"},
              {"BG_AGENT_TEST_DELAY_MS", "200"}};
  auto audit = dir.path("bgagent-audit.jsonl");
  {
    background_process p({testbin_binary(), "run", "--tasks", tasks},
                         dir.path(), env, "victim");
    REQUIRE(wait_until(
      [&] {
        return !p.running() ||
               audit_events(audit, "task_completed").size() >= 12;
      },
      60));
    REQUIRE(p.running());
    p.signal(SIGKILL);
    REQUIRE(p.wait(30) == 128 + SIGKILL);
  }
  auto db = dir.path("bgagent.db");
  std::vector<std::string> were_running;
  for (auto& kv : results_by_id(dir.path()))
    if (kv.second["state"] == "running")
      were_running.push_back(kv.first);
  CHECK_FALSE(were_running.empty()); // killed with calls in flight

  // Again, without BG_AGENT_SHARDS: the store says how many files it has.
  env.erase("BG_AGENT_TEST_DELAY_MS");
  env.erase("BG_AGENT_SHARDS");
  auto second = run_testbin({"run", "--tasks", tasks}, dir.path(), env);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);

  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 60);
  for (auto& [id, n] : completed) {
    INFO(id);
    CHECK(n == 1);
  }
  auto interrupted = count_by_task(audit, "task_interrupted");
  CHECK(interrupted.size() == were_running.size());
  for (auto& id : were_running) {
    INFO(id);
    CHECK(interrupted[id] == 1);
  }
  // Every event once in the log, strictly increasing across both runs.
  auto seqs = log_seqs(audit);
  CHECK(seqs.size() == store_events(db, files).size());
  // The spending shown is every file's ledger, each call once; no
  // reservation is left.
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 60);
  long long tokens = 0;
  for (uint32_t k = 0; k < files; ++k) {
    tokens += sql_int(shard_file(db, k),
                      "SELECT COALESCE(SUM(prompt_tokens + "
                      "completion_tokens), 0) FROM usage_ledger");
    CHECK(sql_int(shard_file(db, k),
                  "SELECT COUNT(*) FROM tasks WHERE reservation_id IS NOT "
                  "NULL AND reservation_id != 0") == 0);
  }
  CHECK(st["budget"]["tokens_used"].get<long long>() == tokens);
  CHECK(audit_events(audit, "budget_charged").size() >=
        were_running.size());
}

TEST_CASE("what does not run on a store of several files yet is refused "
          "with exit 2, naming the store, nothing changed",
          "[e2e][shard]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(5));
  env_map four{{"BG_AGENT_SHARDS", "4"}};
  REQUIRE(run_bgagent({"run", "--tasks", tasks}, dir.path(), four)
            .exit_code == 0);
  auto db = dir.path("bgagent.db");
  auto events = store_events(db, files).size();

  SECTION("--follow") {
    auto r = run_bgagent({"run", "--follow"}, dir.path(), {});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("store of 4 files") != std::string::npos);
    CHECK(r.err.find("--follow") != std::string::npos);
  }
  SECTION("serve on a new database makes no file") {
    auto r = run_bgagent({"serve", "--db", dir.path("new.db")}, dir.path(),
                         four);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("`serve`") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.path("new.db")));
    CHECK_FALSE(std::filesystem::exists(dir.path("new.db.shard1")));
  }
  SECTION("estimate") {
    auto r = run_bgagent({"estimate"}, dir.path(), {});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("one file of a store of several") != std::string::npos);
  }
  SECTION("another count of files") {
    auto r = run_bgagent({"run", "--tasks", tasks}, dir.path(),
                         {{"BG_AGENT_SHARDS", "2"}});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("bgagent.db") != std::string::npos);
  }
  SECTION("requeue") {
    auto r = run_bgagent({"requeue", "--completed"}, dir.path(), {});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("one file of a store of several") != std::string::npos);
  }
  SECTION("a count out of range") {
    for (auto bad : {"0", "65", "two"}) {
      auto r = run_bgagent({"status"}, dir.path(),
                           {{"BG_AGENT_SHARDS", bad}});
      INFO(bad);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("BG_AGENT_SHARDS") != std::string::npos);
    }
  }
  CHECK(store_events(db, files).size() == events);
}

TEST_CASE("submit to a store of 4 files: all of it in the files and the "
          "log at once, and refused while a run uses the store",
          "[e2e][shard]") {
  temp_dir dir;
  auto first = dir.path("first.jsonl");
  write_tasks(first, make_tasks(40, "a"));
  env_map env{{"BG_AGENT_SHARDS", "4"}};
  // A new store made of 4 files by submit itself.
  auto r = run_bgagent({"submit", first}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("40 task(s) submitted") != std::string::npos);
  auto db = dir.path("bgagent.db");
  auto audit = dir.path("bgagent-audit.jsonl");
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["pending"] == 40);
  CHECK(count_by_task(audit, "task_submitted").size() == 40);
  CHECK(log_seqs(audit).size() == store_events(db, files).size());

  // The same file again: every task known, nothing new (no variable: the
  // store says 4 files).
  r = run_bgagent({"submit", first}, dir.path(), {});
  REQUIRE(r.exit_code == 0);
  CHECK(audit_events(audit, "task_duplicate").size() == 40);

  // While a run goes, a submit is refused, naming the store.
  auto slow = env_map{{"LLM_PROVIDER", "scripted"},
                      {"BG_AGENT_WORKERS", "2"},
                      {"BG_AGENT_TEST_DELAY_MS", "300"}};
  background_process p({testbin_binary(), "run"}, dir.path(), slow, "run");
  REQUIRE(wait_until(
    [&] { return !audit_events(audit, "task_started").empty(); }, 60));
  auto second = dir.path("second.jsonl");
  write_tasks(second, make_tasks(5, "b"));
  auto events = store_events(db, files).size();
  r = run_bgagent({"submit", second}, dir.path(), {});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("another bgagent (a run or a submit) is using it") !=
        std::string::npos);
  p.signal(SIGTERM);
  CHECK(p.wait(60) != 128 + SIGKILL);
  CHECK(count_by_task(audit, "task_submitted").count("b1") == 0);
  CHECK(store_events(db, files).size() >= events);
}
