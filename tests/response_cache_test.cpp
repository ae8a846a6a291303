// The response cache (DESIGN.md section 13) through the real binary: a
// second job whose requests are the same as the first's (other ids)
// completes with no call, live and in batch mode, audited task_cached and
// marked "cached" in results; --no-cache calls again; a temperature above
// 0 is never answered from the cache.
#include <catch2/catch.hpp>

#include <atomic>

#include <nlohmann/json.hpp>

#include "tests/support/batch_server.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

// Tasks PREFIX1..PREFIXn with the inputs "Text 1." .. "Text n.": two
// prefixes make two jobs of the same requests.
std::vector<json> same_requests(int n, const std::string& prefix) {
  std::vector<json> out;
  for (int i = 1; i <= n; ++i)
    out.push_back(make_task(prefix + std::to_string(i), "summarize",
                            "Text " + std::to_string(i) + ". It is short.",
                            32));
  return out;
}

// A provider that answers every call {"summary": "Short."}, counting them.
raw_http_server::handler counting(std::atomic<int>& calls) {
  return [&calls](const raw_request&) {
    ++calls;
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary":"Short."})"))};
  };
}

} // namespace

TEST_CASE("response cache: a second job of the same requests completes "
          "with no call, audited task_cached, free, marked cached",
          "[e2e][cache]") {
  temp_dir dir;
  std::atomic<int> calls{0};
  raw_http_server server(counting(calls));
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"MODEL", "gpt-test"},
              {"BG_AGENT_PRICE_PROMPT", "1"},
              {"BG_AGENT_PRICE_COMPLETION", "2"}};
  write_tasks(dir.path("a.jsonl"), same_requests(5, "a"));
  REQUIRE(run_bgagent({"run", "--tasks", "a.jsonl"}, dir.path(), env)
            .exit_code == 0);
  REQUIRE(calls == 5);

  write_tasks(dir.path("b.jsonl"), same_requests(5, "b"));
  auto r = run_bgagent({"run", "--tasks", "b.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(calls == 5); // not one more
  auto results = results_by_id(dir.path(), env);
  for (int i = 1; i <= 5; ++i) {
    auto& b = results["b" + std::to_string(i)];
    REQUIRE(b["state"] == "completed");
    REQUIRE(b["cached"] == true);
    REQUIRE(b["result"] == json{{"summary", "Short."}});
    REQUIRE(b["cost_usd"] == 0);
    REQUIRE(results["a" + std::to_string(i)]["cached"] == false);
  }
  auto cached = count_events_by_task(dir.path("bgagent-audit.jsonl"),
                                     "task_cached");
  REQUIRE(cached.size() == 5);
  REQUIRE(cached["b1"] == 1);
  // The second run (a run of its own: BG_AGENT_BUDGET_PERIOD=run) spent
  // nothing.
  REQUIRE(status_json(dir.path(), env)["budget"]["cost_used"] == 0);

  // --no-cache: called again.
  write_tasks(dir.path("c.jsonl"), same_requests(5, "c"));
  REQUIRE(run_bgagent({"run", "--tasks", "c.jsonl", "--no-cache"},
                      dir.path(), env)
            .exit_code == 0);
  REQUIRE(calls == 10);
  REQUIRE(results_by_id(dir.path(), env)["c1"]["cached"] == false);
}

TEST_CASE("response cache: requests at a temperature above 0 are never "
          "answered from it",
          "[e2e][cache]") {
  temp_dir dir;
  std::atomic<int> calls{0};
  raw_http_server server(counting(calls));
  write_file(dir.path("types.yaml"),
             "warm:\n"
             "  system: Summarize.\n"
             "  prompt: \"{{input}}\"\n"
             "  temperature: 0.7\n"
             "  schema:\n"
             "    type: object\n"
             "    required: [summary]\n");
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"MODEL", "gpt-test"},
              {"BG_AGENT_TYPES", dir.path("types.yaml")},
              {"BG_AGENT_PRICE_PROMPT", "1"},
              {"BG_AGENT_PRICE_COMPLETION", "2"}};
  write_tasks(dir.path("a.jsonl"),
              {make_task("a1", "warm", "Same text."),
               make_task("a2", "warm", "Same text.")});
  auto r = run_bgagent({"run", "--tasks", "a.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(calls == 2);
  REQUIRE(count_events_by_task(dir.path("bgagent-audit.jsonl"),
                               "task_cached")
            .empty());
}

TEST_CASE("response cache: in batch mode a second job of the same requests "
          "makes no batch",
          "[e2e][cache][batch]") {
  temp_dir dir;
  batch_server server;
  env_map env = server.env();
  env["BG_AGENT_MODE"] = "batch";
  // The server answers by custom_id: the second job's answers are the
  // first job's, copied.
  write_tasks(dir.path("a.jsonl"), same_requests(6, "a"));
  REQUIRE(run_bgagent({"run", "--tasks", "a.jsonl"}, dir.path(), env)
            .exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  write_tasks(dir.path("b.jsonl"), same_requests(6, "b"));
  auto r = run_bgagent({"run", "--tasks", "b.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  auto results = results_by_id(dir.path(), env);
  for (int i = 1; i <= 6; ++i) {
    auto n = std::to_string(i);
    REQUIRE(results["b" + n]["cached"] == true);
    REQUIRE(results["b" + n]["result"] == results["a" + n]["result"]);
  }
}
