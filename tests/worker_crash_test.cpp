// A provider that throws inside the worker: the supervisor restarts the
// worker, counts the attempt, quarantines the task at the retry limit, and
// bounds the restart intensity. Retryable failures back off and retry.
#include <catch2/catch.hpp>

#include <regex>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("a crashing task is retried on restarted workers, then quarantined",
          "[e2e][crash]") {
  temp_dir dir;
  auto tasks = make_tasks(10);
  tasks.push_back(make_task("boom", "summarize", "This one crashes. [crash]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "3"},
              {"BG_AGENT_MAX_RETRIES", "2"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0); // every task ended completed or quarantined

  auto audit = dir.path("bgagent-audit.jsonl");
  auto restarts = audit_events(audit, "worker_restarted");
  REQUIRE(restarts.size() == 3); // 1 + BG_AGENT_MAX_RETRIES attempts
  for (int i = 0; i < 3; ++i) {
    CHECK(restarts[i]["task_id"] == "boom");
    CHECK(restarts[i]["attempt"] == i + 1);
    CHECK(restarts[i]["detail"].get<std::string>().find("scripted crash") !=
          std::string::npos);
  }
  auto started = count_by_task(audit, "task_started");
  CHECK(started["boom"] == 3);
  auto retries = audit_events(audit, "task_retry_scheduled");
  CHECK(retries.size() == 2);
  auto q = audit_events(audit, "task_quarantined");
  REQUIRE(q.size() == 1);
  CHECK(q[0]["task_id"] == "boom");
  CHECK(q[0]["attempt"] == 3);

  auto rows = results_by_id(dir.path());
  CHECK(rows["boom"]["state"] == "quarantined");
  CHECK(rows["boom"]["attempts"] == 3);
  CHECK(rows["boom"]["error"].get<std::string>().find("worker died") !=
        std::string::npos);
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 10);
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 10);
  CHECK(st["tasks"]["quarantined"] == 1);
  CHECK(r.out.find("worker restarts 3") != std::string::npos);
}

TEST_CASE("too many worker restarts stop the run with exit code 1",
          "[e2e][crash]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(8, "c", " [crash]"));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              {"BG_AGENT_MAX_RETRIES", "5"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"},
              {"BG_AGENT_MAX_RESTARTS", "3"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 1);
  // One clear line says why.
  CHECK(std::regex_search(r.err, std::regex("restart_intensity: [0-9]+ worker "
                                            "restarts within 60 s \\(limit "
                                            "3\\): stopping the run")));
  auto alerts = read_jsonl(dir.path("bgagent-alerts.jsonl"));
  int intensity = 0;
  for (auto& a : alerts)
    if (a["kind"] == "restart_intensity") {
      ++intensity;
      CHECK(a["severity"] == "critical");
    }
  CHECK(intensity == 1);
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "worker_restarted").size() >= 4);
  auto fin = audit_events(audit, "run_finished");
  REQUIRE(fin.size() == 1);
  auto summary = nlohmann::json::parse(fin[0]["detail"].get<std::string>());
  CHECK(summary["exit_code"] == 1);
  CHECK(summary["stop_reason"] == "restart_intensity");
  // Nothing was completed and nothing is lost: the tasks wait for a run.
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 0);
  CHECK(st["tasks"]["running"] == 0);
  CHECK(st["tasks"]["pending"].get<int>() + st["tasks"]["retry_wait"].get<int>() +
          st["tasks"]["quarantined"].get<int>() ==
        8);
}

TEST_CASE("a task that fails twice is retried with backoff, then completes",
          "[e2e][retry]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("flaky", "summarize", "Flaky provider here. [fail:2]"),
               make_task("fine", "summarize", "Nothing wrong here.")});
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_MAX_RETRIES", "3"},
              {"BG_AGENT_RETRY_INITIAL", "0.2"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto failed = audit_events(audit, "task_failed");
  REQUIRE(failed.size() == 2);
  auto retries = audit_events(audit, "task_retry_scheduled");
  REQUIRE(retries.size() == 2);
  // Exponential backoff with equal jitter: attempt n waits between
  // initial*2^(n-1)/2 and initial*2^(n-1).
  std::regex delay_re("retry in ([0-9.]+) s");
  for (int i = 0; i < 2; ++i) {
    CHECK(retries[i]["task_id"] == "flaky");
    CHECK(retries[i]["attempt"] == i + 1);
    std::smatch m;
    auto detail = retries[i]["detail"].get<std::string>();
    REQUIRE(std::regex_search(detail, m, delay_re));
    double d = std::stod(m[1]);
    double full = 0.2 * (i == 0 ? 1 : 2);
    CHECK(d >= full / 2 - 1e-3);
    CHECK(d <= full + 1e-3);
  }
  auto completed = audit_events(audit, "task_completed");
  CHECK(completed.size() == 2);
  auto rows = results_by_id(dir.path());
  CHECK(rows["flaky"]["state"] == "completed");
  CHECK(rows["flaky"]["attempts"] == 3);
  CHECK(rows["fine"]["attempts"] == 1);
  CHECK(audit_events(audit, "task_quarantined").empty());
}
