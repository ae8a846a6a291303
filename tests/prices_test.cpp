// Prices: where each model's price comes from (the prices file, the
// provider's list, BG_AGENT_PRICE_*, the built-in table, in that order),
// the prices file's errors, `bgagent models`, and a run that refuses a
// model without a known price before making any call.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sys/stat.h>
#include <future>

#include <nlohmann/json.hpp>

#include "providers/http_provider.hpp"
#include "providers/openrouter_models.hpp"
#include "providers/price_list.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/support/unit_task.hpp"
#include "persistence/store.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

std::string load_error(const std::string& text) {
  temp_dir dir;
  write_file(dir.path("prices.yaml"), text);
  price_list p;
  try {
    p.load_file(dir.path("prices.yaml"));
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    // Without the temporary directory, for readable checks.
    return what.substr(what.find("prices.yaml"));
  }
  return "loaded";
}

} // namespace

TEST_CASE("prices come from the file, the provider's list, the environment "
          "and the built-in table, in that order",
          "[prices]") {
  price_list p;
  // Built-in.
  auto mini = p.find("gpt-4o-mini");
  REQUIRE(mini);
  CHECK(mini->source == price_source::built_in);
  CHECK(mini->price.prompt_per_million == Approx(0.15));
  // Unknown: no price, never a guess.
  CHECK_FALSE(p.find("mystery-1"));

  // One figure from the environment replaces the configured model's only.
  p.set_environment(1.0, -1, "gpt-4o-mini");
  mini = p.find("gpt-4o-mini");
  CHECK(mini->source == price_source::environment);
  CHECK(mini->price.prompt_per_million == Approx(1.0));
  CHECK(mini->price.completion_per_million == Approx(0.60));
  CHECK_FALSE(p.find("mystery-1"));
  // Both: the catch-all for models nothing else prices, but never another
  // model the table knows (a free local model must not make gpt-4o free).
  p.set_environment(0, 0, "llama3.2");
  CHECK(p.find("llama3.2")->price.prompt_per_million == 0);
  CHECK(p.find("llama3.2")->source == price_source::environment);
  auto gpt4o = p.find("gpt-4o");
  CHECK(gpt4o->source == price_source::built_in);
  CHECK(gpt4o->price.prompt_per_million == Approx(2.50));
  p.set_environment(1.0, 2.0, "gpt-4o-mini");
  auto any = p.find("mystery-1");
  REQUIRE(any);
  CHECK(any->source == price_source::environment);
  CHECK(any->price.completion_per_million == Approx(2.0));

  // The provider's list wins over the environment.
  p.set_provider_list({{"mystery-1", model_price{5, 6}}},
                      "http://127.0.0.1/api/v1/models");
  CHECK(p.find("mystery-1")->source == price_source::provider_list);
  CHECK(p.find("mystery-1")->price.prompt_per_million == Approx(5));

  // The file wins over everything.
  temp_dir dir;
  write_file(dir.path("prices.yaml"),
             "mystery-1: {prompt: 0.5, completion: 0.75}\n"
             "gpt-4o-mini:\n  prompt: 0\n  completion: 0\n"
             "  batch: {prompt: 0, completion: 0}\n");
  p.load_file(dir.path("prices.yaml"));
  CHECK(p.find("mystery-1")->source == price_source::prices_file);
  CHECK(p.find("mystery-1")->price.completion_per_million == Approx(0.75));
  CHECK(p.find("mystery-1")->price.batch_prompt_per_million < 0);
  auto free_mini = p.find("gpt-4o-mini");
  CHECK(free_mini->price.prompt_per_million == 0);
  CHECK(free_mini->price.batch_completion_per_million == 0);

  // all(): every model once, with the catch-all as "*".
  auto all = p.all();
  std::map<std::string, price_source> sources;
  for (auto& [model, e] : all)
    sources[model] = e.source;
  CHECK(sources.at("mystery-1") == price_source::prices_file);
  CHECK(sources.at("gpt-4o-mini") == price_source::prices_file);
  CHECK(sources.at("gpt-4o") == price_source::built_in);
  CHECK(sources.at("*") == price_source::environment);
}

TEST_CASE("a prices file in JSON is read as well", "[prices]") {
  temp_dir dir;
  write_file(dir.path("prices.json"),
             R"({"local/llama": {"prompt": 0, "completion": 0},)"
             R"( "o1-pro": {"prompt": 150, "completion": 600,)"
             R"( "batch": {"prompt": 75, "completion": 300}}})");
  price_list p;
  p.load_file(dir.path("prices.json"));
  CHECK(p.find("local/llama")->price.completion_per_million == 0);
  CHECK(p.find("o1-pro")->price.batch_completion_per_million == Approx(300));
}

TEST_CASE("a broken prices file is one line naming the file, line and field",
          "[prices]") {
  CHECK(load_error("x:\n  prompt: 1\n  completion: abc\n") ==
        "prices.yaml line 3: model \"x\", completion: \"abc\" is not a "
        "number (USD per million tokens)");
  CHECK(load_error("x: {prompt: -1, completion: 2}\n") ==
        "prices.yaml line 1: model \"x\", prompt: -1 is not between 0 and "
        "100000 (USD per million tokens)");
  CHECK(load_error("x: {prompt: 1, completion: .nan}\n") ==
        "prices.yaml line 1: model \"x\", completion: \".nan\" is not a "
        "number (USD per million tokens)");
  CHECK(load_error("x:\n  prompt: 1\n  complete: 2\n") ==
        "prices.yaml line 3: model \"x\": unknown field \"complete\" (known: "
        "prompt, completion, cached_prompt, reasoning, batch)");
  CHECK(load_error("x: {prompt: 1, completion: 2, cached_prompt: abc}\n") ==
        "prices.yaml line 1: model \"x\", cached_prompt: \"abc\" is not a "
        "number (USD per million tokens)");
  CHECK(load_error("x: {prompt: 1}\n") ==
        "prices.yaml line 1: model \"x\": needs completion (USD per million "
        "tokens)");
  CHECK(load_error("x: {prompt: 1, completion: 2, batch: {prompt: 1}}\n") ==
        "prices.yaml line 1: model \"x\" batch: needs completion (USD per "
        "million tokens)");
  CHECK(load_error("x: {prompt: 1, completion: 2, batch: {prompt: 1, "
                   "completion: 1, cached: 0}}\n") ==
        "prices.yaml line 1: model \"x\" batch: unknown field \"cached\" "
        "(known: prompt, completion)");
  CHECK(load_error("x: {prompt: 1, completion: 2}\nx: {prompt: 1, "
                   "completion: 3}\n") ==
        "prices.yaml line 2: model \"x\" is given twice");
  CHECK(load_error("x: 3\n") ==
        "prices.yaml line 1: model \"x\": expected a mapping with prompt and "
        "completion (USD per million tokens)");
  CHECK(load_error("- x\n- y\n") ==
        "prices.yaml: a prices file maps model names to {prompt, "
        "completion} in USD per million tokens");
  CHECK(load_error("") == "prices.yaml: no prices in the file");
  // Plain decimals only; nothing rounds silently to 0 or infinity.
  for (auto* bad : {"0x10", "+1", "1e-400", "1e400", "inf"})
    CHECK(load_error(std::string("x: {prompt: \"") + bad +
                     "\", completion: 1}\n") ==
          std::string("prices.yaml line 1: model \"x\", prompt: \"") + bad +
            "\" is not a number (USD per million tokens)");
  CHECK(load_error("x: {prompt: 1, completion: 2, prompt: 100}\n") ==
        "prices.yaml line 1: model \"x\": field \"prompt\" is given twice");
  CHECK(contains(load_error("x: {prompt: 1\n"),
                 "not valid YAML or JSON"));
}

TEST_CASE("bgagent models lists the prices in force and their sources",
          "[e2e][prices]") {
  temp_dir dir;
  write_file(dir.path("prices.yaml"),
             "local/llama: {prompt: 0, completion: 0}\n"
             "o-think: {prompt: 1, completion: 4, cached_prompt: 0.25, "
             "reasoning: 4}\n"
             "gpt-4o: {prompt: 2, completion: 8, batch: {prompt: 1, "
             "completion: 4}}\n");
  env_map env{{"BG_AGENT_PRICES", "prices.yaml"},
              {"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", "http://127.0.0.1:9/v1"},
              {"MODEL", "local/llama"}};
  auto r = run_bgagent({"models", "--json"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::map<std::string, json> by_model;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line);
    by_model[j["model"]] = j;
  }
  CHECK(by_model.at("local/llama")["source"] == "prices file");
  CHECK(by_model.at("local/llama")["configured"] == true);
  CHECK(by_model.at("local/llama")["file"] == "prices.yaml");
  CHECK(by_model.at("gpt-4o")["prompt_per_million"] == 2.0);
  CHECK(by_model.at("gpt-4o")["batch_completion_per_million"] == 4.0);
  CHECK(by_model.at("o-think")["cached_prompt_per_million"] == 0.25);
  CHECK(by_model.at("o-think")["reasoning_per_million"] == 4.0);
  CHECK(by_model.at("gpt-4o-mini")["source"] == "built-in");
  CHECK(by_model.at("gpt-4o-mini")["batch_prompt_per_million"] == 0.075);
  CHECK(by_model.at("gpt-4o-mini")["cached_prompt_per_million"] == 0.075);
  CHECK(by_model.at("local/llama")["cached_prompt_per_million"].is_null());

  auto text = run_bgagent({"models"}, dir.path(), env);
  REQUIRE(text.exit_code == 0);
  CHECK(contains(text.out, "MODEL local/llama: $0 / $0 per million prompt / "
                           "completion tokens (prices file)"));

  // Not a regular file: refused before it is read.
  env["BG_AGENT_PRICES"] = "/dev/zero";
  auto dev = run_bgagent({"models"}, dir.path(), env);
  CHECK(dev.exit_code == 2);
  CHECK(contains(dev.err, "/dev/zero: not a regular file"));
  // A FIFO: refused, never waited on for a writer.
  REQUIRE(::mkfifo(dir.path("prices.fifo").c_str(), 0600) == 0);
  env["BG_AGENT_PRICES"] = "prices.fifo";
  auto fifo = run_bgagent({"models"}, dir.path(), env, 20);
  CHECK(fifo.exit_code == 2);
  CHECK(contains(fifo.err, "prices.fifo: not a regular file"));

  // A file that cannot be read: the variable, and exit 2.
  env["BG_AGENT_PRICES"] = "missing.yaml";
  auto bad = run_bgagent({"models"}, dir.path(), env);
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "BG_AGENT_PRICES=missing.yaml (environment): "
                          "cannot read the file"));
}

TEST_CASE("a run refuses a model without a known price before any call, "
          "and runs it at the prices file's price",
          "[e2e][prices]") {
  temp_dir dir;
  raw_http_server server([](const raw_request&) {
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "Done."})", 1000,
                                       500))};
  });
  auto tasks = make_tasks(3, "p");
  auto own = make_task("own", "summarize", "A task with its own model.");
  own["model"] = "vendor/secret-model";
  tasks.push_back(own);
  write_tasks(dir.path("tasks.jsonl"), tasks);
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", server.base_url()},
              {"MODEL", "local/llama"},
              {"BG_AGENT_COST_BUDGET", "1"}};

  auto refused = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                             env);
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.err, "no price is known for model \"local/llama\""));
  CHECK(server.requests() == 0);
  auto st = status_json(dir.path());
  CHECK(st["tasks"]["pending"] == 4);

  // The configured model priced, the task's own model not yet.
  write_file(dir.path("prices.yaml"),
             "local/llama: {prompt: 2, completion: 8}\n");
  env["BG_AGENT_PRICES"] = "prices.yaml";
  auto still = run_bgagent({"run"}, dir.path(), env);
  CHECK(still.exit_code == 2);
  CHECK(contains(still.err,
                 "no price is known for model \"vendor/secret-model\""));
  CHECK(contains(still.err, "the prices file prices.yaml"));
  CHECK(server.requests() == 0);

  write_file(dir.path("prices.yaml"),
             "local/llama: {prompt: 2, completion: 8}\n"
             "vendor/secret-model: {prompt: 20, completion: 80}\n");
  auto ran = run_bgagent({"run"}, dir.path(), env);
  INFO(ran.err);
  REQUIRE(ran.exit_code == 0);
  CHECK(server.requests() == 4);
  // No usage.cost from this server: priced from the file.
  auto results = results_by_id(dir.path());
  REQUIRE(results.size() == 4);
  CHECK(results.at("p1")["cost_usd"].get<double>() ==
        Approx((1000 * 2 + 500 * 8) / 1e6));
  CHECK(results.at("own")["cost_usd"].get<double>() ==
        Approx((1000 * 20 + 500 * 80) / 1e6));
  CHECK(results.at("own")["model"] == "vendor/secret-model");
}

TEST_CASE("a node without a price for a task's model fails the attempt "
          "permanently and makes no call",
          "[prices][http]") {
  raw_http_server server([](const raw_request&) {
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "x"})"))};
  });
  provider_settings s;
  s.name = "openai";
  s.base_url = server.base_url();
  s.model = "gpt-4o-mini";
  auto prov = make_http_provider(s);
  CHECK(prov->knows_price_of(""));
  CHECK_FALSE(prov->knows_price_of("mystery-1"));
  CHECK(prov->price_of("mystery-1").prompt_per_million == 0);
  llm_request req;
  req.task_id = "t1";
  req.type = "summarize";
  req.input = "x";
  req.prompt = "x";
  req.max_tokens = 10;
  req.model = "mystery-1";
  std::promise<call_outcome> got;
  prov->start(req, [&](call_outcome out) { got.set_value(std::move(out)); });
  auto out = got.get_future().get();
  CHECK_FALSE(out.ok);
  CHECK(static_cast<error_kind>(out.kind) == error_kind::permanent);
  CHECK(contains(out.error, "no price is known for model \"mystery-1\""));
  CHECK(out.model == "mystery-1");
  CHECK(server.requests() == 0);
}

TEST_CASE("OpenRouter's model list is read in USD per million tokens, "
          "leaving out models without a usable price",
          "[prices]") {
  auto list = parse_openrouter_models(R"({"data": [
    {"id": "google/gemini-2.5-flash", "pricing": {"prompt": "0.0000003",
     "completion": "0.0000025", "request": "0", "image": "0.001238"}},
    {"id": "openrouter/auto", "pricing": {"prompt": "-1",
     "completion": "-1"}},
    {"id": "free/model:free", "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "no/pricing"},
    {"id": "bad/price", "pricing": {"prompt": "abc", "completion": "0"}},
    {"id": "huge/price", "pricing": {"prompt": "1", "completion": "0"}},
    {"id": "number/price", "pricing": {"prompt": 0.000001,
     "completion": 0.000002}},
    "not an object"
  ]})");
  CHECK(list.size() == 3);
  CHECK(list.at("google/gemini-2.5-flash").prompt_per_million ==
        Approx(0.30));
  CHECK(list.at("google/gemini-2.5-flash").completion_per_million ==
        Approx(2.50));
  CHECK(list.at("free/model:free").completion_per_million == 0);
  CHECK(list.at("number/price").completion_per_million == Approx(2));
  CHECK(list.count("openrouter/auto") == 0);
  CHECK_THROWS_AS(parse_openrouter_models("<html>"), std::invalid_argument);
  CHECK_THROWS_AS(parse_openrouter_models(R"({"data": 3})"),
                  std::invalid_argument);
  // Through the store's compact form and back.
  auto again = price_map_from_json(price_map_to_json(list));
  CHECK(again.size() == 3);
  CHECK(again.at("number/price").prompt_per_million == Approx(1));
}

TEST_CASE("with OpenRouter, prices come from its model list, kept in the "
          "store for a day and used when it cannot be fetched",
          "[e2e][prices]") {
  temp_dir dir;
  std::atomic<int> list_requests{0}, calls{0};
  std::atomic<bool> list_down{false};
  std::string list_auth;
  std::mutex m;
  raw_http_server server([&](const raw_request& req) {
    if (req.head.rfind("GET /v1/models ", 0) == 0) {
      ++list_requests;
      {
        std::lock_guard<std::mutex> lock(m);
        auto at = req.head.find("Authorization: ");
        if (at != std::string::npos)
          list_auth = req.head.substr(at, req.head.find("\r\n", at) - at);
      }
      if (list_down)
        return raw_reply{raw_http_server::response(500, "{}")};
      return raw_reply{raw_http_server::response(
        200, R"({"data": [{"id": "vendor/model-x", "pricing": )"
             R"({"prompt": "0.000002", "completion": "0.000008"}}]})")};
    }
    ++calls;
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "Done."})", 1000,
                                       500))};
  });
  env_map env{{"LLM_PROVIDER", "openrouter"},
              {"OPENROUTER_API_KEY", "sk-or-v1-test"},
              {"LLM_BASE_URL", server.base_url()},
              {"MODEL", "vendor/model-x"}};
  write_tasks(dir.path("a.jsonl"), make_tasks(2, "a"));
  auto first = run_bgagent({"run", "--tasks", "a.jsonl"}, dir.path(), env);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(list_requests == 1);
  CHECK(calls == 2);
  {
    std::lock_guard<std::mutex> lock(m);
    CHECK(list_auth == "Authorization: Bearer sk-or-v1-test");
  }
  // No usage.cost from this server: priced from the list.
  auto results = results_by_id(dir.path());
  CHECK(results.at("a1")["cost_usd"].get<double>() ==
        Approx((1000 * 2 + 500 * 8) / 1e6));

  // Within the day the store's copy is used: the list is not asked again.
  list_down = true;
  write_tasks(dir.path("b.jsonl"), make_tasks(1, "b"));
  auto second = run_bgagent({"run", "--tasks", "b.jsonl"}, dir.path(), env);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(list_requests == 1);
  auto listed = run_bgagent({"models", "--json"}, dir.path(), env);
  REQUIRE(listed.exit_code == 0);
  CHECK(contains(listed.out, R"("model":"vendor/model-x")"));
  CHECK(contains(listed.out, R"("source":"provider list")"));
  CHECK(list_requests == 1);

  // A copy older than a day is fetched again; when that fails, the old copy
  // is used, saying so.
  REQUIRE(sql_exec(dir.path("bgagent.db"),
           "UPDATE meta SET value = json_set(value, '$.fetched_at', "
           "CAST(strftime('%s', 'now') AS INTEGER) - 3 * 86400) WHERE key "
           "LIKE 'prices %'"));
  write_tasks(dir.path("c.jsonl"), make_tasks(1, "c"));
  auto third = run_bgagent({"run", "--tasks", "c.jsonl"}, dir.path(), env);
  INFO(third.err);
  REQUIRE(third.exit_code == 0);
  CHECK(list_requests == 2);
  CHECK(contains(third.err, "HTTP 500; using the copy fetched 3 days ago"));
  CHECK(results_by_id(dir.path()).at("c1")["cost_usd"].get<double>() ==
        Approx((1000 * 2 + 500 * 8) / 1e6));

  // A new store, the list down and no copy: the model has no price, and
  // the run refuses it before any call.
  temp_dir other;
  write_tasks(other.path("a.jsonl"), make_tasks(1, "a"));
  int before = calls;
  auto refused = run_bgagent({"run", "--tasks", "a.jsonl"}, other.path(), env);
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.err, "models are priced only by BG_AGENT_PRICES"));
  CHECK(contains(refused.err, "no price is known for model \"vendor/model-x\""));
  CHECK(calls == before);
}

TEST_CASE("the models checked before a run are those of the pending, "
          "retrying and interrupted tasks",
          "[prices][store]") {
  temp_dir dir;
  store db(dir.path("s.db"), store::open_mode::create_if_missing);
  auto with_model = [](const std::string& id, const std::string& model) {
    auto t = unit_task(id);
    t.model = model;
    return t;
  };
  REQUIRE(db.submit({with_model("p", "m-pending"),
                     with_model("r", "m-running"),
                     with_model("d", "m-done"), unit_task("plain")})
            .error.empty());
  REQUIRE(db.mark_running("r", 1));
  REQUIRE(db.mark_running("d", 1));
  call_outcome out;
  out.ok = true;
  out.result = "{}";
  REQUIRE(db.mark_completed("d", 1, out, usage{}, audit_event{}));
  // "" is the run's MODEL (the plain task names none, nor does its type).
  CHECK(db.runnable_models() ==
        std::vector<std::string>{"", "m-pending", "m-running"});
}

TEST_CASE("a run records each task's cached prompt and reasoning tokens and "
          "charges them at the prices file's cached_prompt and reasoning "
          "prices",
          "[e2e][prices]") {
  raw_http_server server([](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto j = json::parse(
      raw_http_server::completion(R"({"summary": "Done."})", 1000, 200));
    j["usage"]["prompt_tokens_details"] = {{"cached_tokens", 600}};
    j["usage"]["completion_tokens_details"] = {{"reasoning_tokens", 120}};
    return raw_reply{raw_http_server::response(200, j.dump())};
  });
  temp_dir dir;
  write_file(dir.path("prices.yaml"),
             "o-think: {prompt: 1, completion: 4, cached_prompt: 0.25, "
             "reasoning: 8}\n");
  write_tasks(dir.path("tasks.jsonl"), make_tasks(2, "c"));
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(),
                       {{"LLM_PROVIDER", "openai"},
                        {"LLM_BASE_URL", server.base_url()},
                        {"MODEL", "o-think"},
                        {"BG_AGENT_PRICES", "prices.yaml"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto row = results_by_id(dir.path()).at("c1");
  CHECK(row["cached_tokens"] == 600);
  CHECK(row["reasoning_tokens"] == 120);
  CHECK(row["prompt_tokens"] == 1000);
  CHECK(row["cost_usd"].get<double>() ==
        Approx((400 * 1 + 600 * 0.25 + 80 * 4 + 120 * 8) / 1e6));
}
