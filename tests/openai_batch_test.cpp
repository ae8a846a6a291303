// OpenAI Batch files in and out, run like a user: a file of {custom_id,
// method, url, body} lines runs as `chat` tasks whose bodies reach the
// server as they are (model and max_tokens added only when absent), and
// `results --format openai-batch` writes the OpenAI Batch output format
// that round-trips: the same custom_ids, the provider's whole answers, and
// errors for the quarantined. Bad lines are one error line, exit 2,
// nothing stored.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/aimock.hpp"
#include "types/openai_batch.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

json batch_line(const std::string& id, json body) {
  return {{"custom_id", id},
          {"method", "POST"},
          {"url", "/v1/chat/completions"},
          {"body", std::move(body)}};
}

json user(const std::string& text) {
  return json::array({{{"role", "user"}, {"content", text}}});
}

std::map<std::string, json> output_by_id(const std::string& text) {
  std::map<std::string, json> out;
  for (auto& line : lines_of(text)) {
    auto j = json::parse(line);
    out[j["custom_id"].get<std::string>()] = j;
  }
  return out;
}

} // namespace

TEST_CASE("an OpenAI Batch file of 20 lines runs against an OpenAI-"
          "compatible server with each request's messages equal to the "
          "line's, and results --format openai-batch round-trips",
          "[e2e][batch-format][http]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({fixture_path("openai_batch.json")}, dir.path());
  std::vector<json> lines;
  for (int i = 1; i <= 18; ++i) {
    auto id = "req-" + std::to_string(i);
    json messages = json::array(
      {{{"role", "system"}, {"content", "You answer briefly."}},
       {{"role", "user"},
        {"content", "Question " + std::to_string(i) +
                      (i % 2 ? " [odd]" : " [even]")}}});
    json body{{"messages", messages}, {"temperature", 0.5}};
    if (i == 1)
      body["model"] = "gpt-4o"; // else MODEL
    if (i == 2)
      body["max_tokens"] = 77;
    if (i == 3)
      body["max_completion_tokens"] = 55;
    lines.push_back(batch_line(id, body));
  }
  // The answer must satisfy the line's response_format schema: it does.
  json schema{{"type", "object"},
              {"required", {"summary"}},
              {"properties", {{"summary", {{"type", "string"}}}}}};
  lines.push_back(batch_line(
    "req-19",
    {{"messages", user("Summarize this [schema-ok]")},
     {"response_format",
      {{"type", "json_schema"},
       {"json_schema", {{"name", "s"}, {"schema", schema}}}}}}));
  // It never does: re-asked once with the error, then quarantined.
  lines.push_back(batch_line(
    "req-20",
    {{"messages", user("Summarize that [never-json]")},
     {"response_format",
      {{"type", "json_schema"},
       {"json_schema", {{"name", "s"}, {"schema", schema}}}}}}));
  write_tasks(dir.path("batch.jsonl"), lines);
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", mock.openai_base()},
              {"MODEL", "gpt-4o-mini"},
              {"BG_AGENT_MAX_RETRIES", "1"},
              {"BG_AGENT_RETRY_INITIAL", "0.1"},
              {"BG_AGENT_RETRY_MAX", "0.2"}};
  auto r = run_bgagent({"run", "--tasks", "batch.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  // What the server received: each line's body, with model and max_tokens
  // only added when the line had none.
  std::map<std::string, std::vector<json>> sent; // by first user message
  for (auto& e : mock.journal()) {
    auto& body = e["body"];
    for (auto& m : body["messages"])
      if (m["role"] == "user") {
        sent[m["content"].get<std::string>()].push_back(body);
        break;
      }
  }
  for (int i = 1; i <= 18; ++i) {
    auto& line = lines[static_cast<size_t>(i - 1)];
    auto& msgs = line["body"]["messages"];
    auto key = msgs[1]["content"].get<std::string>();
    INFO(line.dump());
    REQUIRE(sent[key].size() == 1);
    auto& body = sent[key][0];
    CHECK(body["messages"] == msgs);
    CHECK(body["temperature"] == Approx(0.5));
    CHECK(body["model"] == (i == 1 ? "gpt-4o" : "gpt-4o-mini"));
    if (i == 2)
      CHECK(body["max_tokens"] == 77);
    else if (i == 3) {
      CHECK(body["max_completion_tokens"] == 55);
      CHECK_FALSE(body.contains("max_tokens"));
    } else
      CHECK(body["max_tokens"] == 1024);
    CHECK(body.value("stream", false) == false);
  }
  CHECK(sent["Summarize this [schema-ok]"].size() == 1);
  CHECK(sent["Summarize this [schema-ok]"][0]["response_format"] ==
        lines[18]["body"]["response_format"]);
  auto& never = sent["Summarize that [never-json]"];
  REQUIRE(never.size() == 2);
  REQUIRE(never[1]["messages"].size() == 3);
  CHECK(never[1]["messages"][1] ==
        json({{"role", "assistant"}, {"content", "I would rather chat."}}));
  CHECK(contains(never[1]["messages"][2]["content"].get<std::string>(),
                 "did not satisfy the required JSON Schema"));

  // The output file: one line per task, the same custom_ids.
  auto out = run_bgagent({"results", "--format", "openai-batch"}, dir.path(),
                         env);
  REQUIRE(out.exit_code == 0);
  REQUIRE(lines_of(out.out).size() == 20);
  auto by_id = output_by_id(out.out);
  std::set<std::string> ids;
  for (auto& [id, j] : by_id)
    ids.insert(id);
  std::set<std::string> want;
  for (auto& l : lines)
    want.insert(l["custom_id"].get<std::string>());
  CHECK(ids == want);
  std::set<std::string> line_ids;
  for (int i = 1; i <= 19; ++i) {
    auto id = "req-" + std::to_string(i);
    auto& j = by_id[id];
    INFO(j.dump());
    CHECK(j["error"].is_null());
    CHECK(j["response"]["status_code"] == 200);
    auto& body = j["response"]["body"];
    // The provider's whole answer: its own id, object, usage.
    CHECK(body["object"] == "chat.completion");
    CHECK(j["response"]["request_id"] == body["id"]);
    CHECK(body["usage"]["total_tokens"].get<int>() > 0);
    auto content = body["choices"][0]["message"]["content"].get<std::string>();
    if (i <= 18)
      CHECK(content == (i % 2 ? "An odd question, answered."
                              : "{\"summary\": \"A short summary.\"}"));
    else
      CHECK(content == "{\"summary\": \"A short summary.\"}");
    CHECK(j["id"].get<std::string>().rfind("batch_req_", 0) == 0);
    line_ids.insert(j["id"].get<std::string>());
  }
  CHECK(line_ids.size() == 19); // distinct
  auto& failed = by_id["req-20"];
  CHECK(failed["response"].is_null());
  CHECK(failed["error"]["code"] == "quarantined");
  CHECK(contains(failed["error"]["message"].get<std::string>(),
                 "invalid model output"));

  // results --json: the chat answer as the assistant message; the schema
  // answer as its JSON; the quarantined one's raw answer kept.
  auto rows = results_by_id(dir.path(), env);
  CHECK(rows["req-1"]["result"] ==
        json({{"role", "assistant"}, {"content", "An odd question, answered."}}));
  CHECK(rows["req-1"]["model"] == "gpt-4o");
  CHECK(rows["req-2"]["model"] == "gpt-4o-mini");
  CHECK(rows["req-19"]["result"] == json({{"summary", "A short summary."}}));
  CHECK(rows["req-20"]["state"] == "quarantined");
  CHECK(rows["req-20"]["raw_answer"] == "still not what you asked for");
  CHECK(rows["req-1"]["cost_usd"].get<double>() > 0);

  // Submitting the same file again: the same tasks, nothing new.
  auto again = run_bgagent({"submit", "batch.jsonl"}, dir.path(), env);
  CHECK(again.out == "0 task(s) submitted, 20 already known (skipped)\n");
}

TEST_CASE("an OpenAI Batch file runs offline, and its output is the OpenAI "
          "Batch format",
          "[e2e][batch-format]") {
  temp_dir dir;
  write_tasks(dir.path("batch.jsonl"),
              {batch_line("a", {{"messages", user("Hello there")}}),
               batch_line("b", {{"model", "gpt-4o"},
                                {"messages", user("Two plus two?")}})});
  auto r = run_bgagent({"run", "--tasks", "batch.jsonl"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = run_bgagent({"results", "--format", "openai-batch"}, dir.path());
  auto by_id = output_by_id(out.out);
  REQUIRE(by_id.size() == 2);
  auto& a = by_id["a"];
  CHECK(a["response"]["status_code"] == 200);
  CHECK(a["response"]["body"]["choices"][0]["message"] ==
        json({{"role", "assistant"},
              {"content", "offline answer to: Hello there"}}));
  CHECK(a["error"].is_null());
  // The same output twice: ids are stable.
  auto again = run_bgagent({"results", "--format", "openai-batch"},
                           dir.path());
  CHECK(again.out == out.out);
  // --json and --format together are refused.
  auto both = run_bgagent({"results", "--json", "--format", "openai-batch"},
                          dir.path());
  CHECK(both.exit_code == 2);
}

TEST_CASE("bad OpenAI Batch lines are one error line naming the file, line "
          "and field, exit 2, nothing stored",
          "[e2e][batch-format]") {
  temp_dir dir;
  auto ok = batch_line("ok", {{"messages", user("fine")}}).dump();
  struct bad {
    std::string line, error;
  };
  std::vector<bad> cases = {
    {batch_line("ok", {{"messages", user("other")}}).dump(),
     "custom_id \"ok\" is used twice (first at b.jsonl line 1)"},
    {json{{"custom_id", "x"},
          {"method", "POST"},
          {"url", "/v1/embeddings"},
          {"body", {{"messages", user("x")}}}}
       .dump(),
     "url \"/v1/embeddings\": only /v1/chat/completions is supported"},
    {json{{"custom_id", "x"},
          {"method", "GET"},
          {"url", "/v1/chat/completions"},
          {"body", {{"messages", user("x")}}}}
       .dump(),
     "method \"GET\": only POST is supported"},
    {json{{"custom_id", "x"},
          {"method", "POST"},
          {"url", "/v1/chat/completions"},
          {"body", {{"messages", user("x")}}},
          {"priority", 3}}
       .dump(),
     "unknown field \"priority\" in an OpenAI Batch line (known: custom_id, "
     "method, url, body)"},
    {batch_line("x", {{"model", "m"}}).dump(),
     "body.messages must be a non-empty array"},
    {batch_line("x", {{"messages", user("x")}, {"stream", true}}).dump(),
     "body.stream: streamed answers are not supported"},
    {batch_line("x", {{"messages", user("x")}, {"n", 3}}).dump(),
     "body.n: only one choice per request is supported"},
    {batch_line("x", {{"messages", user("x")}, {"max_tokens", 0}}).dump(),
     "body.max_tokens must be a whole number from 1 to 200000"},
    {batch_line("", {{"messages", user("x")}}).dump(),
     "custom_id must be 1 to 256 characters"},
    {json{{"custom_id", 7}}.dump(), "field \"custom_id\" must be a string"},
    {batch_line("a\x1b[31m", {{"messages", user("x")}}).dump(),
     "custom_id may not contain control characters"},
    {batch_line("x", {{"messages", user("x")},
                      {"tools", json::array()}})
       .dump(),
     "body.tools: tool calls are not supported (an answer must be message "
     "content)"},
    {batch_line("x", {{"messages", user("x")},
                      {"response_format", {{"type", 5}}}})
       .dump(),
     "body.response_format must be an object with a string \"type\""},
    {R"({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", )"
     R"("body": {"messages": [], "temperature": 1e400}})",
     "malformed JSON (number overflow parsing '1e400')"},
    {batch_line("x", {{"messages", user("x")},
                      {"response_format",
                       {{"type", "json_schema"},
                        {"json_schema",
                         {{"name", "s"},
                          {"schema",
                           {{"type", "object"},
                            {"properties",
                             {{"a",
                               {{"type", "string"},
                                {"pattern", "^(a+)+$"}}}}}}}}}}}})
       .dump(),
     "body.response_format.json_schema.schema is not a valid JSON Schema "
     "(draft 7): not a valid JSON Schema (draft 7): at "
     "/properties/a/pattern: \"^(a+)+$\" repeats a group that itself "
     "repeats"},
    {batch_line("x", {{"messages", user("x")},
                      {"response_format",
                       {{"type", "json_schema"},
                        {"json_schema",
                         {{"name", "s"},
                          {"schema", {{"type", "strang"}}}}}}}})
       .dump(),
     "body.response_format.json_schema.schema is not a valid JSON Schema "
     "(draft 7): "},
  };
  // Nested deeper than 64 levels (serializing it would recurse).
  auto deep = std::string(100000, '[') + "1" + std::string(100000, ']');
  cases.push_back({R"({"custom_id": "x", "method": "POST", "url": )"
                   R"("/v1/chat/completions", "body": {"messages": [], )"
                   R"("extra": )" +
                     deep + "}}",
                   "body is nested more than 64 levels deep"});
  for (auto& c : cases) {
    INFO(c.line.substr(0, 300));
    write_file(dir.path("b.jsonl"), ok + "\n" + c.line + "\n");
    auto r = run_bgagent({"submit", "b.jsonl"}, dir.path());
    CHECK(r.exit_code == 2);
    REQUIRE(lines_of(r.err).size() == 1);
    CHECK(r.err.rfind("bgagent: b.jsonl line 2: " + c.error, 0) == 0);
    CHECK_FALSE(exists(dir.path("bgagent.db")));
  }
}

TEST_CASE("a batch line's body keeps its key order, and a null max_tokens is "
          "filled in like a missing one",
          "[batch-format]") {
  auto line = nlohmann::ordered_json::parse(
    R"({"custom_id": "k", "method": "POST", "url": "/v1/chat/completions", )"
    R"("body": {"top_p": 0.5, "messages": [{"role": "user", "content": )"
    R"("hi"}], "max_tokens": null, "model": "m"}})");
  auto t = read_batch_line(line, 200000, "fp");
  CHECK(t.input ==
        R"({"top_p":0.5,"messages":[{"role":"user","content":"hi"}],)"
        R"("model":"m"})");
  CHECK(t.max_tokens == 1024);
  CHECK(t.model == "m");
  CHECK(t.id == "k");
  CHECK(t.idempotency_key == "id:k");
  CHECK(chat_request_body(t.input, "run-model", t.max_tokens, "", "") ==
        R"({"top_p":0.5,"messages":[{"role":"user","content":"hi"}],)"
        R"("model":"m","max_tokens":1024})");
}
