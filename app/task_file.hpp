// Reading a task file: JSON Lines, or one JSON array of tasks (a UTF-8
// byte order mark before either is skipped).
//
// Contract: either every task in the file is valid and returned, or (for a
// directory, a file without tasks, a line too deep or malformed)
// usage_error is thrown with one line naming the file and line (or array
// element) at fault, and the field; nothing is submitted in that case. Each
// task needs a `type` known to the registry and a string `input`; `id`,
// `vars` (strings for the type's {{NAME}} placeholders: every one the type
// uses must be given), `idempotency_key`, `max_tokens` and `model` are
// optional, and so are `priority` (a whole number within +-1e9, higher runs
// first) and `tags` (at most 16 strings of 1-64 characters), which order
// and group a task without being part of its content; any other field is
// an error naming the known ones. A line with `custom_id` is an OpenAI
// Batch line, a task of type `chat` (types/openai_batch.hpp); a custom_id
// used twice in one file is an error. Input and
// vars together are at most `max_input_bytes`. A missing key is the id;
// without an id either, it is derived from the content (the type's
// definition, model, input and vars; for a built-in type with neither vars
// nor model, from type and input as earlier releases did), so the same task
// is the same task, and a missing id is derived from the key. The
// definitions of the types used are returned with the tasks, for the
// store, and each task's place ("FILE line N") for errors.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/task.hpp"

namespace bgagent {

class type_registry;

struct task_file_contents {
  std::vector<task> tasks;
  std::vector<std::string> where;     // "FILE line N" per task
  std::vector<type_definition> types; // one per type used
};

task_file_contents read_task_file(const std::string& path,
                                  uint64_t max_input_bytes,
                                  const type_registry& types);

// The same reading, streamed: next() hands over one task at a time, in
// file order, with its place and, the first time its type is used, that
// type's definition; nothing is kept but what the checks need (the
// custom_ids of OpenAI Batch lines; a JSON array file is read whole). A
// fault throws usage_error when it is met: tasks handed over before it are
// the caller's to discard. The constructor checks the file's start.
struct task_file_entry {
  task t;
  std::string where;                       // "FILE line N"
  std::optional<type_definition> first_use; // its type, first time used
};

class task_file_reader {
public:
  task_file_reader(const std::string& path, uint64_t max_input_bytes,
                   const type_registry& types);
  // The same from a stream (an HTTP request's body), named `name` in
  // errors ("NAME line N: ...").
  task_file_reader(std::unique_ptr<std::istream> in, const std::string& name,
                   uint64_t max_input_bytes, const type_registry& types);
  ~task_file_reader();
  // False at the end of the file.
  bool next(task_file_entry& out);

private:
  struct impl;
  std::unique_ptr<impl> d_;
};

struct task_type;
struct submit_counts;

// "N task(s) submitted, M already known (skipped)", and the replaced and
// kept conflicts when there are any.
std::string submit_summary(const submit_counts& counts);

// The idempotency key of a task without one (see above).
std::string derive_idempotency_key(const task& t, const task_type& type);
// The earlier releases' key: SHA-256 of type and input.
std::string derive_idempotency_key(const std::string& type,
                                   const std::string& input);

} // namespace bgagent
