// Budget integrity across crashes: calls in flight when the head is killed
// were (or may have been) billed by the provider, so they are charged at
// their reservation when the next run starts, never released. Whatever the
// number of crashes, what the provider can bill stays within the budget.
//
// A real HTTP provider over loopback (the scripted raw server) answers
// every call after 3 s and reports the call's worst case as its usage; the
// real binary runs 64 workers under a token budget and is killed with
// SIGKILL three times while calls are in flight, then runs to its end.
#include <catch2/catch.hpp>

#include <csignal>
#include <mutex>

#include <nlohmann/json.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

// The worst case bgagent reserves for a request: one token per byte of the
// prompts plus 16 of framing, and max_tokens. The servers below report it
// as the call's usage, so what they could bill is known exactly.
std::pair<uint64_t, uint64_t> worst_case(const raw_request& req) {
  auto body = json::parse(req.body);
  uint64_t prompt = 16;
  for (auto& msg : body["messages"])
    prompt += msg["content"].get<std::string>().size();
  return {prompt, body["max_tokens"].get<uint64_t>()};
}

// `n` summarize tasks PREFIX1..PREFIXn of at most 40 tokens each, their
// inputs "TEXT i.".
void write_summaries(const std::string& path, int n, const std::string& prefix,
                     const std::string& text) {
  std::string tasks;
  for (int i = 1; i <= n; ++i)
    tasks += json{{"id", prefix + std::to_string(i)},
                  {"type", "summarize"},
                  {"max_tokens", 40},
                  {"input", text + " " + std::to_string(i) + "."}}
               .dump() +
             "\n";
  write_file(path, tasks);
}

} // namespace

TEST_CASE("kill -9 of the head three times mid-flight: what the provider "
          "received never exceeds the token budget",
          "[e2e][http][budget][crash]") {
  temp_dir dir;
  std::mutex m;
  uint64_t billed = 0; // what the server could bill: its reported usage
  int received = 0;
  raw_http_server server([&](const raw_request& req) {
    auto [prompt, completion] = worst_case(req);
    {
      std::lock_guard<std::mutex> lock(m);
      billed += prompt + completion;
      ++received;
    }
    return raw_reply{raw_http_server::response(
                       200, raw_http_server::completion(
                              R"({"summary": "Done."})",
                              static_cast<int>(prompt),
                              static_cast<int>(completion))),
                     false, 3000};
  });
  write_summaries(dir.path("tasks.jsonl"), 300, "b-", "Budget crash task");
  const uint64_t budget = 40000; // about 120 calls' worth
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"OPENAI_API_KEY", "sk-crash-budget"},
              {"BG_AGENT_PRICE_PROMPT", "0"},
              {"BG_AGENT_PRICE_COMPLETION", "0"},
              {"BG_AGENT_TOKEN_BUDGET", std::to_string(budget)},
              {"BG_AGENT_COST_BUDGET", "100"}};
  for (int crash = 0; crash < 3; ++crash) {
    int before = server.requests();
    background_process head({bgagent_binary(), "run", "--tasks", "tasks.jsonl",
                             "--workers", "64"},
                            dir.path(), env, "head");
    // Killed while calls are in flight: the server holds them for 3 s.
    bool busy = wait_until([&] { return server.requests() >= before + 32; },
                           10);
    INFO(head.err());
    head.signal(SIGKILL);
    CHECK(head.wait(10) == 128 + SIGKILL);
    if (!busy)
      break; // the budget allowed no more calls
  }
  auto last = run_bgagent({"run"}, dir.path(), env);
  INFO(last.err);
  CHECK(last.exit_code == 3); // 300 calls' worth never fit 40,000 tokens
  std::lock_guard<std::mutex> lock(m);
  CHECK(received > 64);
  CHECK(billed <= budget);
  auto st = json::parse(run_bgagent({"status", "--json"}, dir.path()).out);
  // The ledger holds at least what the provider could bill, and within the
  // budget.
  CHECK(st["budget"]["tokens_used"].get<uint64_t>() >= billed);
  CHECK(st["budget"]["tokens_used"].get<uint64_t>() <= budget);
  CHECK(st["tasks"]["running"].get<int>() == 0);
  auto charged = audit_events(dir.path("bgagent-audit.jsonl"),
                              "budget_charged");
  CHECK(charged.size() >= 32);
}

TEST_CASE("a connection that drops after the request was sent: the attempt "
          "is charged its reservation and retried by bgagent, so what the "
          "provider could bill stays within what is charged",
          "[e2e][http][budget]") {
  temp_dir dir;
  std::mutex m;
  uint64_t billed = 0; // every request the server read whole
  int received = 0;
  raw_http_server server([&](const raw_request& req) {
    auto [prompt, completion] = worst_case(req);
    std::lock_guard<std::mutex> lock(m);
    billed += prompt + completion;
    // The second request arrives on the kept-alive connection of the
    // first: read (and billed), then the connection closes unanswered.
    if (++received == 2)
      return raw_reply{"", true};
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "Done."})",
                                       static_cast<int>(prompt),
                                       static_cast<int>(completion)))};
  });
  write_summaries(dir.path("tasks.jsonl"), 3, "d-",
                  "Dropped connection task");
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"OPENAI_API_KEY", "sk-dropped"},
              {"BG_AGENT_PRICE_PROMPT", "0"},
              {"BG_AGENT_PRICE_COMPLETION", "0"},
              {"BG_AGENT_RETRY_INITIAL", "0.05"},
              {"BG_AGENT_TOKEN_BUDGET", "100000"},
              {"BG_AGENT_COST_BUDGET", "100"}};
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--workers", "1"},
                       dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::lock_guard<std::mutex> lock(m);
  // Three tasks, one dropped request made again by bgagent, not by libcurl
  // behind its back: four requests, and the task counts two attempts.
  CHECK(received == 4);
  auto rows = results_by_id(dir.path());
  CHECK(rows.at("d-1")["attempts"] == 1);
  CHECK(rows.at("d-2")["attempts"] == 2);
  CHECK(rows.at("d-3")["attempts"] == 1);
  for (auto& [id, row] : rows)
    CHECK(row["state"] == "completed");
  auto charged = audit_events(dir.path("bgagent-audit.jsonl"),
                              "budget_charged");
  REQUIRE(charged.size() == 1);
  CHECK(charged[0]["task_id"] == "d-2");
  CHECK(charged[0]["attempt"] == 1);
  CHECK(charged[0]["detail"].get<std::string>().find(
          "dropped before its answer") != std::string::npos);
  auto st = json::parse(run_bgagent({"status", "--json"}, dir.path()).out);
  CHECK(st["budget"]["tokens_used"].get<uint64_t>() >= billed);
}
