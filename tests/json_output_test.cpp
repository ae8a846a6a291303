// The machine-readable contracts of DESIGN.md section 8: the fields of
// `status --json`, `results --json` and audit lines.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

std::set<std::string> keys(const nlohmann::json& j) {
  std::set<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it)
    out.insert(it.key());
  return out;
}

} // namespace

TEST_CASE("status --json, results --json and the audit log keep their fields",
          "[e2e][json]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("good", "analyze_sentiment", "I love this. Great!"),
               make_task("bad", "summarize", "Refused. [permanent]")});
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl", "--provider",
                        "scripted"},
                       dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  auto st = run_bgagent({"status", "--json"}, dir.path());
  REQUIRE(st.exit_code == 0);
  REQUIRE(lines_of(st.out).size() == 1);
  auto s = nlohmann::json::parse(st.out);
  CHECK(keys(s) ==
        std::set<std::string>{"tasks", "budget", "run", "circuits_open",
                              "batches"});
  CHECK(s["circuits_open"].empty()); // the run is over
  CHECK(s["batches"].empty());       // no provider batch open
  CHECK(keys(s["tasks"]) ==
        std::set<std::string>{"pending", "running", "retry_wait", "completed",
                              "quarantined", "cancelled"});
  // DESIGN.md section 12, with the budget's period (run for `run`).
  CHECK(keys(s["budget"]) == std::set<std::string>{"tokens_used",
                                                   "tokens_limit", "cost_used",
                                                   "cost_limit", "period"});
  CHECK(s["budget"]["period"] == "run");
  CHECK(keys(s["run"]) == std::set<std::string>{"id", "state", "started_at"});
  CHECK(s["tasks"]["completed"] == 1);
  CHECK(s["tasks"]["quarantined"] == 1);
  CHECK(s["budget"]["tokens_limit"] == 1000000);
  CHECK(s["budget"]["cost_limit"].get<double>() == Approx(1.0));
  CHECK(s["run"]["id"] == 1);
  CHECK(s["run"]["state"] == "finished");
  std::regex rfc3339("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                     "(\\.[0-9]+)?Z");
  CHECK(std::regex_match(s["run"]["started_at"].get<std::string>(), rfc3339));

  auto res = run_bgagent({"results", "--json"}, dir.path());
  REQUIRE(res.exit_code == 0);
  auto rows = lines_of(res.out);
  REQUIRE(rows.size() == 2);
  std::set<std::string> fields{"id", "type", "state", "attempts", "result",
                               "error", "prompt_tokens", "completion_tokens",
                               "cost_usd", "provider", "model"};
  auto good = nlohmann::json::parse(rows[0]);
  auto bad = nlohmann::json::parse(rows[1]);
  for (auto& f : fields) {
    CHECK(good.contains(f));
    CHECK(bad.contains(f));
  }
  CHECK(good["id"] == "good");
  CHECK(good["type"] == "analyze_sentiment");
  CHECK(good["state"] == "completed");
  CHECK(good["attempts"] == 1);
  CHECK(good["result"].is_object());
  CHECK(good["result"]["sentiment"] == "positive");
  CHECK(good["error"].is_null());
  CHECK(good["prompt_tokens"].get<int>() > 0);
  CHECK(good["provider"] == "scripted");
  CHECK(bad["state"] == "quarantined");
  CHECK(bad["result"].is_null());
  CHECK(bad["error"].get<std::string>().find("HTTP 400") != std::string::npos);

  // --state filters.
  auto q = run_bgagent({"results", "--json", "--state", "quarantined"},
                       dir.path());
  REQUIRE(lines_of(q.out).size() == 1);
  CHECK(nlohmann::json::parse(lines_of(q.out)[0])["id"] == "bad");

  // Audit lines: ts (RFC 3339 UTC), strictly increasing seq, event.
  int64_t last = 0;
  auto lines = read_jsonl(dir.path("bgagent-audit.jsonl"));
  REQUIRE(lines.size() >= 8);
  for (auto& j : lines) {
    CHECK(std::regex_match(j["ts"].get<std::string>(), rfc3339));
    CHECK(j["seq"].get<int64_t>() > last);
    last = j["seq"].get<int64_t>();
    CHECK(j["event"].is_string());
  }
  CHECK(lines.front()["event"] == "task_submitted");
  CHECK(lines.back()["event"] == "run_finished");
  auto started = audit_events(dir.path("bgagent-audit.jsonl"), "task_started");
  REQUIRE(started.size() == 2);
  CHECK(started[0]["attempt"] == 1);
  CHECK(started[0]["node"] == "head");
}
