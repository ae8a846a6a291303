// A model's answer checked against its task's JSON Schema, and the token
// estimates every provider shares.
//
// Contract: validate_result() finds the one JSON value in an answer (the
// whole text, a fenced code block, or the span from the first '{' to the
// last '}'), parses it and checks it against `schema_text` (a draft-07
// schema, compiled once per distinct text and cached for the process;
// thread-safe). ok: `result` is the value as compact JSON. Not ok: `error`
// says why in one line, with the schema's violations, short enough to show
// the model in a repair turn. An empty schema accepts any JSON object.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bgagent {

struct validation {
  bool ok = false;
  std::string result; // compact JSON when ok
  std::string error;  // why not, when !ok
};

validation validate_result(const std::string& schema_text,
                           const std::string& text);

// The same check of a value already parsed (it must be an object).
validation validate_value(const std::string& schema_text,
                          const nlohmann::json& value);

// A consistent token estimate: about four bytes a token, rounded up.
uint64_t estimate_tokens(const std::string& text);

} // namespace bgagent
