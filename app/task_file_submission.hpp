// A task file streamed into the store through its checkpointer: one
// all-or-nothing transaction, sent in parts of part_size tasks, the next
// part read (and its content hashes computed) while the store inserts the
// last, so a file of a million tasks is never held whole.
//
// Contract: the constructor opens the file and reads its first part, so a
// fault in a file of at most part_size tasks throws usage_error before the
// caller opens anything. store_all() sends every task (the checkpointer's
// begin / part / end messages, actors/checkpointer.hpp) and returns the
// counts; a fault found further on, or the store's refusal of a task (a
// conflict), rolls the whole submission back and throws usage_error naming
// the file and line. Its task_submitted / task_duplicate / task_replaced
// events (detail: the file's path) are committed with it. Call from a
// command's main thread, never from an actor.
#pragma once

#include <cstdint>
#include <memory>
#include <iosfwd>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/checkpointer_actor.hpp"

namespace bgagent {

class store_set;
class type_registry;
struct submit_counts;

class task_file_submission {
public:
  static constexpr size_t part_size = 2048;

  task_file_submission(const std::string& path, uint64_t max_input_bytes,
                       const type_registry& types);
  // From a stream (an HTTP request's body), named `name` in errors and
  // `source` in its task_submitted events.
  task_file_submission(std::unique_ptr<std::istream> in,
                       const std::string& name, const std::string& source,
                       uint64_t max_input_bytes, const type_registry& types);
  ~task_file_submission();

  // A refusal by the store throws submission_conflict (a usage_error).
  // With `ids`, the id of every task read is appended there, in order.
  submit_counts store_all(caf::scoped_actor& self,
                          const checkpointer_actor& checkpointer,
                          const std::string& on_conflict,
                          std::vector<std::string>* ids = nullptr);
  // The same into a store of several files, on this thread, before a run
  // spawns their writers (store_set's submission: staged, then published;
  // all or nothing).
  submit_counts store_all(store_set& files, const std::string& on_conflict,
                          std::vector<std::string>* ids = nullptr);

private:
  struct impl;
  std::unique_ptr<impl> d_;
};

} // namespace bgagent
