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

#include "tests/support/aimock.hpp"
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

// A run of `tasks.jsonl` in `dir` against `server` with `workers` workers
// and the `extra` settings.
run_result run_against(const raw_http_server& server, const temp_dir& dir,
                       int workers, env_map extra = {}) {
  extra["LLM_PROVIDER"] = "openai";
  extra["LLM_BASE_URL"] = server.base_url();
  extra["BG_AGENT_WORKERS"] = std::to_string(workers);
  return run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), extra);
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

// An OpenAI-compatible server that takes `limit` requests per `window`
// (a sliding window over arrival times, as providers count), answers any
// more 429, and, with `headers`, says its limit per minute as OpenAI does.
struct limited_server {
  limited_server(size_t limit, std::chrono::milliseconds window,
                 bool headers, int latency_ms = 50)
    : limit(limit), window(window), headers(headers), latency_ms(latency_ms),
      server([this](const raw_request& req) { return answer(req); }) {}

  raw_reply answer(const raw_request& req) {
    auto now = clock_type::now();
    std::vector<std::string> h;
    if (headers)
      h.push_back("x-ratelimit-limit-requests: " +
                  std::to_string(limit * 60000 / window.count()));
    std::lock_guard<std::mutex> lock(m);
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    arrivals.push_back(now);
    while (!accepted.empty() && now - accepted.front() >= window)
      accepted.pop_front();
    if (accepted.size() >= limit) {
      ++rejected;
      return raw_reply{raw_http_server::response(429, rate_limited_body(), h)};
    }
    accepted.push_back(now);
    return raw_reply{raw_http_server::response(
                       200, raw_http_server::completion(R"({"summary": "ok"})"),
                       h),
                     false, latency_ms};
  }

  size_t limit;
  std::chrono::milliseconds window;
  bool headers;
  int latency_ms;
  std::mutex m;
  std::deque<clock_type::time_point> accepted;
  std::vector<clock_type::time_point> arrivals;
  int rejected = 0;
  raw_http_server server; // last: stopped before the rest goes
};

} // namespace

TEST_CASE("with BG_AGENT_RPM at the provider's limit, calls are paced to it "
          "and next to none is answered 429",
          "[e2e][rates]") {
  // 10 requests per 2 s sliding window (300 per minute).
  limited_server api(10, std::chrono::milliseconds(2000), false);
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(40, "r"));
  auto start = clock_type::now();
  auto r = run_against(api.server, dir, 16,
                       {{"BG_AGENT_RPM", "300"},
                        {"BG_AGENT_RATE_WINDOW", "2"},
                        {"BG_AGENT_RETRY_INITIAL", "0.2"}});
  auto took = clock_type::now() - start;
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 40);
  std::lock_guard<std::mutex> lock(api.m);
  INFO("429 answers: " << api.rejected);
  CHECK(api.rejected <= 1); // under 3 % of 40
  // Paced: never more than the limit sent within a window (16 workers would
  // send 16 at once), so four windows' worth took over three windows.
  CHECK(busiest_window(api.arrivals, api.window) <= api.limit);
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
  auto r = run_against(server, dir, 2);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 6);
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(arrivals.size() == 7);
  // The other worker was free within 300 ms, yet no request came before
  // the 2 s were over (but the one sent with the refused one, at once).
  size_t after = 2;
  while (after < arrivals.size() &&
         arrivals[after] - refused_at < std::chrono::milliseconds(100))
    ++after;
  REQUIRE(after < arrivals.size());
  CHECK(after <= 3);
  auto next = arrivals[after] - refused_at;
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
  auto r = run_against(server, dir, 4);
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
  auto r = run_against(server, dir, 1,
                       {{"BG_AGENT_MAX_RETRIES", "1"},
                        {"BG_AGENT_RETRY_INITIAL", "0.05"},
                        {"BG_AGENT_RETRY_MAX", "0.1"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(calls == 6);
  auto row = results_by_id(dir.path()).at("s1");
  CHECK(row["state"] == "completed");
  CHECK(row["attempts"] == 6);
}

TEST_CASE("without BG_AGENT_RPM, the limit in the provider's headers paces "
          "the calls",
          "[e2e][rates]") {
  limited_server api(10, std::chrono::milliseconds(2000), true);
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(30, "x"));
  auto r = run_against(api.server, dir, 8,
                       {{"BG_AGENT_RATE_WINDOW", "2"},
                        {"BG_AGENT_RETRY_INITIAL", "0.2"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 30);
  std::lock_guard<std::mutex> lock(api.m);
  INFO("429 answers: " << api.rejected << " of " << api.arrivals.size());
  // The first answer told the limit (300 a minute): paced from then on.
  CHECK(api.rejected * 100 < 15 * static_cast<int>(api.arrivals.size()));
  CHECK(busiest_window(api.arrivals, api.window) <= api.limit);
}

TEST_CASE("without limits or headers, a server that answers most calls 429 "
          "still completes every task, none quarantined for its 429s",
          "[e2e][rates]") {
  // 4 requests per 2 s, each answered after 1 s: 2 calls in flight is the
  // most the server takes; 8 workers would keep 8 in flight.
  limited_server api(4, std::chrono::milliseconds(2000), false, 1000);
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(12, "y"));
  // No retries at all: a 429 that counted would quarantine its task.
  auto r = run_against(api.server, dir, 8,
                       {{"BG_AGENT_RETRY_INITIAL", "0.2"},
                        {"BG_AGENT_RETRY_MAX", "0.5"},
                        {"BG_AGENT_MAX_RETRIES", "0"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 12);
  CHECK(st["tasks"]["quarantined"] == 0);
  std::lock_guard<std::mutex> lock(api.m);
  INFO("429 answers: " << api.rejected << " of " << api.arrivals.size());
  // Several tasks met 429s (measured: 8 of 20 answers with slow start and
  // the AIMD cap; 33 of 45 with the cap alone, 70 of 82 with neither).
  CHECK(api.rejected >= 4);
}

TEST_CASE("with BG_AGENT_TPM at the provider's token limit, calls are held "
          "to it at their worst case, refunded to what they used, and next "
          "to none is answered 429",
          "[e2e][rates]") {
  // 600 tokens per 2 s sliding window (18,000 per minute); every answer
  // uses 100 + 20 tokens, counted when the request arrives, as providers
  // count their estimate.
  constexpr size_t token_limit = 600, per_call = 120;
  const auto window = std::chrono::milliseconds(2000);
  std::mutex m;
  std::deque<std::pair<clock_type::time_point, size_t>> in_window;
  std::vector<clock_type::time_point> arrivals;
  int rejected = 0;
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto now = clock_type::now();
    std::lock_guard<std::mutex> lock(m);
    while (!in_window.empty() && now - in_window.front().first >= window)
      in_window.pop_front();
    size_t used = 0;
    for (auto& [at, tokens] : in_window)
      used += tokens;
    if (used + per_call > token_limit) {
      ++rejected;
      return raw_reply{raw_http_server::response(429, rate_limited_body())};
    }
    in_window.emplace_back(now, per_call);
    arrivals.push_back(now);
    return raw_reply{raw_http_server::response(
                       200, raw_http_server::completion(
                              R"({"summary": "ok"})", 100, 20)),
                     false, 50};
  });
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(20, "k"));
  auto r = run_against(server, dir, 8,
                       {{"BG_AGENT_TPM", "18000"},
                        {"BG_AGENT_RATE_WINDOW", "2"},
                        {"BG_AGENT_RETRY_INITIAL", "0.2"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 20);
  std::lock_guard<std::mutex> lock(m);
  INFO("429 answers: " << rejected);
  CHECK(rejected == 0);
  // A call is held at its worst case (222 tokens: one per byte of its
  // prompts, and max_tokens) until its usage (120) is known: held to the
  // worst case alone, 2 calls would go per window; refunded, 3 or 4 do,
  // never more than the server's 5.
  auto busiest = busiest_window(arrivals, window);
  CHECK(busiest >= 3);
  CHECK(busiest <= token_limit / per_call);
}

TEST_CASE("against aimock answering half the calls 429 with Retry-After and "
          "x-ratelimit headers, every task completes once with no retry "
          "burnt and every call held back a second after each 429",
          "[e2e][http][rate]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  // aimock's own chaos: each call is answered 429 with probability 0.5,
  // "Retry-After: 1" and OpenAI's x-ratelimit-* headers (remaining 0,
  // tokens reset in 6 minutes), an independent server's idea of a limit.
  aimock_server mock({fixture_path("provider_rate_limits.json")}, dir.path());
  std::string tasks;
  for (int i = 0; i < 16; ++i)
    tasks += json{{"id", "t" + std::to_string(i)},
                  {"type", "summarize"},
                  {"input", "Text number " + std::to_string(i) +
                              ". [rate-limited]"}}
               .dump() +
             "\n";
  write_file(dir.path("tasks.jsonl"), tasks);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_PROVIDER", "openai"},
                        {"LLM_BASE_URL", mock.openai_base()},
                        {"BG_AGENT_WORKERS", "4"},
                        {"BG_AGENT_MAX_RETRIES", "0"}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);

  auto journal = mock.journal();
  std::vector<int64_t> limited_at, all_at;
  int answered = 0;
  for (auto& e : journal) {
    all_at.push_back(e["timestamp"].get<int64_t>());
    if (e["response"]["status"] == 429)
      limited_at.push_back(e["timestamp"].get<int64_t>());
    else if (e["response"]["status"] == 200)
      ++answered;
  }
  // With p = 0.5 over at least 16 calls, no 429 at all has odds 1 in 65,536.
  REQUIRE(!limited_at.empty());
  CHECK(answered == 16); // one paid answer per task, none twice
  CHECK(journal.size() == 16 + limited_at.size());

  auto rows = json::array();
  {
    std::istringstream in(run_bgagent({"results", "--json"}, dir.path()).out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty())
        rows.push_back(json::parse(line));
  }
  REQUIRE(rows.size() == 16);
  for (auto& row : rows)
    CHECK(row["state"] == "completed");
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "task_completed").size() == 16);
  CHECK(audit_events(audit, "task_quarantined").empty());
  CHECK(audit_events(audit, "task_failed").size() == limited_at.size());

  // Retry-After: 1 holds every call: none starts between 0.3 s and 0.9 s
  // after a 429 (calls already on the wire when it came may land just
  // after it; the bound leaves aimock's clock 100 ms of slack).
  for (auto t : limited_at)
    for (auto a : all_at) {
      INFO("429 at " << t << ", a call at " << a);
      CHECK_FALSE((a > t + 300 && a < t + 900));
    }
}
