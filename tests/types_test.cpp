// Task types as data: the registry (built-in types, a user's types file and
// every way that file can be wrong), JSON Schema checks with valijson,
// prompt templates, and `bgagent types` run like a user runs it.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"
#include "types/json_schema.hpp"
#include "types/prompt_template.hpp"
#include "types/schema_instance.hpp"
#include "types/type_registry.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

const std::string ticket_type = R"YAML(
classify_ticket:
  system: |
    You route support tickets. Answer with JSON only.
  prompt: "Ticket from a {{tier}} customer:\n{{input}}"
  schema:
    type: object
    required: [category, urgency]
    properties:
      category: {enum: [billing, shipping, bug, other]}
      urgency: {type: integer, minimum: 1, maximum: 5}
    additionalProperties: false
  max_tokens: 128
  model: openai/gpt-4o-mini
  temperature: 0.2
)YAML";

// The message load_text throws for `text`, or "" if it loads.
std::string load_error(const std::string& text) {
  auto r = type_registry::builtin();
  try {
    r.load_text(text, "types.yaml");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("types: the built-in types are the seed's three and chat",
          "[unit][types]") {
  auto r = type_registry::builtin();
  CHECK(r.names() == "analyze_sentiment, chat, extract_entities, summarize");
  for (auto* t : r.all()) {
    INFO(t->name);
    CHECK(t->source == "built-in");
    CHECK(t->fingerprint.size() == 64);
    CHECK(t->vars.empty());
  }
  auto* chat = r.find("chat");
  REQUIRE(chat);
  CHECK(chat->raw);
  CHECK(chat->max_tokens == 1024);
  CHECK_FALSE(chat->compiled);
  auto* s = r.find("analyze_sentiment");
  REQUIRE(s);
  CHECK(s->max_tokens == 64);
  CHECK(s->compiled->violations(
          json{{"sentiment", "positive"}, {"confidence", 0.9}})
          .empty());
  auto why = s->compiled->violations(
    json{{"sentiment", "happy"}, {"confidence", 1.5}});
  CHECK(contains(why, "/sentiment"));
  CHECK(contains(why, "/confidence"));
  CHECK(r.find("summarize")->system ==
        "You summarize text. Answer with only a JSON object of the form "
        "{\"summary\": \"<one sentence>\"}: one sentence, no preamble, no "
        "code fences.");
  CHECK(r.find("nope") == nullptr);
}

TEST_CASE("types: a user's type, its vars and its fingerprint",
          "[unit][types]") {
  auto r = type_registry::builtin();
  r.load_text(ticket_type, "mine.yaml");
  auto* t = r.find("classify_ticket");
  REQUIRE(t);
  CHECK(t->source == "mine.yaml");
  CHECK(t->system == "You route support tickets. Answer with JSON only.\n");
  CHECK(t->prompt == "Ticket from a {{tier}} customer:\n{{input}}");
  CHECK(t->vars == std::vector<std::string>{"tier"});
  CHECK(t->max_tokens == 128);
  CHECK(t->model == "openai/gpt-4o-mini");
  CHECK(t->temperature == Approx(0.2));
  CHECK(t->schema["properties"]["urgency"]["maximum"] == 5);
  CHECK(t->compiled->violations(
          json{{"category", "bug"}, {"urgency", 3}}).empty());
  CHECK(contains(t->compiled->violations(
                   json{{"category", "bug"}, {"urgency", 3}, {"x", 1}}),
                 "x"));
  // The same definition has the same fingerprint; an edit changes it.
  auto again = type_registry::builtin();
  again.load_text(ticket_type, "elsewhere.yaml");
  CHECK(again.find("classify_ticket")->fingerprint == t->fingerprint);
  auto edited_text = ticket_type;
  edited_text.replace(edited_text.find("Answer"), 6, "Reply ");
  auto edited = type_registry::builtin();
  edited.load_text(edited_text, "mine.yaml");
  CHECK(edited.find("classify_ticket")->fingerprint != t->fingerprint);
  // The same in JSON.
  auto as_json = type_registry::builtin();
  as_json.load_text(
    R"({"classify_ticket": {"system": "You route support tickets. Answer )"
    R"(with JSON only.\n", "prompt": "Ticket from a {{tier}} customer:\n)"
    R"({{input}}", "schema": {"type": "object", "required": ["category", )"
    R"("urgency"], "properties": {"category": {"enum": ["billing", )"
    R"("shipping", "bug", "other"]}, "urgency": {"type": "integer", )"
    R"("minimum": 1, "maximum": 5}}, "additionalProperties": false}, )"
    R"("max_tokens": 128, "model": "openai/gpt-4o-mini", )"
    R"("temperature": 0.2}})",
    "mine.json");
  CHECK(as_json.find("classify_ticket")->fingerprint == t->fingerprint);
}

TEST_CASE("types: a user's file may override a built-in type",
          "[unit][types]") {
  auto r = type_registry::builtin();
  auto before = r.find("summarize")->fingerprint;
  r.load_text("summarize:\n  system: Summarize in {{lang}}.\n  schema: "
              "{type: object, required: [summary]}\n",
              "mine.yaml");
  auto* t = r.find("summarize");
  CHECK(t->source == "mine.yaml");
  CHECK(t->fingerprint != before);
  CHECK(t->vars == std::vector<std::string>{"lang"});
}

TEST_CASE("types: every fault in a types file is one line naming the file, "
          "line, type and field, and changes nothing",
          "[unit][types]") {
  auto unknown = load_error("x:\n  sytem: hi\n  schema: {type: object}\n");
  CHECK(unknown == "types.yaml line 2: type \"x\": unknown field \"sytem\" "
                   "(known: system, prompt, schema, max_tokens, model, "
                   "fallback_models, temperature, description)");
  CHECK(load_error("x:\n  system: hi\n  schema: {type: object}\n"
                   "  fallback_models: gpt-4o\n") ==
        "types.yaml line 4: type \"x\": field \"fallback_models\" must be a "
        "list of 1 to 8 different model names of 1 to 200 characters");
  auto bad_type = load_error("x:\n  system: hi\n  schema: {type: strnig}\n");
  CHECK(contains(bad_type, "types.yaml line 3: type \"x\": field \"schema\" "
                           "is not a valid JSON Schema (draft 7): at /type"));
  auto bad_required =
    load_error("x:\n  system: hi\n  schema: {type: object, required: yes}\n");
  CHECK(contains(bad_required, "at /required"));
  auto bad_min = load_error("x:\n  system: hi\n  schema: {type: object, "
                            "properties: {a: {minimum: \"3\"}}}\n");
  CHECK(contains(bad_min, "at /properties/a/minimum"));
  auto bad_re = load_error("x:\n  system: hi\n  schema: {type: object, "
                           "properties: {a: {pattern: \"((\"}}}\n");
  CHECK(contains(bad_re, "at /properties/a/pattern"));
  CHECK(contains(bad_re, "not a regular expression"));
  auto remote = load_error("x:\n  system: hi\n  schema: {type: object, "
                           "$ref: \"http://example.com/s.json\"}\n");
  CHECK(contains(remote, "type \"x\": field \"schema\" is not a usable "
                         "JSON Schema"));
  CHECK(contains(load_error("x:\n  system: [hi\n"),
                 "types.yaml line 3: not valid YAML or JSON"));
  CHECK(load_error("[1, 2]") == "types.yaml: a types file is a mapping from "
                                "type names to their definitions");
  CHECK(load_error("") == "types.yaml: no task types in the file");
  CHECK(load_error("x: 3\n") ==
        "types.yaml line 1: type \"x\": must be a mapping of system, prompt, "
        "schema, max_tokens, model, fallback_models, temperature, "
        "description");
  CHECK(load_error("x:\n  system: hi\n") ==
        "types.yaml line 2: type \"x\": needs a \"schema\" (JSON Schema, "
        "draft 7) of its result");
  CHECK(contains(load_error("x:\n  system: hi\n  schema: {type: object}\n  max_tokens: "
                            "0\n"),
                 "line 4: type \"x\": field \"max_tokens\" must be a whole "
                 "number from 1 to 200000"));
  CHECK(contains(load_error("x:\n  system: hi\n  schema: {type: object}\n  temperature: "
                            "warm\n"),
                 "field \"temperature\" must be a number from 0 to 2"));
  CHECK(contains(load_error("x:\n  system: hi\n  system: ho\n  schema: {type: object}\n"),
                 "line 3: type \"x\": field \"system\" is given twice"));
  CHECK(contains(load_error("x:\n  system: [a, b]\n  schema: {type: object}\n"),
                 "field \"system\" must be a string"));
  CHECK(contains(load_error("chat:\n  system: hi\n  schema: {type: object}\n"),
                 "type \"chat\" is built in"));
  CHECK(contains(load_error("bad name:\n  system: hi\n  schema: {type: object}\n"),
                 "type name \"bad name\""));
  // A result is an object; a $ref chain that never ends is refused (valijson
  // would recurse until the stack ends).
  CHECK(contains(load_error("x:\n  system: hi\n  schema: {type: array}\n"),
                 "type \"x\": field \"schema\" must describe an object"));
  CHECK(contains(load_error("x:\n  system: hi\n  schema: {type: object, "
                            "$ref: \"#\"}\n"),
                 "at /$ref: \"#\" refers back to itself"));
  CHECK(contains(load_error("x:\n  system: hi\n  schema:\n    type: object\n"
                            "    properties: {p: {$ref: \"#/definitions/a\"}}\n"
                            "    definitions:\n      a: {$ref: "
                            "\"#/definitions/b\"}\n      b: {$ref: "
                            "\"#/definitions/a\"}\n"),
                 "refers back to itself"));
  // A recursive schema that ends is fine.
  CHECK(load_error("x:\n  system: hi\n  schema:\n    type: object\n"
                   "    properties:\n      l: {$ref: \"#\"}\n      r: {$ref: "
                   "\"#\"}\n") == "");
  // An alias bomb is refused before it is expanded.
  auto bomb = load_error(
    "x:\n  system: hi\n  schema:\n    definitions:\n"
    "      a: &a [1,1,1,1,1,1,1,1,1]\n      b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "      c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "      d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "      e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "      f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n    enum: *f\n");
  CHECK(contains(bomb, "too large or too deeply nested"));
  // A fault in the second type leaves the first out too.
  auto r = type_registry::builtin();
  CHECK_THROWS_AS(r.load_text("a:\n  system: hi\n  schema: {type: object}\nb:\n  "
                              "bogus: 1\n",
                              "types.yaml"),
                  std::invalid_argument);
  CHECK(r.find("a") == nullptr);
}

TEST_CASE("types: prompt templates", "[unit][types]") {
  CHECK(placeholders("{{a}} and {{input}} and {{a}} {{b.c-d_e}}") ==
        std::vector<std::string>{"a", "input", "b.c-d_e"});
  // Not placeholders: JSON in a prompt, a lone brace pair, spaces.
  CHECK(placeholders("{\"a\": {{\"b\": 1}}} {{ x }} {{}} {{1a}}").empty());
  CHECK(render("Hi {{name}}: {{input}}!", "text", {{"name", "Ann"}}) ==
        "Hi Ann: text!");
  // What is inserted is not read again.
  CHECK(render("{{input}} {{a}}", "{{a}}", {{"a", "{{input}}"}}) ==
        "{{a}} {{input}}");
  CHECK_THROWS_AS(render("{{missing}}", "x", {}), std::out_of_range);
  CHECK(render("no placeholders", "x", {}) == "no placeholders");
}

TEST_CASE("bgagent types lists the types in force with their source and "
          "fingerprint",
          "[e2e][types]") {
  temp_dir dir;
  auto examples = std::string(BGAGENT_SOURCE_DIR) +
                  "/examples/bgagent-types.yaml";
  auto builtin = run_bgagent({"types"}, dir.path());
  REQUIRE(builtin.exit_code == 0);
  CHECK(lines_of(builtin.out).size() == 5); // heading + 4 types

  auto r = run_bgagent({"types", "--types", examples, "--json"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::map<std::string, json> by_name;
  for (auto& line : lines_of(r.out)) {
    auto j = json::parse(line);
    by_name[j["name"]] = j;
  }
  REQUIRE(by_name.size() == 7);
  CHECK(by_name["route_ticket"]["source"] == examples);
  CHECK(by_name["route_ticket"]["vars"] == json{"tier"});
  CHECK(by_name["translate"]["vars"] ==
        json({"target_language", "glossary"}));
  CHECK(by_name["extract_invoice"]["max_tokens"] == 600);
  CHECK(by_name["summarize"]["source"] == "built-in");
  CHECK(by_name["chat"]["raw"] == true);
  CHECK(by_name["route_ticket"]["fingerprint"].get<std::string>().size() ==
        64);

  // BG_AGENT_TYPES, and ./bgagent-types.yaml when neither is given.
  auto env = run_bgagent({"types"}, dir.path(), {{"BG_AGENT_TYPES", examples}});
  CHECK(contains(env.out, "route_ticket"));
  write_file(dir.path("bgagent-types.yaml"), ticket_type);
  auto local = run_bgagent({"types"}, dir.path());
  CHECK(contains(local.out, "classify_ticket"));
  CHECK(contains(local.out, "bgagent-types.yaml"));

  // A broken file: exit 2, one line naming it.
  write_file(dir.path("bad.yaml"), "x:\n  system: hi\n  sytem: ho\n");
  auto bad = run_bgagent({"types", "--types", "bad.yaml"}, dir.path());
  CHECK(bad.exit_code == 2);
  REQUIRE(lines_of(bad.err).size() == 1);
  CHECK(bad.err == "bgagent: bad.yaml line 3: type \"x\": unknown field "
                   "\"sytem\" (known: system, prompt, schema, max_tokens, "
                   "model, fallback_models, temperature, description)\n");
  auto missing = run_bgagent({"types"}, dir.path(),
                             {{"BG_AGENT_TYPES", "nope.yaml"}});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err == "bgagent: nope.yaml: cannot open types file\n");
}

TEST_CASE("types: a long string meets a pattern without overflowing the "
          "stack, and an absurd one is refused unchecked",
          "[unit][types]") {
  auto schema = json_schema::compile(
    json{{"type", "object"},
         {"properties", {{"s", {{"type", "string"}, {"pattern", "^[a-z ]+$"}}}}}});
  // std::regex alone overflows an 8 MB stack on ~30,000 such characters.
  CHECK(schema->violations(json{{"s", std::string(150000, 'a')}}) == "");
  CHECK(contains(schema->violations(json{{"s", std::string(150000, 'A')}}),
                 "/s"));
  CHECK(contains(schema->violations(json{{"s", std::string(300000, 'a')}}),
                 "too long to check"));
}

TEST_CASE("types: a schema instance stays small for schemas that ask for "
          "the impossible",
          "[unit][types]") {
  auto recursive = json{{"type", "object"},
                        {"required", {"l"}},
                        {"properties", {{"l", {{"$ref", "#"}}}, {"r", {{"$ref", "#"}}}}}};
  auto a = schema_instance(recursive, 7);
  CHECK(a.dump().size() < 100000);
  auto huge = json{{"type", "object"},
                   {"required", {"xs", "s"}},
                   {"properties",
                    {{"xs", {{"type", "array"}, {"minItems", 1000000000}}},
                     {"s", {{"type", "string"}, {"minLength", 1000000000}}}}}};
  auto b = schema_instance(huge, 7);
  CHECK(b["xs"].size() <= 1000);
  CHECK(b["s"].get<std::string>().size() <= 10000);
  auto big_int = json{{"type", "object"},
                      {"required", {"n"}},
                      {"properties", {{"n", {{"type", "integer"}, {"minimum", 1e19}}}}}};
  CHECK(schema_instance(big_int, 1)["n"].is_number());
}

TEST_CASE("types: a pattern that repeats a repeating group is refused at "
          "load time (exponential matching), others are kept",
          "[unit][types]") {
  auto with_pattern = [](const std::string& re) {
    return json_schema::compile(
      json{{"type", "string"}, {"pattern", re}});
  };
  for (auto* re : {"^[a-z]+$", "^(ab)+$", "^(a|b)*c$", "\\d{3}-\\d{4}",
                   "^(a{1})+$", "^[(+*]+$", "^\\(a+\\)+$", "(?:x)?y+"}) {
    INFO(re);
    CHECK_NOTHROW(with_pattern(re));
  }
  for (auto* re : {"^(a+)+$", "(a*)*", "((ab)*c)+", "^(\\w+\\s?)*$",
                   "(a{2,})+", "(.*a){3}", "(x(y+))*"}) {
    INFO(re);
    CHECK_THROWS_WITH(with_pattern(re),
                      Catch::Contains("repeats a group that itself repeats"));
  }
}
