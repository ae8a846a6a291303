// The task types in force: the built-in ones, then a user's types file.
//
// Contract: a types file is YAML (JSON is read as YAML too), one mapping
// entry per type with only the fields system, prompt, schema, max_tokens,
// model, temperature and description. load_file() either adds or replaces
// every type of the file or, on the first fault, throws
// std::invalid_argument with one line naming the file, its line, the type
// and the field ("types.yaml line 7: type \"classify\": unknown field
// \"sytem\" (known: ...)"), changing nothing. A schema must be a valid
// draft-07 JSON Schema. `chat` cannot be redefined. A registry is
// immutable once loaded and may be shared between threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "types/task_type.hpp"

namespace bgagent {

class type_registry {
public:
  // summarize, analyze_sentiment, extract_entities and chat.
  static type_registry builtin();
  // The same, made once for the process (to look built-in types up).
  static const type_registry& builtin_types();

  void load_file(const std::string& path);
  // The same from text (`source` names it in errors).
  void load_text(const std::string& text, const std::string& source);

  const task_type* find(const std::string& name) const;
  // Sorted by name.
  std::vector<const task_type*> all() const;
  // "a, b, c" for error messages.
  std::string names() const;

private:
  std::map<std::string, std::shared_ptr<const task_type>> types_;
};

// The types file to read: `given` (--types, else BG_AGENT_TYPES), else
// ./bgagent-types.yaml when it exists; empty for none.
std::string types_file_to_use(const std::string& given);

} // namespace bgagent
