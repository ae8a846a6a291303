// Priorities and tags, run like a user: pending tasks start by priority
// (higher first), then in submit order; `status --by-tag` sums each tag's
// tasks, tokens and dollars exactly as `results` lists them; `results
// --tag` shows one tag's tasks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <sstream>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/aimock.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

std::vector<std::string> started_order(const std::string& audit) {
  std::vector<std::string> out;
  for (auto& e : audit_events(audit, "task_started"))
    out.push_back(e.value("task_id", ""));
  return out;
}

} // namespace

TEST_CASE("with one worker, tasks start by priority, then in submit order",
          "[e2e][priority]") {
  temp_dir dir;
  // Submit order and priorities mixed; ties keep the submit order, across
  // two submissions.
  std::vector<std::pair<std::string, int>> first = {
    {"p0-a", 0}, {"p5-a", 5}, {"pm3-a", -3}, {"p5-b", 5}, {"p0-b", 0},
    {"p100", 100}};
  std::vector<std::pair<std::string, int>> second = {
    {"p5-c", 5}, {"pm3-b", -3}, {"p0-c", 0}, {"p1000000000", 1000000000},
    {"pmin", -1000000000}};
  auto tasks_of = [](const std::vector<std::pair<std::string, int>>& v) {
    std::vector<json> out;
    for (auto& [id, p] : v) {
      auto t = make_task(id, "summarize", "Task " + id + " runs. In order.");
      if (p != 0 || id == "p0-b") // an explicit 0 is the default
        t["priority"] = p;
      out.push_back(t);
    }
    return out;
  };
  write_tasks(dir.path("one.jsonl"), tasks_of(first));
  write_tasks(dir.path("two.jsonl"), tasks_of(second));
  REQUIRE(run_bgagent({"submit", "one.jsonl"}, dir.path()).exit_code == 0);
  REQUIRE(run_bgagent({"submit", "two.jsonl"}, dir.path()).exit_code == 0);
  auto r = run_bgagent({"run", "--workers", "1"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(started_order(dir.path("bgagent-audit.jsonl")) ==
        std::vector<std::string>{"p1000000000", "p100", "p5-a", "p5-b",
                                 "p5-c", "p0-a", "p0-b", "p0-c", "pm3-a",
                                 "pm3-b", "pmin"});
  auto rows = results_by_id(dir.path());
  CHECK(rows["p100"]["priority"] == 100);
  CHECK(rows["p0-a"]["priority"] == 0);
  CHECK(rows["pmin"]["priority"] == -1000000000);
}

TEST_CASE("bad priorities and tags are refused with the line and field, "
          "nothing stored",
          "[e2e][priority][tags]") {
  temp_dir dir;
  struct bad {
    std::string line, error;
  };
  std::vector<bad> cases = {
    {R"({"type": "summarize", "input": "x", "priority": 1.5})",
     "priority must be a whole number from -1000000000 to 1000000000"},
    {R"({"type": "summarize", "input": "x", "priority": "high"})",
     "priority must be a whole number from -1000000000 to 1000000000"},
    {R"({"type": "summarize", "input": "x", "priority": 1000000001})",
     "priority must be a whole number from -1000000000 to 1000000000"},
    {R"({"type": "summarize", "input": "x", "priority": 18446744073709551615})",
     "priority must be a whole number from -1000000000 to 1000000000"},
    {R"({"type": "summarize", "input": "x", "priority": 1e400})",
     "malformed JSON (number overflow parsing '1e400')"},
    {R"({"type": "summarize", "input": "x", "tags": ["\u202eevil"]})",
     "a tag may not contain control characters"},
    {R"({"type": "summarize", "input": "x", "tags": ["a\u0085"]})",
     "a tag may not contain control characters"},
    {R"({"id": "a\u001b[2J", "type": "summarize", "input": "x"})",
     "id may not contain control characters"},
    {R"({"type": "summarize", "input": "x", "idempotency_key": "id:b"})",
     "idempotency_key may not start with \"id:\" (reserved for keys taken "
     "from ids)"},
    {R"({"type": "summarize", "input": "x", "tags": "acme"})",
     "tags must be a list of at most 16 strings"},
    {R"({"type": "summarize", "input": "x", "tags": [1]})",
     "each tag must be a string of 1 to 64 characters"},
    {R"({"type": "summarize", "input": "x", "tags": [""]})",
     "each tag must be a string of 1 to 64 characters"},
    {R"({"type": "summarize", "input": "x", "tags": ["a\nb"]})",
     "a tag may not contain control characters"},
    {json{{"type", "summarize"},
          {"input", "x"},
          {"tags", std::vector<std::string>(17, "t")}}
       .dump(),
     "tags must be a list of at most 16 strings"},
    {json{{"type", "summarize"},
          {"input", "x"},
          {"tags", {std::string(65, 'x')}}}
       .dump(),
     "each tag must be a string of 1 to 64 characters"},
  };
  for (auto& c : cases) {
    INFO(c.line);
    write_file(dir.path("t.jsonl"),
               R"({"type": "summarize", "input": "fine."})" "\n" + c.line +
                 "\n");
    auto r = run_bgagent({"submit", "t.jsonl"}, dir.path());
    CHECK(r.exit_code == 2);
    CHECK(r.err == "bgagent: t.jsonl line 2: " + c.error + "\n");
    CHECK_FALSE(exists(dir.path("bgagent.db")));
  }
}

TEST_CASE("status --by-tag sums each tag's tasks, tokens and dollars exactly "
          "as results lists them, and results --tag shows one tag",
          "[e2e][tags][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("openai_batch.json")}, dir.path());
  std::vector<json> tasks;
  for (int i = 1; i <= 9; ++i) {
    auto t = make_task("t" + std::to_string(i), "summarize",
                       "Text number " + std::to_string(i) + ". Short.");
    json tags = json::array();
    if (i % 2)
      tags.push_back("acme");
    if (i % 3 == 0)
      tags.push_back("night-job");
    if (i == 9)
      tags.push_back("acme"); // the same tag twice counts once
    if (!tags.empty())
      t["tags"] = tags;
    tasks.push_back(t);
  }
  write_tasks(dir.path("tasks.jsonl"), tasks);
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", mock.openai_base()},
              {"MODEL", "gpt-4o-mini"}};
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path(), env);
  REQUIRE(rows.size() == 9);
  struct sums {
    std::map<std::string, uint64_t> states;
    uint64_t prompt = 0, completion = 0;
    double cost = 0;
  };
  std::map<std::string, sums> expected;
  for (auto& [id, row] : rows)
    for (auto& tag : row["tags"]) {
      auto& e = expected[tag.get<std::string>()];
      ++e.states[row["state"].get<std::string>()];
      e.prompt += row["prompt_tokens"].get<uint64_t>();
      e.completion += row["completion_tokens"].get<uint64_t>();
      e.cost += row["cost_usd"].get<double>();
    }
  CHECK(rows["t9"]["tags"] == json::array({"acme", "night-job"}));
  REQUIRE(expected.size() == 2);
  CHECK(expected["acme"].cost > 0);
  auto by = run_bgagent({"status", "--by-tag", "--json"}, dir.path(), env);
  REQUIRE(by.exit_code == 0);
  auto lines = json_lines(by.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["tag"] == "acme");
  CHECK(lines[1]["tag"] == "night-job");
  for (auto& l : lines) {
    auto& e = expected[l["tag"].get<std::string>()];
    INFO(l.dump());
    CHECK(l["tasks"]["completed"] == e.states["completed"]);
    CHECK(l["tasks"]["pending"] == 0);
    CHECK(l["prompt_tokens"] == e.prompt);
    CHECK(l["completion_tokens"] == e.completion);
    CHECK(l["cost_usd"].get<double>() == Approx(e.cost).epsilon(1e-12));
  }
  CHECK(lines[0]["tasks"]["completed"] == 5); // t1 t3 t5 t7 t9
  CHECK(lines[1]["tasks"]["completed"] == 3); // t3 t6 t9
  CHECK(lines[1]["prompt_tokens"] == 150);
  CHECK(lines[1]["completion_tokens"] == 30);
  // The table names both tags.
  auto table = run_bgagent({"status", "--by-tag"}, dir.path(), env);
  CHECK(contains(table.out, "acme"));
  CHECK(contains(table.out, "night-job"));
  // results --tag: exactly that tag's tasks, in submit order.
  auto only = run_bgagent({"results", "--tag", "night-job", "--json"},
                          dir.path(), env);
  std::vector<std::string> ids;
  for (auto& j : json_lines(only.out))
    ids.push_back(j["id"]);
  CHECK(ids == std::vector<std::string>{"t3", "t6", "t9"});
  // No tag is empty: asking for one is a mistake, not "all".
  auto empty = run_bgagent({"results", "--tag", ""}, dir.path(), env);
  CHECK(empty.exit_code == 2);
  CHECK(empty.err == "bgagent: --tag: a tag is 1 to 64 characters\n");
}
