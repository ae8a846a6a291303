// A fuzz of what a user hands bgagent: thousands of mutated task files
// (JSON Lines and arrays, built-in, user-typed and OpenAI Batch lines) and
// environments, read in-process. Each must give tasks or one usage_error
// naming the file (or variable); no other exception, no crash, no hang
// (ASan+UBSan run it too). Deterministic: a fixed seed.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "app/config.hpp"
#include "app/errors.hpp"
#include "app/task_file.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"
#include "types/type_registry.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::vector<std::string> seeds = {
  R"({"id": "a", "type": "summarize", "input": "One. Two.", "priority": 3, "tags": ["x"]})",
  R"({"type": "route", "input": "Late parcel", "vars": {"tier": "gold"}, "model": "m", "max_tokens": 50})",
  R"({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-z]+$"}}}}}}})",
  R"({"type": "extract_entities", "input": "Ada Lovelace met Charles Babbage in London.", "idempotency_key": "k-1"})",
};

// Fragments that have broken parsers before.
const std::vector<std::string> tokens = {
  "1e309", "-1e309", "18446744073709551616", "1e400", "NaN", "null", "true",
  "[", "]", "{", "}", "\"", "\\", "\\u0000", "\\ud800", "\xC3\x28", "\xEF\xBB\xBF",
  ",", ":", "\n", "\r\n", "0", "-1", "1.5", "\"custom_id\": \"x\",",
  "\"priority\": 9223372036854775808,", "\"tags\": [\"\\u202e\"],",
  std::string(200, '['), "\"(a+)+\"", "\"id:x\""};

std::string mutate(std::string s, std::mt19937& rng) {
  auto pick = [&](size_t n) {
    return n == 0 ? size_t{0} : std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  int edits = 1 + static_cast<int>(pick(4));
  for (int e = 0; e < edits; ++e) {
    size_t at = pick(s.size() + 1);
    switch (pick(5)) {
      case 0: // flip a byte
        if (!s.empty())
          s[pick(s.size())] = static_cast<char>(pick(256));
        break;
      case 1: // insert a token
        s.insert(at, tokens[pick(tokens.size())]);
        break;
      case 2: // delete a span
        s.erase(at, pick(12));
        break;
      case 3: // duplicate a span
        s.insert(at, s.substr(pick(s.size() + 1), pick(40)));
        break;
      default: // truncate
        s.resize(at);
    }
  }
  return s;
}

} // namespace

TEST_CASE("fuzz: 3,000 mutated task files give tasks or one usage error, "
          "nothing else",
          "[fuzz]") {
  temp_dir dir;
  type_registry types = type_registry::builtin();
  types.load_text("route:\n"
                  "  prompt: \"{{tier}}: {{input}}\"\n"
                  "  schema: {type: object, properties: {q: {enum: [a, b]}}}\n",
                  "types.yaml");
  std::mt19937 rng(20261126);
  auto path = dir.path("t.jsonl");
  int ok = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    bool array = i % 5 == 0;
    int lines = 1 + static_cast<int>(rng() % 4);
    for (int l = 0; l < lines; ++l) {
      auto line = seeds[rng() % seeds.size()];
      if (rng() % 3)
        line = mutate(line, rng);
      text += (array ? (l ? "," : "[") : "") + line + (array ? "" : "\n");
    }
    if (array)
      text += "]";
    if (rng() % 7 == 0)
      text = mutate(text, rng);
    write_file(path, text);
    INFO(text.substr(0, 400));
    try {
      auto contents = read_task_file(path, 1 << 20, types);
      ++ok;
      for (auto& t : contents.tasks)
        CHECK_FALSE(t.id.empty());
    } catch (const usage_error& e) {
      ++refused;
      std::string what = e.what();
      CHECK(what.rfind(path, 0) == 0); // names the file
      CHECK(what.find('\n') == std::string::npos);
    }
  }
  // Both outcomes were exercised.
  CHECK(ok > 100);
  CHECK(refused > 1000);
}

TEST_CASE("fuzz: 2,000 mutated environments give a configuration or one "
          "usage error naming the variable",
          "[fuzz]") {
  std::mt19937 rng(7);
  const auto& names = known_variable_names();
  const std::vector<std::string> values = {
    "", "0", "1", "-1", "4", "1e309", "nan", "inf", "99999999999999999999",
    "0.5", "$1.00", "abc", " 3 ", "full", "normal", "off", "json_schema",
    "http://127.0.0.1:1/v1", "ftp://x", "debug", "\xC3\x28", "1;2",
    std::string(5000, '9')};
  int ok = 0, refused = 0;
  for (int i = 0; i < 2000; ++i) {
    config_sources src;
    int n = 1 + static_cast<int>(rng() % 4);
    std::string last;
    for (int k = 0; k < n; ++k) {
      auto& name = names[rng() % names.size()];
      // The TLS files must exist to be accepted: leave them out.
      if (name.rfind("BG_AGENT_TLS_", 0) == 0 || name == "BG_AGENT_SECRET_FILE")
        continue;
      auto value = values[rng() % values.size()];
      src.set(name, value, "environment");
      last += name + "=" + value + " ";
    }
    INFO(last);
    try {
      load_config(src);
      ++ok;
    } catch (const usage_error& e) {
      ++refused;
      std::string what = e.what();
      CHECK(what.find('=') != std::string::npos); // names NAME=value
    }
  }
  CHECK(ok > 100);
  CHECK(refused > 100);
}
