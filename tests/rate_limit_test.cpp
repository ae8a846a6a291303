// Rate limits held at the head: BG_AGENT_RPM paces every call to a
// provider's limit so it answers almost no 429, and a Retry-After holds
// every call to that provider, not only the task that got it. Against a
// local server that counts requests over a sliding window as providers do.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <vector>

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

std::string rate_limited_body() {
  return json{{"error",
               {{"message", "Rate limit reached for requests"},
                {"type", "requests"},
                {"code", "rate_limit_exceeded"}}}}
    .dump();
}

// The most requests that arrived within any `window` (arrival times sorted).
size_t busiest_window(const std::vector<clock_type::time_point>& at,
                      std::chrono::milliseconds window) {
  size_t best = 0;
  for (size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] >= window)
      ++i;
    best = std::max(best, j - i + 1);
  }
  return best;
}

} // namespace

TEST_CASE("with BG_AGENT_RPM at the provider's limit, calls are paced to it "
          "and next to none is answered 429",
          "[e2e][rates]") {
  // The server: 10 requests per 2 s sliding window (300 per minute); a
  // request over it is answered 429 and does not count.
  constexpr size_t limit = 10;
  const auto window = std::chrono::milliseconds(2000);
  std::mutex m;
  std::deque<clock_type::time_point> accepted;
  std::vector<clock_type::time_point> arrivals;
  int rejected = 0;
  raw_http_server server([&](const raw_request& req) {
    auto now = clock_type::now();
    {
      std::lock_guard<std::mutex> lock(m);
      if (req.head.rfind("GET ", 0) == 0)
        return raw_reply{raw_http_server::response(404, "{}")};
      arrivals.push_back(now);
      while (!accepted.empty() && now - accepted.front() >= window)
        accepted.pop_front();
      if (accepted.size() >= limit) {
        ++rejected;
        return raw_reply{raw_http_server::response(429, rate_limited_body())};
      }
      accepted.push_back(now);
    }
    return raw_reply{raw_http_server::response(
                       200, raw_http_server::completion(R"({"summary": "ok"})")),
                     false, 50};
  });
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(40, "r"));
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"BG_AGENT_RPM", "300"},
              {"BG_AGENT_RATE_WINDOW", "2"},
              {"BG_AGENT_RETRY_INITIAL", "0.2"},
              {"BG_AGENT_WORKERS", "16"}};
  auto start = clock_type::now();
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  auto took = clock_type::now() - start;
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 40);
  std::lock_guard<std::mutex> lock(m);
  INFO("429 answers: " << rejected);
  CHECK(rejected <= 1); // under 3 % of 40
  // Paced: never more than the limit sent within a window (16 workers would
  // send 16 at once), so four windows' worth took over three windows.
  CHECK(busiest_window(arrivals, window) <= limit);
  CHECK(took >= std::chrono::milliseconds(6000));
}

TEST_CASE("a Retry-After holds back every call to the provider, not only "
          "the task that got it",
          "[e2e][rates]") {
  std::mutex m;
  std::vector<clock_type::time_point> arrivals;
  clock_type::time_point refused_at{};
  raw_http_server server([&](const raw_request& req) {
    std::lock_guard<std::mutex> lock(m);
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto now = clock_type::now();
    arrivals.push_back(now);
    if (arrivals.size() == 2) {
      refused_at = now;
      return raw_reply{raw_http_server::response(
        429, rate_limited_body(), {"Retry-After: 2"})};
    }
    return raw_reply{raw_http_server::response(
                       200, raw_http_server::completion(R"({"summary": "ok"})")),
                     false, 300};
  });
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(6, "h"));
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"BG_AGENT_WORKERS", "2"}};
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 6);
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(arrivals.size() == 7);
  // The other worker was free at once (and the first after 300 ms), yet no
  // request came before the 2 s were over.
  auto next = arrivals[2] - refused_at;
  INFO(std::chrono::duration_cast<std::chrono::milliseconds>(next).count()
       << " ms after the 429");
  CHECK(next >= std::chrono::milliseconds(1900));
}

TEST_CASE("a 429 insufficient_quota is out of credits: the run stops with "
          "exit 3 after few requests, its tasks pending",
          "[e2e][rates]") {
  std::atomic<int> calls{0};
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    ++calls;
    return raw_reply{raw_http_server::response(
      429, json{{"error",
                 {{"message", "You exceeded your current quota, please "
                              "check your plan and billing details."},
                  {"type", "insufficient_quota"},
                  {"code", "insufficient_quota"}}}}
             .dump())};
  });
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(50, "q"));
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"BG_AGENT_WORKERS", "4"}};
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(contains(r.err, "exceeded your current quota"));
  CHECK(calls <= 4); // the calls in flight when the first answer came
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["pending"] == 50);
  CHECK(st["tasks"]["quarantined"] == 0);
  CHECK(st["tasks"]["completed"] == 0);
}

TEST_CASE("retries after 429 do not burn a task's retries",
          "[e2e][rates]") {
  std::atomic<int> calls{0};
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    // Five 429s without Retry-After, then an answer.
    if (++calls <= 5)
      return raw_reply{raw_http_server::response(429, rate_limited_body())};
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "ok"})"))};
  });
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(1, "s"));
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"BG_AGENT_MAX_RETRIES", "1"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"},
              {"BG_AGENT_RETRY_MAX", "0.1"},
              {"BG_AGENT_WORKERS", "1"}};
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(calls == 6);
  auto row = results_by_id(dir.path()).at("s1");
  CHECK(row["state"] == "completed");
  CHECK(row["attempts"] == 6);
}
