// `bgagent requeue` brings quarantined tasks back to pending; the next run
// completes them.
#include <catch2/catch.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("a requeued quarantined task is completed by the next run",
          "[e2e][requeue]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("q1", "summarize", "Fails on this provider. [fail]"),
               make_task("q2", "summarize", "Also fails here. [permanent]"),
               make_task("ok", "summarize", "Fine everywhere.")});
  env_map env{{"LLM_PROVIDER", "scripted"}, {"BG_AGENT_MAX_RETRIES", "0"}};
  REQUIRE(run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env)
            .exit_code == 0);
  auto st = status_json(dir.path());
  REQUIRE(st["tasks"]["quarantined"] == 2);

  // Only quarantined tasks can be requeued.
  auto wrong = run_bgagent({"requeue", "ok"}, dir.path());
  CHECK(wrong.exit_code == 2);
  CHECK(wrong.err.find("not quarantined") != std::string::npos);

  auto one = run_bgagent({"requeue", "q1"}, dir.path());
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  CHECK(one.out.find("1 task(s) requeued") != std::string::npos);
  auto rows = results_by_id(dir.path());
  CHECK(rows["q1"]["state"] == "pending");
  CHECK(rows["q2"]["state"] == "quarantined");
  auto all = run_bgagent({"requeue", "--quarantined"}, dir.path());
  REQUIRE(all.exit_code == 0);
  CHECK(all.out.find("1 task(s) requeued") != std::string::npos);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto requeued = count_by_task(audit, "task_requeued");
  CHECK(requeued["q1"] == 1);
  CHECK(requeued["q2"] == 1);

  // A run on a provider that accepts them completes both.
  auto r = run_bgagent({"run"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  rows = results_by_id(dir.path());
  CHECK(rows["q1"]["state"] == "completed");
  CHECK(rows["q2"]["state"] == "completed");
  CHECK(rows["q1"]["provider"] == "offline");
  CHECK(rows["ok"]["provider"] == "scripted");
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 3);
  for (auto& kv : completed)
    CHECK(kv.second == 1);
}
