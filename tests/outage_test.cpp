// A provider that goes down: consecutive 5xx and dropped connections open
// its circuit, only a probe call goes every BG_AGENT_PROBE_SECONDS, the
// attempts failed meanwhile count against no task, and the run either
// carries on when the provider is back or, down past BG_AGENT_OUTAGE_MAX,
// stops with exit code 7 and every task resumable. Against a local server
// that is switched down and up.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>

#include <nlohmann/json.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

// An OpenAI-compatible server that is down (every other request a 500,
// the rest a dropped connection) until `up` is set.
struct flaky_server {
  raw_reply answer(const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    if (!up.load()) {
      if (down_requests.fetch_add(1) % 2 == 0)
        return raw_reply{raw_http_server::response(
          500, R"({"error": {"message": "internal error"}})")};
      return raw_reply{"", true}; // the connection drops, no answer
    }
    ++up_requests;
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "ok"})"))};
  }
  std::atomic<bool> up{false};
  std::atomic<int> down_requests{0};
  std::atomic<int> up_requests{0};
  raw_http_server server{[this](const raw_request& r) { return answer(r); }};
};

env_map settings(const flaky_server& api, env_map extra) {
  extra["LLM_PROVIDER"] = "openai";
  extra["LLM_BASE_URL"] = api.server.base_url();
  extra["BG_AGENT_PROBE_SECONDS"] = "0.5";
  extra["BG_AGENT_RETRY_INITIAL"] = "0.5";
  extra["BG_AGENT_RETRY_MAX"] = "1";
  return extra;
}

std::vector<json> lines_with(const std::string& path, const std::string& what) {
  std::vector<json> out;
  for (auto& line : lines_of(read_file(path))) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && line.find(what) != std::string::npos)
      out.push_back(j);
  }
  return out;
}

} // namespace

TEST_CASE("a provider down for 20 s: the circuit opens, probes go one at a "
          "time, one critical alert, and every task completes with no "
          "attempt counted while it was open",
          "[e2e][outage]") {
  flaky_server api;
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(12, "o"));
  // Up 20 s after the first call reached it.
  std::thread switcher([&] {
    wait_until([&] { return api.down_requests.load() > 0; }, 60);
    std::this_thread::sleep_for(std::chrono::seconds(20));
    api.up = true;
  });
  // Two retries: without the circuit, three attempts inside 20 s of
  // outage would quarantine every task.
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       settings(api, {{"BG_AGENT_WORKERS", "4"},
                                      {"BG_AGENT_MAX_RETRIES", "2"}}));
  switcher.join();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto status = status_json(dir.path());
  CHECK(status["tasks"]["completed"] == 12);
  CHECK(status["tasks"]["quarantined"] == 0);
  // While down: 5 failures in a row open it, calls already in flight end,
  // then one probe every 0.5 s (about 40 in 20 s). Without it each task
  // makes up to 3 attempts: 36 failed, all quarantined. (Counted from the
  // audit: each request the server dropped is an attempt of its own.)
  auto audit = dir.path("bgagent-audit.jsonl");
  auto failures = lines_with(audit, "\"task_failed\"").size();
  INFO("attempts failed: " << failures);
  CHECK(failures >= 5);
  CHECK(failures <= 5 + 4 + 42);
  CHECK(api.up_requests.load() == 12);
  auto opened = lines_with(audit, "\"circuit_opened\"");
  auto closed = lines_with(audit, "\"circuit_closed\"");
  REQUIRE(opened.size() == 1);
  REQUIRE(closed.size() == 1);
  CHECK(contains(opened[0].dump(), "openai/"));
  CHECK(opened[0]["seq"] < closed[0]["seq"]);
  // Attempts failed while it was open are marked so in the audit.
  CHECK_FALSE(lines_with(audit, "the provider's fault: not counted").empty());
  auto alerts = lines_with(dir.path("bgagent-alerts.jsonl"),
                           "\"provider_unavailable\"");
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["severity"] == "critical");
  // One critical alert for the outage, no escalation besides.
  CHECK(lines_with(dir.path("bgagent-alerts.jsonl"), "\"critical\"")
          .size() == 1);
}

TEST_CASE("a provider down past BG_AGENT_OUTAGE_MAX: status shows it down, "
          "the run exits 7 with every task resumable, and the next run "
          "completes them",
          "[e2e][outage]") {
  flaky_server api;
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(6, "d"));
  auto env = settings(api, {{"BG_AGENT_WORKERS", "2"},
                            {"BG_AGENT_MAX_RETRIES", "1"},
                            {"BG_AGENT_OUTAGE_MAX", "4"}});
  auto start = clock_type::now();
  background_process run({bgagent_binary(), "run", "--tasks", "tasks.jsonl"},
                         dir.path(), env, "outage-run");
  // While it runs, `status` names the model that is down.
  json down;
  CHECK(wait_until(
    [&] {
      auto s = status_json(dir.path());
      if (!s.contains("circuits_open") || s["circuits_open"].empty())
        return false;
      down = s["circuits_open"][0];
      return true;
    },
    30));
  CHECK(contains(down.value("model", ""), "openai/"));
  CHECK_FALSE(down.value("since", "").empty());
  auto text = run_bgagent({"status"}, dir.path());
  CHECK(contains(text.out, "DOWN since"));
  auto code = run.wait(60);
  auto took = std::chrono::duration<double>(clock_type::now() - start).count();
  INFO(run.out() << run.err());
  CHECK(code == 7);
  CHECK(took < 30);
  CHECK(contains(run.out(), "outage: openai/"));
  CHECK(contains(run.out(), "run again once the provider answers"));
  auto status = status_json(dir.path());
  CHECK(status["tasks"]["quarantined"] == 0);
  CHECK(status["tasks"]["completed"] == 0);
  CHECK(status["tasks"]["pending"].get<int>() +
          status["tasks"]["retry_wait"].get<int>() ==
        6);
  // The run is over: nothing shows as down any more.
  CHECK(status["circuits_open"].empty());
  auto outage = lines_with(dir.path("bgagent-alerts.jsonl"),
                           "\"provider_outage\"");
  REQUIRE(outage.size() == 1);
  CHECK(outage[0]["severity"] == "critical");
  // Back up: the next run completes every task.
  api.up = true;
  auto again = run_bgagent({"run"}, dir.path(), env);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 6);
  CHECK(api.up_requests.load() == 6);
}

TEST_CASE("while one model is down, its tasks wait but the one at the probe, "
          "and the workers go on with another model's tasks",
          "[e2e][outage]") {
  std::atomic<int> down_calls{0};
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("model", "") == "gpt-4o") {
      ++down_calls;
      return raw_reply{raw_http_server::response(
        502, R"({"error": {"message": "bad gateway"}})")};
    }
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "ok"})"))};
  });
  temp_dir dir;
  // The down model's tasks first: without parking they would hold both
  // workers at the rate_keeper until the outage limit.
  std::vector<json> tasks;
  for (int i = 1; i <= 10; ++i) {
    auto t = make_task("down" + std::to_string(i), "summarize",
                       "Down " + std::to_string(i));
    t["model"] = "gpt-4o";
    tasks.push_back(t);
  }
  for (int i = 1; i <= 10; ++i)
    tasks.push_back(make_task("up" + std::to_string(i), "summarize",
                              "Up " + std::to_string(i)));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_PROVIDER", "openai"},
                        {"LLM_BASE_URL", server.base_url()},
                        {"MODEL", "gpt-4o-mini"},
                        {"BG_AGENT_WORKERS", "2"},
                        {"BG_AGENT_RETRY_INITIAL", "0.1"},
                        {"BG_AGENT_RETRY_MAX", "0.2"},
                        {"BG_AGENT_PROBE_SECONDS", "0.5"},
                        {"BG_AGENT_OUTAGE_MAX", "3"}});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 7);
  auto rows = results_by_id(dir.path());
  for (int i = 1; i <= 10; ++i) {
    CHECK(rows.at("up" + std::to_string(i))["state"] == "completed");
    CHECK(rows.at("down" + std::to_string(i))["state"] != "quarantined");
    CHECK(rows.at("down" + std::to_string(i))["state"] != "completed");
  }
  // Five to open it, at most the other worker's call in flight, then one
  // probe each 0.5 s for 3 s.
  INFO("calls to the down model: " << down_calls.load());
  CHECK(down_calls.load() <= 5 + 1 + 7);
}
