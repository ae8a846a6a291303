// The task types bgagent knows: their prompts, default output budgets and
// the validation of a model's answer.
//
// Contract: every provider asks for and validates results through these
// functions, so a result stored is always of its type's shape:
//   summarize          {"summary": "<one sentence>"}
//   analyze_sentiment  {"sentiment": "positive|negative|neutral",
//                       "confidence": 0..1}
//   extract_entities   {"entities": [{"text": "...", "type": "..."}]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bgagent {

bool is_known_task_type(const std::string& type);
const std::vector<std::string>& known_task_types();

// The output budget for a type when the task gives none.
uint32_t default_max_tokens(const std::string& type);

// The system prompt asking for JSON of the type's shape.
const std::string& system_prompt(const std::string& type);

// A consistent token estimate: about four bytes a token, rounded up.
uint64_t estimate_tokens(const std::string& text);

// Prompt tokens of a request: system prompt + input + message overhead.
uint64_t estimate_prompt_tokens(const std::string& type,
                                const std::string& input);

struct validation {
  bool ok = false;
  std::string result; // compact, normalized JSON when ok
  std::string error;  // why not, when !ok
};

// Validates a model's answer for `type`. Tolerates code fences and text
// around a single JSON object.
validation validate_result(const std::string& type, const std::string& text);

} // namespace bgagent
