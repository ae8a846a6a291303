// BG_AGENT_TIMEOUT per attempt: a call that takes longer fails as a timeout,
// is retried, and is quarantined at the retry limit; a worker stuck far past
// its timeout is killed and replaced by the supervisor.
#include <catch2/catch.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("a call that never answers times out, is retried, then quarantined",
          "[e2e][timeout]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("silent", "summarize", "No answer ever. [never]"),
               make_task("ok", "summarize", "This one answers.")});
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_TIMEOUT", "0.5"},
              {"BG_AGENT_MAX_RETRIES", "2"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto failed = audit_events(audit, "task_failed");
  REQUIRE(failed.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(failed[i]["task_id"] == "silent");
    CHECK(failed[i]["attempt"] == i + 1);
    CHECK(failed[i]["detail"] ==
          "retryable: timed out after 0.5 s (BG_AGENT_TIMEOUT)");
  }
  CHECK(audit_events(audit, "task_retry_scheduled").size() == 2);
  auto rows = results_by_id(dir.path());
  CHECK(rows["silent"]["state"] == "quarantined");
  CHECK(rows["silent"]["attempts"] == 3);
  CHECK(rows["silent"]["error"].get<std::string>().find("timed out") !=
        std::string::npos);
  CHECK(rows["ok"]["state"] == "completed");
  // A timed-out call may have been billed: its reservation is charged.
  CHECK(rows["silent"]["prompt_tokens"].get<int>() > 0);
}

TEST_CASE("a provider that blocks longer than the timeout fails as a timeout",
          "[e2e][timeout]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("slow", "summarize", "Blocks the worker. [hang:1500]")});
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_TIMEOUT", "0.5"},
              {"BG_AGENT_MAX_RETRIES", "1"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto failed = audit_events(audit, "task_failed");
  REQUIRE(failed.size() == 2);
  for (auto& f : failed)
    CHECK(f["detail"].get<std::string>().find("timed out after 0.5 s") !=
          std::string::npos);
  CHECK(audit_events(audit, "task_completed").empty());
  auto q = audit_events(audit, "task_quarantined");
  REQUIRE(q.size() == 1);
  CHECK(q[0]["task_id"] == "slow");
  CHECK(q[0]["attempt"] == 2);
}

TEST_CASE("a worker stuck far past its timeout is killed and replaced",
          "[e2e][timeout]") {
  temp_dir dir;
  // Timeout 1 s: the supervisor presumes a worker hung after 1 + 5 s.
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("stuck", "summarize", "Stuck for long. [hang:9000]"),
               make_task("ok1", "summarize", "First fine task."),
               make_task("ok2", "summarize", "Second fine task.")});
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              {"BG_AGENT_TIMEOUT", "1"},
              {"BG_AGENT_HEARTBEAT_SECONDS", "0.2"},
              {"BG_AGENT_MAX_RETRIES", "0"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto restarts = audit_events(audit, "worker_restarted");
  REQUIRE(restarts.size() == 1);
  CHECK(restarts[0]["task_id"] == "stuck");
  CHECK(restarts[0]["detail"].get<std::string>().find("hung past its "
                                                      "timeout") !=
        std::string::npos);
  auto rows = results_by_id(dir.path());
  CHECK(rows["stuck"]["state"] == "quarantined");
  CHECK(rows["stuck"]["attempts"] == 1);
  CHECK(rows["ok1"]["state"] == "completed");
  CHECK(rows["ok2"]["state"] == "completed");
  CHECK(audit_events(audit, "task_completed").size() == 2);
}
