// SIGINT and SIGTERM drain a run gracefully (exit 130 / 143, DESIGN.md
// section 8) and leave a state the next run finishes, each task once.
#include <catch2/catch.hpp>

#include <csignal>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

void interrupt_and_resume(int sig, int expected_code) {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(30));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "2"},
              {"BG_AGENT_TEST_DELAY_MS", "150"}};
  auto audit = dir.path("bgagent-audit.jsonl");
  {
    background_process p({testbin_binary(), "run", "--tasks", "tasks.jsonl"},
                         dir.path(), env, "sig");
    REQUIRE(wait_until(
      [&] {
        return !p.running() ||
               audit_events(audit, "task_completed").size() >= 2;
      },
      60));
    REQUIRE(p.running());
    p.signal(sig);
    auto code = p.wait(60);
    INFO(p.err());
    REQUIRE(code == expected_code);
    CHECK(p.err().find("received signal " + std::to_string(sig)) !=
          std::string::npos);
  }
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["running"] == 0); // in-flight calls were let finish
  auto done = st["tasks"]["completed"].get<int>();
  CHECK(done >= 2);
  CHECK(done < 30);
  CHECK(st["run"]["state"] == "interrupted");
  auto fin = audit_events(audit, "run_finished");
  REQUIRE(fin.size() == 1);
  auto summary = nlohmann::json::parse(fin[0]["detail"].get<std::string>());
  CHECK(summary["exit_code"] == expected_code);

  env.erase("BG_AGENT_TEST_DELAY_MS");
  auto again = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == 30);
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  CHECK(count_by_task(audit, "task_started").size() == 30);
  for (auto& kv : count_by_task(audit, "task_started"))
    CHECK(kv.second == 1);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 30);
}

} // namespace

TEST_CASE("SIGINT drains the run: exit 130, resumable", "[e2e][signals]") {
  interrupt_and_resume(SIGINT, 130);
}

TEST_CASE("SIGTERM drains the run: exit 143, resumable", "[e2e][signals]") {
  interrupt_and_resume(SIGTERM, 143);
}
