// fallback_models: a model that refuses a request (too long for its
// context) hands the task to the next model at once, not counted as a
// retry; a model that is down (its circuit open) passes each attempt to
// the next before any call; OpenRouter gets the list as its own `models`;
// an unpriced fallback stops the run before any call. Against local
// servers that answer per model.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
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

// Counts the chat requests per model (the body's "model"), keeps the
// bodies, and answers with `answer(model)`.
struct per_model_server {
  explicit per_model_server(std::function<raw_reply(const std::string&)> a)
    : answer(std::move(a)),
      server([this](const raw_request& req) { return serve(req); }) {}

  raw_reply serve(const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto body = json::parse(req.body, nullptr, false);
    std::string model = body.is_object() ? body.value("model", "") : "";
    {
      std::lock_guard<std::mutex> lock(m);
      ++calls[model];
      bodies.push_back(body);
    }
    return answer(model);
  }
  int calls_to(const std::string& model) {
    std::lock_guard<std::mutex> lock(m);
    return calls[model];
  }

  std::function<raw_reply(const std::string&)> answer;
  std::mutex m;
  std::map<std::string, int> calls;
  std::vector<json> bodies;
  raw_http_server server; // last: stopped first
};

raw_reply ok() {
  return raw_reply{raw_http_server::response(
    200, raw_http_server::completion(R"({"summary": "Done."})", 100, 10))};
}

// Prices for the test's models, so a cost budget can hold them.
void write_prices(const temp_dir& dir) {
  write_file(dir.path("prices.json"),
             R"({"small-model": {"prompt": 0.1, "completion": 0.2},
                 "big-model": {"prompt": 1, "completion": 2},
                 "primary": {"prompt": 0.1, "completion": 0.2},
                 "backup": {"prompt": 0.5, "completion": 1}})");
}

env_map settings(const per_model_server& api, env_map extra) {
  extra["LLM_PROVIDER"] = "openai";
  extra["LLM_BASE_URL"] = api.server.base_url();
  extra["BG_AGENT_PRICES"] = "prices.json";
  return extra;
}

} // namespace

TEST_CASE("a model that says the request exceeds its context hands the "
          "task to the next model at once, not counted as a retry",
          "[e2e][fallback]") {
  per_model_server api([](const std::string& model) {
    if (model == "small-model")
      return raw_reply{raw_http_server::response(
        400, R"({"error": {"message": "This model's maximum context length )"
             R"(is 8192 tokens. However, you requested 9000 tokens.", )"
             R"("type": "invalid_request_error", )"
             R"("code": "context_length_exceeded"}})")};
    return ok();
  });
  temp_dir dir;
  write_prices(dir);
  std::vector<json> tasks;
  for (int i = 1; i <= 4; ++i) {
    auto t = make_task("c" + std::to_string(i), "summarize",
                       "A long text number " + std::to_string(i) + ".");
    t["model"] = "small-model";
    t["fallback_models"] = {"big-model"};
    tasks.push_back(t);
  }
  write_tasks(dir.path("tasks.jsonl"), tasks);
  // No retries at all: only a fallback that is not a counted retry can
  // complete these tasks.
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       settings(api, {{"BG_AGENT_MAX_RETRIES", "0"}}));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  for (auto& [id, row] : rows) {
    INFO(id);
    CHECK(row["state"] == "completed");
    CHECK(row["model"] == "big-model");
    CHECK(row["attempts"] == 2);
    // Charged at the model that answered: 100 x $1 + 10 x $2 per million.
    CHECK(row["cost_usd"].get<double>() == Approx(120 / 1e6));
  }
  CHECK(api.calls_to("small-model") == 4);
  CHECK(api.calls_to("big-model") == 4);
  int fell_back = 0;
  for (auto& e : audit_events(dir.path("bgagent-audit.jsonl"),
                              "task_retry_scheduled"))
    if (contains(e["detail"].get<std::string>(),
                 "falls back to model big-model at once: openai HTTP 400"))
      ++fell_back;
  CHECK(fell_back == 4);
}

TEST_CASE("a type's primary model that is down: once its circuit opens, "
          "each attempt goes to the fallback before any call, and every "
          "task completes",
          "[e2e][fallback]") {
  per_model_server api([](const std::string& model) {
    if (model == "primary")
      return raw_reply{raw_http_server::response(
        503, R"({"error": {"message": "overloaded"}})")};
    return ok();
  });
  temp_dir dir;
  write_prices(dir);
  write_file(dir.path("types.yaml"), R"(brief:
  prompt: "Summarize: {{input}}"
  schema:
    type: object
    required: [summary]
    properties: {summary: {type: string}}
  model: primary
  fallback_models: [backup]
)");
  std::vector<json> tasks;
  for (int i = 1; i <= 30; ++i)
    tasks.push_back(make_task("p" + std::to_string(i), "brief",
                              "Text " + std::to_string(i)));
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--types",
                        "types.yaml"},
                       dir.path(),
                       settings(api, {{"BG_AGENT_WORKERS", "2"},
                                      {"BG_AGENT_PROBE_SECONDS", "60"},
                                      {"BG_AGENT_RETRY_INITIAL", "0.1"},
                                      {"BG_AGENT_RETRY_MAX", "0.2"}}));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  REQUIRE(rows.size() == 30);
  for (auto& [id, row] : rows) {
    INFO(id);
    CHECK(row["state"] == "completed");
    CHECK(row["model"] == "backup");
  }
  // Five 503s in a row open it (no probe within the run); then no call
  // goes to the primary but the other worker's, already sent. Without the
  // fallback at begin, each task would try the primary first: 30 calls at
  // least.
  CHECK(api.calls_to("primary") >= 5);
  CHECK(api.calls_to("primary") <= 5 + 2);
  CHECK(api.calls_to("backup") == 30);
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "circuit_opened").size() == 1);
  CHECK(audit_events(audit, "task_fallback").size() >= 25);
}

TEST_CASE("with OpenRouter, fallback_models go as its models list, the "
          "reservation is at the dearest, and the model that answered is "
          "recorded and priced",
          "[e2e][fallback]") {
  std::mutex m;
  std::vector<json> bodies;
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET /v1/models ", 0) == 0)
      return raw_reply{raw_http_server::response(
        200, R"({"data": [)"
             R"({"id": "a/primary", "pricing": {"prompt": "0.000001", )"
             R"("completion": "0.000002"}},)"
             R"({"id": "b/backup", "pricing": {"prompt": "0.000003", )"
             R"("completion": "0.000004"}}]})")};
    {
      std::lock_guard<std::mutex> lock(m);
      bodies.push_back(json::parse(req.body, nullptr, false));
    }
    // OpenRouter routed it to the fallback.
    auto j = json::parse(raw_http_server::completion(
      R"({"summary": "Done."})", 1000, 100));
    j["model"] = "b/backup";
    return raw_reply{raw_http_server::response(200, j.dump())};
  });
  temp_dir dir;
  auto t = make_task("o1", "summarize", "Route me.");
  t["model"] = "a/primary";
  t["fallback_models"] = {"b/backup"};
  write_tasks(dir.path("tasks.jsonl"), {t});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_PROVIDER", "openrouter"},
                        {"OPENROUTER_API_KEY", "sk-or-v1-test"},
                        {"LLM_BASE_URL", server.base_url()}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  {
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(bodies.size() == 1);
    CHECK(bodies[0]["model"] == "a/primary");
    CHECK(bodies[0]["models"] == json::array({"a/primary", "b/backup"}));
  }
  auto row = results_by_id(dir.path()).at("o1");
  CHECK(row["model"] == "b/backup");
  CHECK(row["cost_usd"].get<double>() == Approx((1000 * 3 + 100 * 4) / 1e6));
  // task_started names the model asked for; the ledger the one that
  // answered.
  auto started = audit_events(dir.path("bgagent-audit.jsonl"),
                              "task_started");
  REQUIRE(started.size() == 1);
  CHECK(contains(started[0]["detail"].get<std::string>(),
                 "openrouter/a/primary"));
}

TEST_CASE("a fallback model without a price stops the run before any call, "
          "naming it",
          "[e2e][fallback]") {
  per_model_server api([](const std::string&) { return ok(); });
  temp_dir dir;
  write_prices(dir);
  auto t = make_task("u1", "summarize", "Text.");
  t["model"] = "primary";
  t["fallback_models"] = {"mystery-model-9"};
  write_tasks(dir.path("tasks.jsonl"), {t});
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       settings(api, {}));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "mystery-model-9"));
  CHECK(api.calls_to("primary") == 0);
}
