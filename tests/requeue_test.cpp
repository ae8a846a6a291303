// `bgagent requeue` brings quarantined tasks (or, with --completed,
// completed ones) back to pending; the next run completes them.
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
  // Another provider than the one that quarantined them: said explicitly.
  auto mixed = run_bgagent({"run"}, dir.path());
  CHECK(mixed.exit_code == 2);
  CHECK(mixed.err ==
        "bgagent: bgagent.db holds results from scripted, and this run would "
        "use offline (no provider configured: is its key set?); set that "
        "provider's variables again, start another database (--db FILE), or "
        "give --provider offline to add its results to these\n");
  auto r = run_bgagent({"run", "--provider", "offline"}, dir.path());
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

TEST_CASE("requeue --completed runs finished tasks again, audited, and an id "
          "that is not completed is named",
          "[e2e][requeue]") {
  temp_dir dir;
  write_tasks(dir.path("t.jsonl"), make_tasks(4, "t"));
  REQUIRE(run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path()).exit_code ==
          0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto r = run_bgagent({"requeue", "--completed", "t2"}, dir.path());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1 task(s) requeued\n");
  auto rows = results_by_id(dir.path());
  CHECK(rows["t2"]["state"] == "pending");
  CHECK(rows["t2"]["result"].is_null());
  CHECK(rows["t2"]["attempts"] == 0);
  auto requeued = audit_events(audit, "task_requeued");
  REQUIRE(requeued.size() == 1);
  CHECK(requeued[0]["task_id"] == "t2");
  CHECK(requeued[0]["detail"] == "completed -> pending (CLI)");
  REQUIRE(run_bgagent({"run"}, dir.path()).exit_code == 0);
  auto started = count_by_task(audit, "task_started");
  CHECK(started["t1"] == 1);
  CHECK(started["t2"] == 2);
  CHECK(results_by_id(dir.path())["t2"]["state"] == "completed");
  // Every completed task.
  r = run_bgagent({"requeue", "--completed"}, dir.path());
  CHECK(r.out == "4 task(s) requeued\n");
  CHECK(status_json(dir.path())["tasks"]["pending"] == 4);
  // Not completed (now pending), and unknown: named, exit 2.
  r = run_bgagent({"requeue", "--completed", "t1", "nope"}, dir.path());
  CHECK(r.exit_code == 2);
  CHECK(r.err == "bgagent: 2 id(s) are not completed tasks: t1, nope; "
                 "nothing was requeued\n");
  // All or nothing: one completed id beside an unknown one stays completed;
  // an id given twice counts once.
  REQUIRE(run_bgagent({"run"}, dir.path()).exit_code == 0);
  auto before = audit_events(audit, "task_requeued").size();
  r = run_bgagent({"requeue", "--completed", "t1", "nope"}, dir.path());
  CHECK(r.exit_code == 2);
  CHECK(results_by_id(dir.path())["t1"]["state"] == "completed");
  CHECK(audit_events(audit, "task_requeued").size() == before);
  r = run_bgagent({"requeue", "--completed", "t1", "t1"}, dir.path());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1 task(s) requeued\n");
  // --completed and --quarantined together make no sense.
  r = run_bgagent({"requeue", "--completed", "--quarantined"}, dir.path());
  CHECK(r.exit_code == 2);
}
