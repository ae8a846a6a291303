// A user's own task types, run like a user runs them: the example types
// file and task files on the offline provider (results satisfy each type's
// schema), every bad task line refused with one line and nothing stored,
// and the requests an OpenAI-compatible server (aimock) receives: the
// rendered prompts, the type's max_tokens, temperature and model, a task's
// own model, and a schema-invalid answer quarantined.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/aimock.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"
#include "types/type_registry.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

const std::string examples = std::string(BGAGENT_SOURCE_DIR) + "/examples/";
const std::string types_file = examples + "bgagent-types.yaml";

} // namespace

TEST_CASE("the example types run on the offline provider and every result "
          "satisfies its type's schema, the same on every run",
          "[e2e][types]") {
  auto registry = type_registry::builtin();
  registry.load_file(types_file);
  std::map<std::string, json> first;
  for (int round = 0; round < 2; ++round) {
    temp_dir dir;
    for (auto* file : {"tickets.jsonl", "translations.jsonl",
                       "invoices.jsonl"}) {
      auto r = run_bgagent({"run", "--types", types_file, "--tasks",
                            examples + file},
                           dir.path());
      INFO(file << ": " << r.err);
      REQUIRE(r.exit_code == 0);
    }
    auto rows = results_by_id(dir.path());
    REQUIRE(rows.size() == 10);
    for (auto& [id, row] : rows) {
      INFO(id);
      CHECK(row["state"] == "completed");
      CHECK(row["provider"] == "offline");
      auto* type = registry.find(row["type"].get<std::string>());
      REQUIRE(type);
      CHECK(type->compiled->violations(row["result"]) == "");
      if (round == 0)
        first[id] = row["result"];
      else
        CHECK(row["result"] == first[id]);
    }
    // A resumed run needs no types file: the definitions are stored.
    auto again = run_bgagent({"run"}, dir.path());
    CHECK(again.exit_code == 0);
  }
}

TEST_CASE("a bad task line for a user's type is one line naming the file, "
          "line and field, exit 2, nothing stored",
          "[e2e][types]") {
  temp_dir dir;
  write_file(dir.path("bgagent-types.yaml"),
             "classify:\n  prompt: \"{{tier}}: {{input}}\"\n  schema: "
             "{type: object, required: [label], properties: {label: {enum: "
             "[a, b]}}}\n");
  struct bad_case {
    std::string line, error;
  };
  std::vector<bad_case> cases{
    {R"({"type": "classify", "input": "x", "vars": {"tier": "gold"}, "prompt": "p"})",
     "tasks.jsonl line 2: unknown field \"prompt\" (known: id, type, input, "
     "vars, idempotency_key, max_tokens, model, fallback_models, priority, "
     "tags)"},
    {R"({"type": "classify", "input": "x", "vars": {"tier": "gold"}, "fallback_models": ["m", "m"]})",
     "tasks.jsonl line 2: field \"fallback_models\" must be a list of 1 to "
     "8 different model names of 1 to 200 characters"},
    {R"({"type": "classify", "input": "x"})",
     "tasks.jsonl line 2: type \"classify\" needs vars.tier (its prompt uses "
     "{{tier}})"},
    {R"({"type": "classify", "input": "x", "vars": {"tier": 3}})",
     "tasks.jsonl line 2: vars.tier must be a string"},
    {R"({"type": "classify", "input": "x", "vars": ["gold"]})",
     "tasks.jsonl line 2: field \"vars\" must be an object of strings"},
    {R"({"type": "clasify", "input": "x"})",
     "tasks.jsonl line 2: unknown task type \"clasify\" (known: "
     "analyze_sentiment, chat, classify, extract_entities, summarize)"},
    {R"({"type": "classify", "input": "x", "vars": {"tier": "g"}, "model": ""})",
     "tasks.jsonl line 2: field \"model\" must be a model name of 1 to 200 "
     "characters"},
    {R"({"type": "chat", "input": "x"})",
     "tasks.jsonl line 2: type \"chat\" takes an OpenAI Batch line "
     "(custom_id, method, url, body), not input"},
  };
  for (auto& c : cases) {
    INFO(c.line);
    write_file(dir.path("tasks.jsonl"),
               R"({"type": "classify", "input": "fine", "vars": {"tier": "gold"}})"
               "\n" + c.line + "\n");
    for (auto* cmd : {"run", "submit"}) {
      auto r = std::string(cmd) == "run"
                 ? run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path())
                 : run_bgagent({"submit", "tasks.jsonl"}, dir.path());
      CHECK(r.exit_code == 2);
      REQUIRE(lines_of(r.err).size() == 1);
      CHECK(r.err == "bgagent: " + c.error + "\n");
    }
    CHECK_FALSE(exists(dir.path("bgagent.db")));
  }
  // The good line alone runs, offline, to a result of the schema.
  write_file(dir.path("tasks.jsonl"),
             R"({"id": "c1", "type": "classify", "input": "fine", "vars": {"tier": "gold"}})"
             "\n");
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto label = results_by_id(dir.path())["c1"]["result"]["label"];
  CHECK((label == "a" || label == "b"));
}

TEST_CASE("a user's type reaches an OpenAI-compatible server as rendered "
          "prompts with the type's max_tokens, temperature, model and "
          "schema: an invalid answer is re-asked with the validation error "
          "and completes, an always-invalid one is quarantined with the raw "
          "answer kept",
          "[e2e][types][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("custom_types.json")}, dir.path());
  write_file(dir.path("types.yaml"),
             "route:\n"
             "  system: \"Route tickets for {{shop}}. JSON only.\"\n"
             "  prompt: \"Tier: {{tier}}\\nTicket: {{input}}\"\n"
             "  schema:\n"
             "    type: object\n"
             "    required: [queue, urgency, summary]\n"
             "    properties:\n"
             "      queue: {enum: [billing, shipping, other]}\n"
             "      urgency: {type: integer, minimum: 1, maximum: 5}\n"
             "      summary: {type: string}\n"
             "    additionalProperties: false\n"
             "  max_tokens: 120\n"
             "  temperature: 0.3\n"
             "  model: type-model-1\n");
  write_tasks(dir.path("tasks.jsonl"),
              {json{{"id", "ok"},
                    {"type", "route"},
                    {"input", "Charged twice [ticket-ok]"},
                    {"vars", {{"shop", "Northwind"}, {"tier", "gold"}}}},
               json{{"id", "own-model"},
                    {"type", "route"},
                    {"input", "Where is it? [ticket-model]"},
                    {"vars", {{"shop", "Northwind"}, {"tier", "standard"}}},
                    {"model", "task-model-2"},
                    {"max_tokens", 50}},
               json{{"id", "bad"},
                    {"type", "route"},
                    {"input", "Angry [ticket-bad]"},
                    {"vars", {{"shop", "Hopeless"}, {"tier", "gold"}}}},
               json{{"id", "fix"},
                    {"type", "route"},
                    {"input", "Refund? [ticket-fix]"},
                    {"vars", {{"shop", "Fixable"}, {"tier", "gold"}}}}});
  // Models unknown to the built-in table need a price to run.
  write_file(dir.path("prices.yaml"),
             "type-model-1: {prompt: 1, completion: 2}\n"
             "task-model-2: {prompt: 1, completion: 2}\n");
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", mock.openai_base()},
              {"BG_AGENT_PRICES", "prices.yaml"},
              {"BG_AGENT_RETRY_INITIAL", "0.1"},
              {"BG_AGENT_RETRY_MAX", "0.2"},
              {"BG_AGENT_MAX_RETRIES", "1"}};
  auto r = run_bgagent({"run", "--types", "types.yaml", "--tasks",
                        "tasks.jsonl"},
                       dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto journal = mock.journal();
  std::map<std::string, std::vector<json>> by_marker;
  for (auto& e : journal) {
    auto& msgs = e["body"]["messages"];
    REQUIRE((msgs.size() == 2 || msgs.size() == 4)); // 4: a repair turn
    for (auto* m : {"[ticket-ok]", "[ticket-model]", "[ticket-bad]",
                    "[ticket-fix]"})
      if (contains(msgs[1]["content"].get<std::string>(), m))
        by_marker[m].push_back(e["body"]);
  }
  REQUIRE(by_marker["[ticket-ok]"].size() == 1);
  auto ok = by_marker["[ticket-ok]"][0];
  CHECK(ok["messages"][0] ==
        json({{"role", "system"},
              {"content", "Route tickets for Northwind. JSON only."}}));
  CHECK(ok["messages"][1] ==
        json({{"role", "user"},
              {"content", "Tier: gold\nTicket: Charged twice [ticket-ok]"}}));
  CHECK(ok["max_tokens"] == 120);
  CHECK(ok["temperature"] == Approx(0.3));
  CHECK(ok["model"] == "type-model-1");
  // The type's schema, as response_format (BG_AGENT_RESPONSE_FORMAT's
  // default).
  CHECK(ok["response_format"]["type"] == "json_schema");
  CHECK(ok["response_format"]["json_schema"]["name"] == "route");
  CHECK(ok["response_format"]["json_schema"]["schema"]["required"] ==
        json::array({"queue", "urgency", "summary"}));
  REQUIRE(by_marker["[ticket-model]"].size() == 1);
  CHECK(by_marker["[ticket-model]"][0]["model"] == "task-model-2");
  CHECK(by_marker["[ticket-model]"][0]["max_tokens"] == 50);
  // An invalid answer is shown back to the model with the violations: the
  // second request is the first one plus the answer and the repair
  // instruction.
  REQUIRE(by_marker["[ticket-fix]"].size() == 2);
  auto first = by_marker["[ticket-fix]"][0];
  auto repair = by_marker["[ticket-fix]"][1];
  REQUIRE(first["messages"].size() == 2);
  REQUIRE(repair["messages"].size() == 4);
  CHECK(repair["messages"][0] == first["messages"][0]);
  CHECK(repair["messages"][1] == first["messages"][1]);
  CHECK(repair["messages"][2] ==
        json({{"role", "assistant"},
              {"content", "Sure! {\"queue\": \"refunds\", \"urgency\": 2, "
                          "\"summary\": \"x\"}"}}));
  CHECK(repair["messages"][3]["role"] == "user");
  auto instruction = repair["messages"][3]["content"].get<std::string>();
  CHECK(contains(instruction, "did not satisfy the required JSON Schema"));
  CHECK(contains(instruction, "/queue"));
  // The always-invalid answer: asked twice (1 retry, a repair turn), then
  // quarantined with the violations named and the raw answer kept.
  CHECK(by_marker["[ticket-bad]"].size() == 2);
  auto rows = results_by_id(dir.path(), env);
  CHECK(rows["ok"]["state"] == "completed");
  CHECK(rows["ok"]["result"] ==
        json({{"queue", "billing"},
              {"urgency", 2},
              {"summary", "Charged twice; wants a refund."}}));
  CHECK(rows["ok"]["model"] == "type-model-1");
  CHECK(rows["own-model"]["state"] == "completed");
  CHECK(rows["own-model"]["model"] == "task-model-2");
  CHECK(rows["bad"]["state"] == "quarantined");
  auto err = rows["bad"]["error"].get<std::string>();
  CHECK(contains(err, "does not match the schema"));
  CHECK(contains(err, "/queue"));
  CHECK(rows["bad"]["raw_answer"] ==
        "{\"queue\": \"complaints\", \"urgency\": 9, \"summary\": "
        "\"Angry.\"}");
  CHECK(rows["fix"]["state"] == "completed");
  CHECK(rows["fix"]["attempts"] == 2);
  CHECK(rows["fix"]["result"] ==
        json({{"queue", "other"},
              {"urgency", 1},
              {"summary", "Fixed on the second try."}}));
  CHECK(rows["fix"]["raw_answer"].is_null());
  CHECK(rows["ok"]["raw_answer"].is_null());
  // Both attempts' usage is charged: 75 + 110 tokens.
  CHECK(rows["fix"]["prompt_tokens"] == 150);
  CHECK(rows["fix"]["completion_tokens"] == 35);
}
