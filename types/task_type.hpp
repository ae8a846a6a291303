// A task type: a prompt and an output contract (DESIGN.md sections 4 and 9).
//
// Contract: a task_type is immutable once a type_registry has made it. Its
// fingerprint is the SHA-256 of its canonical definition (system, prompt,
// schema, max_tokens, model, temperature, fallback_models when given; not its name, description or
// source), so editing any of those makes a new fingerprint. `chat` is the
// one raw type: no prompt, no schema; the task's own request body is sent.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "types/json_schema.hpp"

namespace bgagent {

struct task_type {
  std::string name;
  std::string description;
  std::string system;               // system prompt template
  std::string prompt = "{{input}}"; // user prompt template
  nlohmann::json schema;            // draft 7; null: any JSON (chat)
  uint32_t max_tokens = 256;
  std::string model;                // empty: the run's MODEL
  // Tried in order when `model` is down or refuses (types/model_list.hpp).
  std::vector<std::string> fallback_models;
  double temperature = 0;
  bool raw = false;                 // chat: the request body is the task's

  std::string source;               // "built-in" or the types file's path
  std::string canonical;            // JSON of the fields fingerprinted
  std::string fingerprint;          // hex SHA-256 of `canonical`
  // Names the templates use besides `input`: each task must give them in
  // its `vars`.
  std::vector<std::string> vars;
  std::shared_ptr<const json_schema> compiled; // null when schema is null
};

} // namespace bgagent
