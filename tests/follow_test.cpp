// `bgagent run --follow` keeps polling: tasks submitted with `bgagent submit`
// while it runs get processed, once each.
#include <catch2/catch.hpp>

#include <csignal>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("a follow run processes tasks submitted while it is active",
          "[e2e][follow]") {
  temp_dir dir;
  env_map env{{"BG_AGENT_POLL_INTERVAL", "0.2"}};
  write_tasks(dir.path("first.jsonl"), make_tasks(3, "a-"));
  write_tasks(dir.path("second.jsonl"), make_tasks(4, "b-"));
  write_tasks(dir.path("third.jsonl"), make_tasks(5, "c-"));
  auto audit = dir.path("bgagent-audit.jsonl");
  background_process p({bgagent_binary(), "run", "--follow", "--tasks",
                        "first.jsonl"},
                       dir.path(), env, "follow");
  auto completed = [&] {
    return static_cast<int>(audit_events(audit, "task_completed").size());
  };
  // Each stage waits for its count (or the process's end) and then
  // requires both: a run that stopped when its queue was empty cannot reach
  // the next stage's count, so no stage passes either way.
  REQUIRE(wait_until([&] { return completed() == 3 || !p.running(); }, 60));
  REQUIRE(completed() == 3);
  REQUIRE(p.running());

  auto sub = run_bgagent({"submit", "second.jsonl"}, dir.path(), env);
  INFO(sub.err);
  REQUIRE(sub.exit_code == 0);
  REQUIRE(wait_until([&] { return completed() == 7 || !p.running(); }, 60));
  // Submitted after its queue ran dry: only a following run does these.
  REQUIRE(completed() == 7);
  REQUIRE(p.running());
  auto sub2 = run_bgagent({"submit", "third.jsonl"}, dir.path(), env);
  REQUIRE(sub2.exit_code == 0);
  REQUIRE(wait_until([&] { return completed() == 12 || !p.running(); }, 60));
  REQUIRE(completed() == 12);
  REQUIRE(p.running());

  p.signal(SIGTERM);
  CHECK(p.wait(60) == 143);
  auto per_task = count_by_task(audit, "task_completed");
  CHECK(per_task.size() == 12);
  for (auto& kv : per_task)
    CHECK(kv.second == 1);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 12);
  CHECK(st["tasks"]["pending"] == 0);
}
