// kill -9 of `bgagent run` in the middle of a run, then `bgagent run` again:
// nothing lost, nothing done twice, tokens spent before the crash still
// count against the budget.
#include <catch2/catch.hpp>

#include <csignal>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// Starts a scripted run of `tasks_file`, waits until at least `done` tasks
// are completed and some are in flight, then kills it with SIGKILL.
void run_and_kill(const temp_dir& dir, const std::string& tasks_file,
                  const env_map& env, int done) {
  background_process p({testbin_binary(), "run", "--tasks", tasks_file},
                       dir.path(), env, "victim");
  auto audit = dir.path("bgagent-audit.jsonl");
  REQUIRE(wait_until(
    [&] {
      return !p.running() ||
             static_cast<int>(audit_events(audit, "task_completed").size()) >=
               done;
    },
    60));
  REQUIRE(p.running());
  p.signal(SIGKILL);
  REQUIRE(p.wait(30) == 128 + SIGKILL);
}

} // namespace

TEST_CASE("kill -9 mid-run, then run again: every task completed exactly once",
          "[e2e][crash]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(40));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "4"},
              {"BG_AGENT_TEST_DELAY_MS", "250"}};
  run_and_kill(dir, tasks, env, 8);

  auto db = dir.path("bgagent.db");
  auto before = status_json(dir.path());
  REQUIRE(before.is_object());
  auto tokens_before = before["budget"]["tokens_used"].get<uint64_t>();
  CHECK(tokens_before > 0);
  auto run_id = before["run"]["id"].get<int64_t>();
  CHECK(before["run"]["state"] == "running"); // nobody finished it
  std::vector<std::string> were_running;
  for (auto& kv : results_by_id(dir.path()))
    if (kv.second["state"] == "running")
      were_running.push_back(kv.first);
  CHECK_FALSE(were_running.empty()); // killed with calls in flight
  auto completed_before = before["tasks"]["completed"].get<int>();
  CHECK(completed_before >= 8);
  CHECK(completed_before < 40);

  env.erase("BG_AGENT_TEST_DELAY_MS");
  auto second = run_testbin({"run", "--tasks", tasks}, dir.path(), env);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 40);
  for (auto& kv : completed) {
    INFO(kv.first);
    CHECK(kv.second == 1);
  }
  // The tasks found running were audited as interrupted and then finished.
  auto interrupted = count_by_task(audit, "task_interrupted");
  auto rows = results_by_id(dir.path());
  for (auto& id : were_running) {
    INFO(id);
    CHECK(interrupted[id] == 1);
    CHECK(rows[id]["state"] == "completed");
  }
  CHECK(interrupted.size() == were_running.size());
  CHECK(audit_events(audit, "task_duplicate").size() == 40);
  // The audit sequence grows strictly across both processes.
  int64_t last = 0;
  for (auto& j : read_jsonl(audit)) {
    CHECK(j["seq"].get<int64_t>() > last);
    last = j["seq"].get<int64_t>();
  }

  auto after = status_json(dir.path());
  CHECK(after["tasks"]["completed"] == 40);
  CHECK(after["run"]["id"] == run_id); // the same run, resumed
  CHECK(after["run"]["state"] == "finished");
  auto tokens_after = after["budget"]["tokens_used"].get<uint64_t>();
  CHECK(tokens_after >= tokens_before);
  // What status shows is the ledger of the whole run, both processes.
  CHECK(static_cast<long long>(tokens_after) ==
        sql_int(db, "SELECT SUM(prompt_tokens + completion_tokens) FROM "
                    "usage_ledger"));
  CHECK(audit_events(audit, "run_started").size() == 2);
  CHECK(audit_events(audit, "run_started")[1]["detail"]
          .get<std::string>()
          .find("resumed") != std::string::npos);
}

TEST_CASE("tokens spent before a kill -9 count against the resumed run's "
          "budget",
          "[e2e][crash][budget]") {
  temp_dir dir;
  auto tasks = dir.path("tasks.jsonl");
  write_tasks(tasks, make_tasks(40));
  // Each task reserves 85 tokens and spends 62: the budget fits about 24.
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "4"},
              {"BG_AGENT_TOKEN_BUDGET", "1500"},
              {"BG_AGENT_TEST_DELAY_MS", "250"}};
  run_and_kill(dir, tasks, env, 8);
  auto tokens_before =
    status_json(dir.path())["budget"]["tokens_used"].get<uint64_t>();
  CHECK(tokens_before > 0);

  env.erase("BG_AGENT_TEST_DELAY_MS");
  auto second = run_testbin({"run", "--tasks", tasks}, dir.path(), env);
  INFO(second.err);
  REQUIRE(second.exit_code == 3); // the budget covers the run, not each process
  auto st = status_json(dir.path());
  auto used = st["budget"]["tokens_used"].get<uint64_t>();
  CHECK(used >= tokens_before);
  CHECK(used <= 1500);
  CHECK(sql_int(dir.path("bgagent.db"),
                "SELECT SUM(prompt_tokens + completion_tokens) FROM "
                "usage_ledger") <= 1500);
  CHECK(st["tasks"]["pending"].get<int>() > 0);
  CHECK(st["tasks"]["running"] == 0);
  auto completed = count_by_task(dir.path("bgagent-audit.jsonl"),
                                 "task_completed");
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  CHECK(static_cast<int>(completed.size()) == st["tasks"]["completed"]);
}
