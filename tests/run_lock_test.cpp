// One `bgagent run` per database: a second concurrent run is refused with a
// clear line and exit code 2, and the first one is not disturbed.
#include <catch2/catch.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("a second run on the same database is refused", "[e2e][lock]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(12));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              // 9 s of calls: the first run is still going when the second
              // has started, also on a loaded machine (at 200 ms a call it
              // once ended first, and the second was refused for mixing
              // providers instead).
              {"BG_AGENT_TEST_DELAY_MS", "1500"}};
  auto audit = dir.path("bgagent-audit.jsonl");
  background_process first({testbin_binary(), "run", "--tasks",
                            "tasks.jsonl"},
                           dir.path(), env, "first");
  REQUIRE(wait_until(
    [&] {
      return !first.running() || !audit_events(audit, "task_started").empty();
    },
    60));
  REQUIRE(first.running());

  auto second = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path());
  INFO(second.err);
  CHECK(second.exit_code == 2);
  auto lines = lines_of(second.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("database bgagent.db is in use by another `bgagent "
                      "run`") != std::string::npos);

  // Read-only commands still work while the run is active.
  CHECK(run_bgagent({"status", "--json"}, dir.path()).exit_code == 0);

  REQUIRE(first.wait(60) == 0);
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 12);
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  CHECK(audit_events(audit, "run_started").size() == 1);
}
