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
  REQUIRE(wait_until([&] { return completed() == 3 || !p.running(); }, 60));
  REQUIRE(p.running()); // it does not stop when the queue is empty

  auto sub = run_bgagent({"submit", "second.jsonl"}, dir.path(), env);
  INFO(sub.err);
  REQUIRE(sub.exit_code == 0);
  REQUIRE(wait_until([&] { return completed() == 7 || !p.running(); }, 60));
  auto sub2 = run_bgagent({"submit", "third.jsonl"}, dir.path(), env);
  REQUIRE(sub2.exit_code == 0);
  REQUIRE(wait_until([&] { return completed() == 12 || !p.running(); }, 60));
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
