// A budget smaller than the job: the run stops with exit code 3, never
// spends past the budget even with 64 workers, leaves the rest pending, and
// a later run with more budget finishes them, each task exactly once.
#include <catch2/catch.hpp>

#include <map>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

void check_each_completed_once(const temp_dir& dir, int total) {
  auto completed = count_by_task(dir.path("bgagent-audit.jsonl"),
                                 "task_completed");
  CHECK(static_cast<int>(completed.size()) == total);
  for (auto& kv : completed) {
    INFO(kv.first);
    CHECK(kv.second == 1);
  }
}

} // namespace

TEST_CASE("a token budget smaller than the job stops the run at the budget",
          "[e2e][budget]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(200));
  auto db = dir.path("bgagent.db");
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "64"},
              {"BG_AGENT_TOKEN_BUDGET", "5000"},
              {"BG_AGENT_TEST_DELAY_MS", "20"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 3);
  CHECK(r.err.find("stopped by the budget") != std::string::npos);

  auto st = status_json(dir.path());
  auto used = st["budget"]["tokens_used"].get<uint64_t>();
  CHECK(used > 0);
  CHECK(used <= 5000);
  CHECK(st["budget"]["tokens_limit"] == 5000);
  CHECK(sql_int(db, "SELECT SUM(prompt_tokens + completion_tokens) FROM "
                    "usage_ledger") == static_cast<long long>(used));
  CHECK(st["run"]["state"] == "stopped_budget");
  auto done = st["tasks"]["completed"].get<int>();
  CHECK(done > 0);
  CHECK(done < 200);
  CHECK(st["tasks"]["pending"].get<int>() == 200 - done);
  CHECK(st["tasks"]["running"] == 0);
  CHECK(st["tasks"]["quarantined"] == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK_FALSE(audit_events(audit, "budget_denied").empty());
  check_each_completed_once(dir, done);

  // A later run with more budget finishes the rest, nothing twice.
  env["BG_AGENT_TOKEN_BUDGET"] = "100000";
  auto more = run_testbin({"run"}, dir.path(), env);
  INFO(more.err);
  REQUIRE(more.exit_code == 0);
  auto st2 = status_json(dir.path());
  CHECK(st2["tasks"]["completed"] == 200);
  CHECK(st2["tasks"]["pending"] == 0);
  CHECK(st2["budget"]["tokens_used"].get<uint64_t>() <= 100000);
  CHECK(st2["budget"]["tokens_used"].get<uint64_t>() > used);
  check_each_completed_once(dir, 200);
  CHECK(count_by_task(audit, "task_started").size() == 200);
  for (auto& kv : count_by_task(audit, "task_started"))
    CHECK(kv.second == 1);
  // In seq order, each start says its grant and precedes its result.
  std::map<std::string, std::string> last; // task -> its last event
  int out_of_order = 0;
  for (auto& j : read_jsonl(audit)) {
    auto ev = j.value("event", "");
    auto task = j.value("task_id", "");
    if (ev == "task_started" &&
        j.value("detail", "").find(", reserved ") == std::string::npos)
      ++out_of_order;
    if (ev == "task_completed" && last[task] != "task_started")
      ++out_of_order;
    if (!task.empty())
      last[task] = ev;
  }
  CHECK(out_of_order == 0);
}

TEST_CASE("a cost budget smaller than the job stops the run at the budget",
          "[e2e][budget]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(100));
  auto db = dir.path("bgagent.db");
  // $1000 per million tokens: each task reserves $0.085 and spends $0.062.
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "64"},
              {"BG_AGENT_PRICE_PROMPT", "1000"},
              {"BG_AGENT_PRICE_COMPLETION", "1000"},
              {"BG_AGENT_COST_BUDGET", "2.00"},
              {"BG_AGENT_TEST_DELAY_MS", "20"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 3);
  auto st = status_json(dir.path());
  auto cost = st["budget"]["cost_used"].get<double>();
  CHECK(cost > 0);
  CHECK(cost <= 2.0 + 1e-9);
  CHECK(st["budget"]["cost_limit"].get<double>() == Approx(2.0));
  CHECK(sql_double(db, "SELECT SUM(cost_usd) FROM usage_ledger") ==
        Approx(cost));
  auto done = st["tasks"]["completed"].get<int>();
  CHECK(done > 0);
  CHECK(done < 100);
  CHECK(st["tasks"]["pending"].get<int>() == 100 - done);
  check_each_completed_once(dir, done);
  auto denied = audit_events(dir.path("bgagent-audit.jsonl"), "budget_denied");
  REQUIRE_FALSE(denied.empty());
  CHECK(denied[0]["detail"].get<std::string>().find("cost budget") !=
        std::string::npos);

  env["BG_AGENT_COST_BUDGET"] = "50";
  auto more = run_testbin({"run"}, dir.path(), env);
  INFO(more.err);
  REQUIRE(more.exit_code == 0);
  auto st2 = status_json(dir.path());
  CHECK(st2["tasks"]["completed"] == 100);
  CHECK(st2["budget"]["cost_used"].get<double>() <= 50.0);
  check_each_completed_once(dir, 100);
}

TEST_CASE("with BG_AGENT_BUDGET_PERIOD=day the spending of earlier runs "
          "today counts against the budget, with run (the default for run) "
          "only the run's own",
          "[e2e][budget]") {
  temp_dir dir;
  auto spent = [&] {
    auto st = nlohmann::json::parse(
      run_bgagent({"status", "--json"}, dir.path()).out);
    return std::make_pair(st["budget"]["tokens_used"].get<uint64_t>(),
                          st["budget"]["period"].get<std::string>());
  };
  write_task_file(dir.path("a.jsonl"), 5, "a");
  REQUIRE(run_bgagent({"run", "--tasks", "a.jsonl"}, dir.path()).exit_code ==
          0);
  auto [first, p1] = spent();
  REQUIRE(first > 0);
  CHECK(p1 == "run");

  write_task_file(dir.path("b.jsonl"), 5, "b");
  auto day = run_bgagent({"run", "--tasks", "b.jsonl"}, dir.path(),
                         {{"BG_AGENT_BUDGET_PERIOD", "day"}});
  REQUIRE(day.exit_code == 0);
  CHECK(day.err.find("budget per day (UTC): " + std::to_string(first) +
                     " tokens") != std::string::npos);
  auto [both, p2] = spent();
  CHECK(p2 == "day");
  CHECK(both > first);

  // A day's budget that the earlier runs used up stops the next at once.
  write_task_file(dir.path("c.jsonl"), 5, "c");
  auto full = run_bgagent({"run", "--tasks", "c.jsonl"}, dir.path(),
                          {{"BG_AGENT_BUDGET_PERIOD", "day"},
                           {"BG_AGENT_TOKEN_BUDGET", std::to_string(both)}});
  CHECK(full.exit_code == 3);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "task_started").size() ==
        10);

  // Per run: only this run's spending.
  auto run = run_bgagent({"run"}, dir.path());
  REQUIRE(run.exit_code == 0);
  auto [own, p3] = spent();
  CHECK(p3 == "run");
  CHECK(own < both);
  CHECK(own > 0);

  auto bad = run_bgagent({"run"}, dir.path(),
                         {{"BG_AGENT_BUDGET_PERIOD", "week"}});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("BG_AGENT_BUDGET_PERIOD=week (environment): not one of "
                     "run, hour, day, month") != std::string::npos);
}
