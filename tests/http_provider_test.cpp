// The OpenAI-compatible HTTP provider end to end: the real bgagent binary
// against @copilotkit/aimock (and, for what aimock cannot send, a scripted
// raw HTTP server), over real sockets on 127.0.0.1.
#include <catch2/catch.hpp>

#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>

#include "messages/utf8.hpp"
#include "providers/http_provider.hpp"
#include "types/type_registry.hpp"
#include "tests/support/aimock.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

const std::string test_key = "sk-or-v1-TESTSECRET-0123456789abcdef";

json task(const std::string& id, const std::string& type,
          const std::string& input) {
  return {{"id", id}, {"type", type}, {"input", input}};
}

// The journal entries whose user message contains `marker`.
std::vector<json> requests_for(const json& journal, const std::string& marker) {
  std::vector<json> out;
  for (auto& e : journal) {
    auto& msgs = e["body"]["messages"];
    if (msgs.is_array() && msgs.size() >= 2 &&
        msgs[1]["content"].get<std::string>().find(marker) != std::string::npos)
      out.push_back(e);
  }
  return out;
}

env_map openrouter_env(const aimock_server& mock) {
  return {{"OPENROUTER_API_KEY", test_key},
          {"LLM_BASE_URL", mock.openrouter_base()},
          {"BG_AGENT_RETRY_INITIAL", "0.1"},
          {"BG_AGENT_RETRY_MAX", "0.2"}};
}

// The most tasks between task_started and its end at once, in audit order.
int peak_in_flight(const std::string& audit) {
  int now = 0, peak = 0;
  for (auto& e : read_jsonl(audit)) {
    auto ev = e.value("event", "");
    if (ev == "task_started")
      peak = std::max(peak, ++now);
    else if (ev == "task_completed" || ev == "task_failed")
      --now;
  }
  return peak;
}

} // namespace

TEST_CASE("three task types complete through OpenRouter on aimock with the "
          "usage and cost it reported",
          "[e2e][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_tasks.json")}, dir.path());
  write_tasks(dir.path("tasks.jsonl"),
              {task("t-sum", "summarize", "Ada wrote the first program. [sum-ok]"),
               task("t-sent", "analyze_sentiment", "I love this phone! [sent-ok]"),
               task("t-ent", "extract_entities",
                    "Ada Lovelace lived in London. [ent-ok]")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       openrouter_env(mock));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("provider openrouter/google/gemini-2.5-flash") !=
        std::string::npos);

  auto journal = mock.journal();
  REQUIRE(journal.size() == 3);
  auto rows = results_by_id(dir.path());
  std::map<std::string, std::string> marker{{"t-sum", "[sum-ok]"},
                                            {"t-sent", "[sent-ok]"},
                                            {"t-ent", "[ent-ok]"}};
  std::map<std::string, int> max_tokens{
    {"t-sum", 256}, {"t-sent", 64}, {"t-ent", 512}};
  uint64_t tokens = 0;
  double cost = 0;
  for (auto& [id, m] : marker) {
    INFO(id);
    auto reqs = requests_for(journal, m);
    REQUIRE(reqs.size() == 1);
    auto& req = reqs[0];
    // What bgagent sent.
    CHECK(req["path"] == "/api/v1/chat/completions");
    CHECK(req["headers"].contains("authorization")); // aimock redacts it
    CHECK(req["headers"]["x-title"] == "bgagent");
    CHECK(req["headers"].contains("http-referer"));
    CHECK(req["body"]["model"] == "google/gemini-2.5-flash");
    CHECK(req["body"]["temperature"] == 0.0);
    CHECK(req["body"]["max_tokens"] == max_tokens[id]);
    CHECK(req["body"]["messages"][0]["role"] == "system");
    CHECK(req["body"]["messages"][0]["content"].get<std::string>().find(
            "JSON") != std::string::npos);
    CHECK(req["body"]["messages"][1]["role"] == "user");
    // What it recorded: exactly what the server reported.
    auto& usage = req["response"]["fixture"]["response"]["usage"];
    auto& row = rows.at(id);
    CHECK(row["state"] == "completed");
    CHECK(row["attempts"] == 1);
    CHECK(row["provider"] == "openrouter");
    CHECK(row["model"] == "google/gemini-2.5-flash");
    CHECK(row["prompt_tokens"] == usage["prompt_tokens"]);
    CHECK(row["completion_tokens"] == usage["completion_tokens"]);
    CHECK(row["cost_usd"].get<double>() ==
          Approx(usage["cost"].get<double>()).epsilon(1e-9));
    tokens += usage["total_tokens"].get<uint64_t>();
    cost += usage["cost"].get<double>();
  }
  CHECK(rows["t-sum"]["result"] ==
        json::parse(R"({"summary": "Mock summary of the text."})"));
  CHECK(rows["t-sent"]["result"] ==
        json::parse(R"({"sentiment": "positive", "confidence": 0.93})"));
  CHECK(rows["t-ent"]["result"]["entities"].size() == 2);
  CHECK(rows["t-ent"]["result"]["entities"][0]["text"] == "Ada Lovelace");

  auto st = status_json(dir.path());
  CHECK(st["budget"]["tokens_used"] == tokens);
  CHECK(st["budget"]["cost_used"].get<double>() == Approx(cost));
}

TEST_CASE("a local OpenAI-compatible server needs no key and is priced from "
          "the table",
          "[e2e][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_tasks.json")}, dir.path());
  write_tasks(dir.path("tasks.jsonl"),
              {task("t1", "summarize", "Ada wrote the first program. [sum-ok]")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_BASE_URL", mock.openai_base()},
                        {"MODEL", "gpt-4o-mini"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("provider openai/gpt-4o-mini") != std::string::npos);
  auto journal = mock.journal();
  REQUIRE(journal.size() == 1);
  CHECK_FALSE(journal[0]["headers"].contains("authorization"));
  CHECK_FALSE(journal[0]["headers"].contains("x-title"));
  auto row = results_by_id(dir.path()).at("t1");
  CHECK(row["state"] == "completed");
  CHECK(row["provider"] == "openai");
  CHECK(row["prompt_tokens"] == 41);
  CHECK(row["completion_tokens"] == 9);
  // No usage.cost on this path: gpt-4o-mini's price, $0.15 / $0.60 per M.
  CHECK(row["cost_usd"].get<double>() ==
        Approx((41 * 0.15 + 9 * 0.60) / 1e6).epsilon(1e-9));
}

TEST_CASE("each HTTP error class leads to its outcome: retried with the "
          "right delay, or quarantined with the provider's message",
          "[e2e][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_errors.json")}, dir.path());
  std::vector<std::string> retried{"[429-once]",       "[408-once]",
                                   "[409-once]",       "[500-once]",
                                   "[502-once]",       "[503-once]",
                                   "[malformed-once]", "[invalid-once]"};
  std::map<std::string, std::string> permanent{
    {"[400-always]", "max_tokens is too large"},
    {"[401-always]", "No auth credentials found"},
    {"[403-always]", "This key is disabled"},
    {"[404-always]", "No endpoints found"},
    {"[422-always]", "messages[1].content is invalid"}};
  std::vector<json> tasks;
  for (auto& m : retried)
    tasks.push_back(task("r" + m, "summarize", "Some text " + m));
  for (auto& [m, msg] : permanent)
    tasks.push_back(task("p" + m, "summarize", "Some text " + m));
  tasks.push_back(task("forever", "summarize", "Some text [500-always]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto env = openrouter_env(mock);
  env["BG_AGENT_MAX_RETRIES"] = "2";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "8"},
                       dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  auto journal = mock.journal();
  auto audit = dir.path("bgagent-audit.jsonl");
  auto retries = audit_events(audit, "task_retry_scheduled");

  for (auto& m : retried) {
    INFO(m);
    auto& row = rows.at("r" + m);
    CHECK(row["state"] == "completed");
    CHECK(row["attempts"] == 2);
    CHECK(requests_for(journal, m).size() == 2);
  }
  // The 429's Retry-After: 2 was honoured, by the schedule and in fact.
  std::string detail_429;
  for (auto& e : retries)
    if (e["task_id"] == "r[429-once]")
      detail_429 = e["detail"];
  CHECK(detail_429.find("retry in 2.000 s (Retry-After)") != std::string::npos);
  CHECK(detail_429.find("HTTP 429") != std::string::npos);
  CHECK(detail_429.find("Rate limit exceeded") != std::string::npos);
  auto two = requests_for(journal, "[429-once]");
  REQUIRE(two.size() == 2);
  CHECK(two[1]["timestamp"].get<int64_t>() - two[0]["timestamp"].get<int64_t>() >=
        1900);

  for (auto& [m, msg] : permanent) {
    INFO(m);
    auto& row = rows.at("p" + m);
    CHECK(row["state"] == "quarantined");
    CHECK(row["attempts"] == 1);
    auto err = row["error"].get<std::string>();
    CHECK(err.find("HTTP " + m.substr(1, 3)) != std::string::npos);
    CHECK(err.find(msg) != std::string::npos);
    CHECK(requests_for(journal, m).size() == 1);
  }
  // Three counted attempts (a 5xx right after another task's is the
  // provider's fault, not counted: the audit marks it).
  auto& forever = rows.at("forever");
  CHECK(forever["state"] == "quarantined");
  int free = 0;
  for (auto& e : audit_events(audit, "task_failed"))
    if (e["task_id"] == "forever" &&
        e["detail"].get<std::string>().find("the provider's fault") !=
          std::string::npos)
      ++free;
  CHECK(forever["attempts"].get<int>() - free == 3);
  CHECK(forever["error"].get<std::string>().find("HTTP 500") !=
        std::string::npos);
  CHECK(requests_for(journal, "[500-always]").size() ==
        forever["attempts"].get<size_t>());

  // Nothing lost, nothing completed twice: one task_completed for each
  // task completed (the retried ones), and no other.
  CHECK(rows.size() == tasks.size());
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == retried.size());
  for (auto& m : retried)
    CHECK(completed["r" + m] == 1);
  for (auto& [id, n] : completed)
    CHECK(n == 1);
  CHECK(audit_events(audit, "task_quarantined").size() == permanent.size() + 1);

  // A connection dropped before any answer is a failed attempt, retried
  // (also on a reused connection, where libcurl would send it again by
  // itself: crash_budget_test.cpp).
  temp_dir alone;
  write_tasks(alone.path("tasks.jsonl"),
              {task("r[disconnect-once]", "summarize",
                    "Some text [disconnect-once]")});
  auto r2 = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "1"},
                        alone.path(), env);
  INFO(r2.err);
  REQUIRE(r2.exit_code == 0);
  auto row = results_by_id(alone.path()).at("r[disconnect-once]");
  CHECK(row["state"] == "completed");
  CHECK(row["attempts"] == 2);
  CHECK(requests_for(mock.journal(), "[disconnect-once]").size() == 2);
}

TEST_CASE("HTTP 402 stops the run like a budget denial, with a critical "
          "alert",
          "[e2e][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_errors.json"),
                      fixture_path("provider_tasks.json")},
                     dir.path());
  std::vector<json> tasks{task("broke", "summarize", "Pay me [402-always]")};
  for (int i = 0; i < 5; ++i)
    tasks.push_back(task("later-" + std::to_string(i), "summarize",
                         "Text " + std::to_string(i) + " [sum-ok]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "1"},
                       dir.path(), openrouter_env(mock));
  INFO(r.err);
  REQUIRE(r.exit_code == 3);
  CHECK(r.out.find("out_of_credits") != std::string::npos);
  auto alerts = read_jsonl(dir.path("bgagent-alerts.jsonl"));
  bool critical = false;
  for (auto& a : alerts)
    if (a.dump().find("critical") != std::string::npos &&
        a.dump().find("Insufficient credits") != std::string::npos)
      critical = true;
  CHECK(critical);
  auto rows = results_by_id(dir.path());
  CHECK(rows.at("broke")["state"] == "pending"); // not the task's fault
  CHECK(requests_for(mock.journal(), "[402-always]").size() == 1);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["completed"] == 0);
  CHECK(st["tasks"]["pending"] == 6);
}

TEST_CASE("503 Retry-After, retry-after-ms, HTTP dates, empty and truncated "
          "bodies, timeouts, and answers without usage",
          "[e2e][http]") {
  temp_dir dir;
  std::mutex m;
  std::map<std::string, int> calls;
  raw_http_server server([&](const raw_request& req) {
    auto body = json::parse(req.body);
    auto input = body["messages"][1]["content"].get<std::string>();
    int n;
    {
      std::lock_guard<std::mutex> lock(m);
      n = calls[input]++;
    }
    auto ok = raw_http_server::completion(R"({"summary": "Fine."})", 30, 6);
    auto err = R"({"error": {"message": "busy, come back later"}})";
    if (input.find("[nousage]") != std::string::npos)
      return raw_reply{raw_http_server::response(
        200, raw_http_server::completion(R"({"summary": "Free?"})", -1))};
    if (n > 0)
      return raw_reply{raw_http_server::response(200, ok)};
    if (input.find("[hang]") != std::string::npos) // past BG_AGENT_TIMEOUT
      return raw_reply{raw_http_server::response(200, ok), false, 4000};
    if (input.find("[503-ra]") != std::string::npos)
      return raw_reply{raw_http_server::response(503, err, {"Retry-After: 1"})};
    if (input.find("[503-ms]") != std::string::npos)
      return raw_reply{
        raw_http_server::response(503, err, {"retry-after-ms: 1500"})};
    if (input.find("[429-date]") != std::string::npos) {
      char date[64];
      std::time_t at = std::time(nullptr) + 3;
      std::tm tm{};
      gmtime_r(&at, &tm);
      std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
      return raw_reply{raw_http_server::response(
        429, err, {std::string("Retry-After: ") + date})};
    }
    if (input.find("[empty]") != std::string::npos)
      return raw_reply{raw_http_server::response(200, "")};
    auto full = raw_http_server::response(200, ok); // [trunc]
    return raw_reply{full.substr(0, full.size() - 20), true};
  });
  std::vector<std::string> markers{"[503-ra]", "[503-ms]", "[429-date]",
                                   "[empty]",  "[trunc]",  "[hang]"};
  std::vector<json> tasks;
  for (auto& mk : markers)
    tasks.push_back(task(mk, "summarize", "Text " + mk));
  tasks.push_back(task("nousage", "summarize", "Text [nousage]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "6"},
                       dir.path(),
                       {{"LLM_PROVIDER", "openai"},
                        {"LLM_BASE_URL", server.base_url()},
                        {"MODEL", "gpt-4o-mini"},
                        {"BG_AGENT_RETRY_INITIAL", "0.1"},
                        {"BG_AGENT_RETRY_MAX", "0.2"},
                        {"BG_AGENT_TIMEOUT", "1.5"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  for (auto& mk : markers) {
    INFO(mk);
    CHECK(rows.at(mk)["state"] == "completed");
    CHECK(rows.at(mk)["attempts"] == 2);
  }
  std::map<std::string, std::string> detail;
  for (auto& e : audit_events(dir.path("bgagent-audit.jsonl"),
                              "task_retry_scheduled"))
    detail[e["task_id"]] = e["detail"];
  CHECK(detail["[503-ra]"].find("retry in 1.000 s (Retry-After)") !=
        std::string::npos);
  CHECK(detail["[503-ra]"].find("HTTP 503") != std::string::npos);
  CHECK(detail["[503-ra]"].find("busy, come back later") != std::string::npos);
  CHECK(detail["[503-ms]"].find("retry in 1.500 s (Retry-After)") !=
        std::string::npos);
  CHECK(detail["[429-date]"].find("(Retry-After)") != std::string::npos);
  CHECK(detail["[429-date]"].find("retry in 0.000 s") == std::string::npos);
  CHECK(detail["[empty]"].find("empty response body") != std::string::npos);
  CHECK(detail["[trunc]"].find("request failed") != std::string::npos);
  CHECK(detail["[hang]"].find("timed out after 1.5 s (BG_AGENT_TIMEOUT)") !=
        std::string::npos);
  // No usage in the answer: charged the whole reservation, never zero.
  auto& free = rows.at("nousage");
  CHECK(free["state"] == "completed");
  CHECK(free["completion_tokens"] == 256);
  CHECK(free["prompt_tokens"].get<int>() > 0);
  CHECK(free["cost_usd"].get<double>() > 0);
  // The budget: what the server reported for each answer with usage, plus
  // the whole reservation (one token per prompt byte + max_tokens) for each
  // billed attempt without it: the answer without usage, the empty and the
  // truncated 2xx answers, and the call that timed out. Error statuses
  // (429, 503) cost nothing.
  auto reservation = [](const std::string& input) {
    return type_registry::builtin().find("summarize")->system.size() +
           input.size() + 16 + 256;
  };
  uint64_t expected = 6 * 36 + reservation("Text [nousage]") +
                      reservation("Text [empty]") +
                      reservation("Text [trunc]") + reservation("Text [hang]");
  CHECK(status_json(dir.path())["budget"]["tokens_used"] == expected);
}

TEST_CASE("one task alone against an unreachable server is retried, then "
          "quarantined with the reason: one request failing again is not an "
          "outage",
          "[e2e][http]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), {task("t1", "summarize", "Text")});
  auto r = run_bgagent(
    {"run", "--tasks", "tasks.jsonl"}, dir.path(),
    {{"LLM_PROVIDER", "openai"},
     {"LLM_BASE_URL", "http://127.0.0.1:" + std::to_string(free_port()) + "/v1"},
     {"BG_AGENT_MAX_RETRIES", "1"},
     {"BG_AGENT_RETRY_INITIAL", "0.1"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto row = results_by_id(dir.path()).at("t1");
  CHECK(row["state"] == "quarantined");
  CHECK(row["attempts"] == 2);
  CHECK(row["error"].get<std::string>().find("request failed") !=
        std::string::npos);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "circuit_opened")
          .empty());
}

TEST_CASE("the API key appears in no output, log, audit line, alert, result "
          "or error",
          "[e2e][http]") {
  temp_dir dir;
  std::atomic<int> saw_key{0};
  std::mutex m;
  std::map<std::string, int> calls;
  raw_http_server server([&](const raw_request& req) {
    auto at = req.head.find("Bearer ");
    std::string key =
      at == std::string::npos ? "" : req.head.substr(at + 7, test_key.size());
    if (key == test_key)
      ++saw_key;
    // The price list (GET /models): an error echoing the key as well.
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(
        401, json{{"error", {{"message", "Incorrect API key: " + key}}}}
               .dump())};
    auto input =
      json::parse(req.body)["messages"][1]["content"].get<std::string>();
    int n;
    {
      std::lock_guard<std::mutex> lock(m);
      n = calls[input]++;
    }
    json echo{{"error", {{"message", "Incorrect API key provided: " + key}}}};
    if (input.find("[401]") != std::string::npos)
      return raw_reply{raw_http_server::response(401, echo.dump())};
    if (input.find("[500]") != std::string::npos && n == 0)
      return raw_reply{raw_http_server::response(500, echo.dump())};
    if (input.find("[402]") != std::string::npos)
      return raw_reply{raw_http_server::response(402, echo.dump())};
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "ok )" + key + "\"}"))};
  });
  write_tasks(dir.path("tasks.jsonl"),
              {task("a", "summarize", "Text [401]"),
               task("b", "summarize", "Text [500]"),
               task("c", "summarize", "Text [ok]"),
               task("d", "summarize", "Text [402]")});
  env_map env{{"OPENROUTER_API_KEY", test_key},
              {"LLM_BASE_URL", server.base_url()},
              {"BG_AGENT_LOG_LEVEL", "debug"},
              {"BG_AGENT_RETRY_INITIAL", "0.1"}};
  auto r1 = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "1"},
                        dir.path(), env);
  REQUIRE(r1.exit_code == 3); // the 402 stopped it
  auto r2 = run_bgagent({"status"}, dir.path(), env);
  auto r3 = run_bgagent({"status", "--json"}, dir.path(), env);
  auto r4 = run_bgagent({"results"}, dir.path(), env);
  auto r5 = run_bgagent({"results", "--json"}, dir.path(), env);
  CHECK(saw_key.load() >= 4); // the key did reach the server
  auto rows = results_by_id(dir.path());
  CHECK(rows.at("a")["state"] == "quarantined");
  CHECK(rows.at("a")["error"].get<std::string>().find("[redacted]") !=
        std::string::npos);
  CHECK(rows.at("c")["state"] == "completed");
  for (auto* res : {&r1, &r2, &r3, &r4, &r5}) {
    CHECK(res->out.find(test_key) == std::string::npos);
    CHECK(res->err.find(test_key) == std::string::npos);
  }
  // Every file bgagent wrote: database, WAL, audit log, alerts.
  int files = 0;
  for (auto& f : std::filesystem::directory_iterator(dir.path())) {
    if (!f.is_regular_file() || f.path().filename() == "tasks.jsonl")
      continue;
    ++files;
    INFO(f.path().string());
    CHECK(read_file(f.path().string()).find(test_key) == std::string::npos);
  }
  CHECK(files >= 3);
}

TEST_CASE("a selected provider without its key is one clear line and exit 2",
          "[e2e][http]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), {task("t1", "summarize", "Text")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_PROVIDER", "openrouter"}});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("OPENROUTER_API_KEY is not set") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(dir.path("bgagent.db")));

  auto o = run_bgagent({"run", "--tasks", "tasks.jsonl", "--provider",
                        "openai"},
                       dir.path());
  CHECK(o.exit_code == 2);
  CHECK(o.err.find("OPENAI_API_KEY is not set") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path("bgagent.db")));
}

TEST_CASE("64 workers against a 1 s server keep ~64 calls in flight, and "
          "the budget never overshoots",
          "[e2e][http][slow]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_tasks.json")}, dir.path());
  const int n = 256;
  std::vector<json> tasks;
  for (int i = 0; i < n; ++i)
    tasks.push_back(task("s" + std::to_string(i), "summarize",
                         "Slow text #" + std::to_string(i) + " [slow]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto env = openrouter_env(mock);
  env["BG_AGENT_TOKEN_BUDGET"] = "1000000";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "64"},
                       dir.path(), env, 300);
  double wall =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == n);
  CHECK(mock.journal().size() == static_cast<size_t>(n));
  // Sequential would take n s; 64 in flight take n/64 = 4 s. Generous bound.
  CHECK(wall < n * 1.0 / 4);
  auto peak = peak_in_flight(dir.path("bgagent-audit.jsonl"));
  CHECK(peak >= 48); // ~64; sequential calls would give 1
  CHECK(peak <= 64);

  // The same, in a fresh store, with a token budget for only some tasks.
  temp_dir dir2;
  write_tasks(dir2.path("tasks.jsonl"), tasks);
  env["BG_AGENT_TOKEN_BUDGET"] = "6000";
  auto b = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "64"},
                       dir2.path(), env, 300);
  INFO(b.err);
  REQUIRE(b.exit_code == 3);
  auto st = status_json(dir2.path());
  auto used = st["budget"]["tokens_used"].get<uint64_t>();
  auto done = st["tasks"]["completed"].get<uint64_t>();
  CHECK(used <= 6000);
  CHECK(used == done * 120); // each call reported 100 + 20 tokens
  CHECK(done > 0);
  CHECK(st["tasks"]["pending"].get<uint64_t>() == n - done);
}

TEST_CASE("kill -9 while calls are in flight, then a restart: every task "
          "completes once",
          "[e2e][http][slow]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("provider_tasks.json")}, dir.path());
  const int n = 96;
  std::vector<json> tasks;
  for (int i = 0; i < n; ++i)
    tasks.push_back(task("k" + std::to_string(i), "summarize",
                         "Killed text #" + std::to_string(i) + "# [slow]"));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto env = openrouter_env(mock);
  env["BG_AGENT_TOKEN_BUDGET"] = "1000000";
  std::vector<std::string> argv{bgagent_binary(), "run", "--tasks",
                                "tasks.jsonl", "--workers", "16"};
  auto audit = dir.path("bgagent-audit.jsonl");
  {
    background_process p(argv, dir.path(), env, "victim");
    REQUIRE(wait_until(
      [&] { return audit_events(audit, "task_completed").size() >= 20; }, 60));
    p.signal(SIGKILL);
    CHECK(p.wait(30) == 128 + SIGKILL);
  }
  auto before = results_by_id(dir.path());
  std::set<std::string> done_before;
  int running = 0;
  for (auto& [id, row] : before) {
    if (row["state"] == "completed")
      done_before.insert(id);
    if (row["state"] == "running")
      ++running;
  }
  CHECK(done_before.size() >= 20);
  CHECK(done_before.size() < static_cast<size_t>(n));
  CHECK(running > 0); // it really died mid-flight
  auto again = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "16"},
                           dir.path(), env, 300);
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  auto after = results_by_id(dir.path());
  REQUIRE(after.size() == static_cast<size_t>(n));
  for (auto& [id, row] : after)
    CHECK(row["state"] == "completed");
  // Completed before the crash: never called again.
  auto journal = mock.journal();
  for (auto& id : done_before) {
    auto i = id.substr(1);
    CHECK(requests_for(journal, "#" + i + "#").size() == 1);
  }
  auto completed = count_by_task(audit, "task_completed");
  CHECK(completed.size() == static_cast<size_t>(n));
  for (auto& [id, c] : completed)
    CHECK(c == 1);
  CHECK(audit_events(audit, "task_interrupted").size() ==
        static_cast<size_t>(running));
}

TEST_CASE("the request carries the rendered prompts, the temperature and "
          "max_tokens",
          "[http]") {
  auto builtin = type_registry::builtin();
  auto* type = builtin.find("analyze_sentiment");
  llm_request req{"t1",         "analyze_sentiment", "I love it",
                  type->max_tokens, type->system,    "I love it",
                  "",           "",                  0,
                  false,        "",                  "",
                  {}};
  auto body = json::parse(http_provider::request_body("m-1", req));
  CHECK(body["model"] == "m-1");
  CHECK(body["temperature"] == 0.0);
  CHECK(body["max_tokens"] == 64);
  CHECK(body["stream"] == false);
  REQUIRE(body["messages"].size() == 2);
  CHECK(body["messages"][0]["role"] == "system");
  CHECK(body["messages"][0]["content"] == type->system);
  CHECK(body["messages"][1] == json({{"role", "user"}, {"content", "I love it"}}));
  req.max_tokens = 99;
  req.temperature = 0.5;
  req.system.clear();
  auto other = json::parse(http_provider::request_body("m", req));
  CHECK(other["max_tokens"] == 99);
  CHECK(other["temperature"] == 0.5);
  // No system prompt, no system message.
  REQUIRE(other["messages"].size() == 1);
  CHECK(other["messages"][0]["role"] == "user");
}

TEST_CASE("the request carries the type's schema as response_format unless "
          "turned off, and a repair turn as two more messages",
          "[http]") {
  llm_request req;
  req.task_id = "t1";
  req.type = "route ticket";
  req.max_tokens = 50;
  req.system = "Route it.";
  req.prompt = "Ticket: late";
  req.schema = R"({"type":"object","required":["queue"]})";
  auto body = json::parse(http_provider::request_body("m", req));
  CHECK(body["response_format"] ==
        json({{"type", "json_schema"},
              {"json_schema",
               {{"name", "route_ticket"},
                {"schema", {{"type", "object"}, {"required", {"queue"}}}},
                {"strict", false}}}}));
  CHECK_FALSE(json::parse(http_provider::request_body("m", req, false))
                .contains("response_format"));
  req.schema.clear();
  CHECK_FALSE(json::parse(http_provider::request_body("m", req))
                .contains("response_format"));
  req.repair_answer = "{\"queue\": 7}";
  req.repair_error = "at /queue: not a string";
  body = json::parse(http_provider::request_body("m", req));
  REQUIRE(body["messages"].size() == 4);
  CHECK(body["messages"][2] ==
        json({{"role", "assistant"}, {"content", "{\"queue\": 7}"}}));
  CHECK(body["messages"][3]["role"] == "user");
  CHECK(body["messages"][3]["content"] ==
        "Your previous answer did not satisfy the required JSON Schema: at "
        "/queue: not a string. Answer again with only the corrected JSON "
        "value, nothing else.");
}

namespace bgagent {
// From types/openai_batch.hpp, whose `task` would clash with this file's.
std::string repair_instruction(const std::string& error);
} // namespace bgagent

namespace {

// What the body was before it was written field by field: a json tree,
// dumped. A cached answer's fingerprint hashes these bytes, so the fast
// writer must produce exactly them.
std::string body_as_tree(const std::string& model, const llm_request& req,
                         bool response_format) {
  json messages = json::array();
  if (!req.system.empty())
    messages.push_back({{"role", "system"}, {"content", req.system}});
  messages.push_back({{"role", "user"}, {"content", req.prompt}});
  if (!req.repair_answer.empty()) {
    messages.push_back({{"role", "assistant"}, {"content", req.repair_answer}});
    messages.push_back(
      {{"role", "user"}, {"content", repair_instruction(req.repair_error)}});
  }
  json body{{"model", model},
            {"messages", std::move(messages)},
            {"temperature", req.temperature},
            {"max_tokens", req.max_tokens},
            {"stream", false}};
  if (!req.fallback_models.empty()) {
    json models = json::array({model});
    for (auto& m : req.fallback_models)
      models.push_back(m);
    body["models"] = std::move(models);
  }
  auto schema = json::parse(req.schema, nullptr, false);
  if (response_format && !req.schema.empty() && schema.is_object()) {
    std::string name;
    for (char c : req.type)
      if (name.size() < 64)
        name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                    c == '_'
                  ? c
                  : '_';
    body["response_format"] = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", name.empty() ? "result" : name},
        {"schema", schema},
        {"strict", false}}}};
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

TEST_CASE("the request body is byte for byte the json tree's dump, for "
          "every shape of request",
          "[http]") {
  llm_request req;
  req.task_id = "t1";
  req.type = "route ticket/\xc3\xa9";
  req.max_tokens = 4096;
  req.system = "Route it.\n\tQuote \"this\" \\ and \x01\x1f\x7f.";
  req.prompt = "Ticket: caf\xc3\xa9 \xf0\x9f\x98\x80 late\r\b\f";
  req.schema = R"({"type":"object","required":["queue"],)"
               R"("properties":{"queue":{"type":"string","enum":["a\u00e9"]}}})";
  auto same = [&](const std::string& model, bool response_format) {
    INFO("model " << model << ", response_format " << response_format
                  << ", temperature " << req.temperature);
    CHECK(http_provider::request_body(model, req, response_format) ==
          body_as_tree(model, req, response_format));
  };
  for (double t : {0.0, 0.7, 1.0, 1e-7, 123456789.25})
    for (bool rf : {true, false}) {
      req.temperature = t;
      same("m", rf);
      same("openai/gpt-4o-mini \"x\"", rf);
    }
  req.system.clear();
  same("m", true);
  req.fallback_models = {"b/one", "c/\xc3\xa9"};
  same("a/zero", true);
  req.repair_answer = "{\"queue\": 7}\n";
  req.repair_error = "at /queue: not a \"string\"";
  same("a/zero", true);
  req.schema = "[1, 2]"; // not an object: no response_format
  same("m", true);
  req.schema = "{not json";
  same("m", true);
  req.schema.clear();
  req.type.clear();
  same("m", true);
  // Ill-formed UTF-8 in any text: nlohmann's replacement, as before.
  req.prompt = "bad \xc3 and \xff\xfe end";
  same("m", true);
  req.prompt = "fine";
  req.repair_answer = "\xe2\x82";
  same("m", true);
  req.repair_answer.clear();
  req.fallback_models = {"\x80"};
  same("m", true);
  // Nested keys out of order, escapes, floats and non-ASCII in the schema;
  // odd numbers; empty texts; ill-formed UTF-8 in the model, the system
  // prompt and the repair error.
  req.schema = R"({"z":{"b":1.5e3,"a":[true,null,"\u00e9\n\"x\""]},)"
               R"("type":"object","A":-0.0})";
  req.max_tokens = 0;
  req.prompt.clear();
  same("", true);
  req.max_tokens = 4294967295u;
  for (double t : {-0.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    req.temperature = t;
    same("m", true);
  }
  req.system = "sys \xc0\xaf";
  same("m", true);
  req.system = "sys";
  same("m\xed\xa0\x80", true);
  req.repair_answer = "{}";
  req.repair_error = "at /x: \xf5 bad";
  same("m", true);
  req.repair_answer.clear();
  // A schema seen many times (the per-thread memo) and after its bound.
  req.fallback_models.clear();
  for (int i = 0; i < 70; ++i) {
    req.schema = R"({"type":"object","maxProperties":)" + std::to_string(i) +
                 "}";
    same("m", true);
  }
  req.schema = R"({"type":"object","maxProperties":3})";
  same("m", true);
}

TEST_CASE("a chat task's body is sent as it is, with model and max_tokens "
          "added only when absent",
          "[http]") {
  llm_request req;
  req.task_id = "c1";
  req.type = "chat";
  req.raw = true;
  req.max_tokens = 1024;
  req.input = R"({"messages":[{"role":"user","content":"hi"}],"top_p":0.3})";
  auto body = json::parse(http_provider::request_body("run-model", req));
  CHECK(body == json({{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                      {"top_p", 0.3},
                      {"model", "run-model"},
                      {"max_tokens", 1024}}));
  req.input = R"({"model":"own","max_completion_tokens":9,"messages":[]})";
  body = json::parse(http_provider::request_body("run-model", req));
  CHECK(body == json({{"model", "own"},
                      {"max_completion_tokens", 9},
                      {"messages", json::array()}}));
  req.input = "not json";
  CHECK(http_provider::request_body("m", req).empty());
}

namespace {

env_map raw_openai_env(const raw_http_server& server) {
  return {{"LLM_PROVIDER", "openai"},
          {"LLM_BASE_URL", server.base_url()},
          {"MODEL", "gpt-4o-mini"},
          {"BG_AGENT_RETRY_INITIAL", "0.1"},
          {"BG_AGENT_RETRY_MAX", "0.2"}};
}

std::string user_input(const raw_request& req) {
  return json::parse(req.body)["messages"][1]["content"].get<std::string>();
}

// A chat completions answer with `usage` as raw JSON text.
std::string answer_with_usage(const std::string& usage) {
  auto text = raw_http_server::completion(R"({"summary": "Fine."})", -1);
  text.pop_back();
  return text + R"(,"usage":)" + usage + "}";
}

// Every line of `text` is valid UTF-8; with `as_json`, each non-empty line
// also parses as JSON.
void check_lines(const std::string& what, const std::string& text,
                 bool as_json) {
  INFO(what);
  CHECK(valid_utf8(text));
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || !as_json)
      continue;
    INFO(line);
    CHECK_NOTHROW(json::parse(line));
  }
}

} // namespace

TEST_CASE("usage.cost from an OpenAI-compatible server is what is charged",
          "[e2e][http]") {
  temp_dir dir;
  raw_http_server server([&](const raw_request&) {
    return raw_reply{raw_http_server::response(
      200, answer_with_usage(R"({"prompt_tokens": 30, "completion_tokens": 6,)"
                             R"( "total_tokens": 36, "cost": 0.0123})"))};
  });
  write_tasks(dir.path("tasks.jsonl"), {task("a", "summarize", "Text one"),
                                        task("b", "summarize", "Text two")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       raw_openai_env(server));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  for (auto id : {"a", "b"}) {
    INFO(id);
    CHECK(rows.at(id)["provider"] == "openai");
    CHECK(rows.at(id)["prompt_tokens"] == 30);
    // The server's figure, not gpt-4o-mini's table price.
    CHECK(rows.at(id)["cost_usd"].get<double>() == Approx(0.0123));
  }
  auto st = status_json(dir.path());
  CHECK(st["budget"]["tokens_used"] == 72);
  CHECK(st["budget"]["cost_used"].get<double>() == Approx(0.0246));
}

TEST_CASE("lying usage is retried and charged the reservation, and usage over "
          "the reservation is charged and alerted",
          "[e2e][http]") {
  temp_dir dir;
  std::mutex m;
  std::map<std::string, int> calls;
  raw_http_server server([&](const raw_request& req) {
    auto input = user_input(req);
    int n;
    {
      std::lock_guard<std::mutex> lock(m);
      n = calls[input]++;
    }
    if (input.find("[lie]") != std::string::npos && n == 0)
      return raw_reply{raw_http_server::response(
        200, answer_with_usage(
               R"({"prompt_tokens": -5, "completion_tokens": 6})"))};
    if (input.find("[absurd]") != std::string::npos && n == 0)
      return raw_reply{raw_http_server::response(
        200, answer_with_usage(
               R"({"prompt_tokens": 1e30, "completion_tokens": 6})"))};
    if (input.find("[over]") != std::string::npos) // max_tokens is 256
      return raw_reply{raw_http_server::response(
        200, answer_with_usage(
               R"({"prompt_tokens": 30, "completion_tokens": 5000})"))};
    return raw_reply{raw_http_server::response(
      200, answer_with_usage(
             R"({"prompt_tokens": 30, "completion_tokens": 6})"))};
  });
  write_tasks(dir.path("tasks.jsonl"),
              {task("lie", "summarize", "Text [lie]"),
               task("absurd", "summarize", "Text [absurd]"),
               task("over", "summarize", "Text [over]")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "1"},
                       dir.path(), raw_openai_env(server));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  // Each lie is charged its whole reservation (never 0, never 1e30), every
  // believable answer what it reported, even over the reservation.
  auto reservation = [](const std::string& input) {
    return type_registry::builtin().find("summarize")->system.size() +
           input.size() + 16 + 256;
  };
  for (auto id : {"lie", "absurd"}) {
    INFO(id);
    auto& row = rows.at(id);
    CHECK(row["state"] == "completed");
    CHECK(row["attempts"] == 2);
    CHECK(row["prompt_tokens"].get<uint64_t>() +
            row["completion_tokens"].get<uint64_t>() ==
          reservation("Text [" + std::string(id) + "]") + 36);
  }
  CHECK(rows.at("over")["state"] == "completed");
  CHECK(rows.at("over")["completion_tokens"] == 5000);
  std::map<std::string, std::string> retry;
  for (auto& e : audit_events(dir.path("bgagent-audit.jsonl"),
                              "task_retry_scheduled"))
    retry[e["task_id"]] = e["detail"];
  CHECK(retry["lie"].find("openai answer: usage.prompt_tokens = -5 is not a "
                          "valid token count") != std::string::npos);
  CHECK(retry["absurd"].find("usage.prompt_tokens = 1e+30 is not a valid "
                             "token count") != std::string::npos);
  std::map<std::string, int> alerts;
  for (auto& a : read_jsonl(dir.path("bgagent-alerts.jsonl")))
    if (a.value("severity", "") == "critical")
      ++alerts[a.value("kind", "")];
  CHECK(alerts["lying_usage"] == 2);
  CHECK(alerts["usage_over_reservation"] == 1);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"),
                     "usage_over_reservation")
          .size() == 1);
  uint64_t expected = reservation("Text [lie]") + reservation("Text [absurd]") +
                      2 * 36 + 5030;
  CHECK(status_json(dir.path())["budget"]["tokens_used"] == expected);
}

TEST_CASE("a long multi-byte provider error is cut by characters: results, "
          "status, audit and alerts stay valid UTF-8 and JSON",
          "[e2e][http][utf8]") {
  temp_dir dir;
  std::string zh;
  for (int i = 0; i < 300; ++i)
    zh += "\xE9\x94\x99\xE8\xAF\xAF"; // 错误
  // "x" + 99 characters (298 bytes), then an emoji across byte 300: the old
  // 300-byte cut split it.
  auto message = "x" + zh.substr(0, 297) + "\xF0\x9F\x98\x80" + zh;
  raw_http_server server([&](const raw_request& req) {
    auto input = user_input(req);
    if (input.find("[zh]") != std::string::npos)
      return raw_reply{raw_http_server::response(
        400, json{{"error", {{"message", message}}}}.dump())};
    if (input.find("[raw]") != std::string::npos) // not JSON, not UTF-8
      return raw_reply{raw_http_server::response(
        400, zh.substr(0, 298) + "\xFF\xFE " + zh.substr(0, 301))};
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(
             json{{"summary", "\xE6\x91\x98\xE8\xA6\x81 " + zh.substr(0, 90) +
                                "\xF0\x9F\x98\x80"}}
               .dump()))};
  });
  std::string long_id = "\xE4\xBB\xBB\xE5\x8A\xA1";
  for (int i = 0; i < 30; ++i)
    long_id += "\xE9\x95\xBF"; // 长
  write_tasks(dir.path("tasks.jsonl"),
              {task("zh", "summarize", "Text [zh]"),
               task("raw", "summarize", "Text [raw]"),
               task(long_id, "summarize", "Text [ok]")});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       raw_openai_env(server));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_lines("run", r.out, false);

  auto rj = run_bgagent({"results", "--json"}, dir.path());
  INFO(rj.err);
  REQUIRE(rj.exit_code == 0);
  check_lines("results --json", rj.out, true);
  auto rows = results_by_id(dir.path());
  REQUIRE(rows.size() == 3);
  auto err = rows.at("zh")["error"].get<std::string>();
  CHECK(err.find("HTTP 400") != std::string::npos);
  CHECK(err.find("x\xE9\x94\x99\xE8\xAF\xAF") != std::string::npos);
  CHECK(err.find("\xF0\x9F\x98\x80") != std::string::npos); // kept whole
  CHECK(err.substr(err.size() - 3) == "...");
  auto raw = rows.at("raw")["error"].get<std::string>();
  CHECK(raw.find("\xEF\xBF\xBD") != std::string::npos); // U+FFFD
  CHECK(rows.at(long_id)["state"] == "completed");

  auto table = run_bgagent({"results"}, dir.path());
  INFO(table.err);
  REQUIRE(table.exit_code == 0);
  check_lines("results", table.out, false);
  CHECK(table.out.find("\xE4\xBB\xBB\xE5\x8A\xA1") != std::string::npos);
  auto st = run_bgagent({"status"}, dir.path());
  REQUIRE(st.exit_code == 0);
  check_lines("status", st.out, false);
  auto sj = run_bgagent({"status", "--json"}, dir.path());
  REQUIRE(sj.exit_code == 0);
  check_lines("status --json", sj.out, true);
  check_lines("audit", read_file(dir.path("bgagent-audit.jsonl")), true);
  check_lines("alerts", read_file(dir.path("bgagent-alerts.jsonl")), true);
}
