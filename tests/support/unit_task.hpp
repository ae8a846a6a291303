// A task value for unit tests of the store and the actors that own it:
// a summarize task whose input names its id.
#pragma once

#include <string>

#include "messages/task.hpp"

namespace bgagent::testing {

// Idempotency key "key-<id>" unless `key` is given.
inline task unit_task(const std::string& id, const std::string& key = {}) {
  task t;
  t.id = id;
  t.type = "summarize";
  t.input = "text of " + id;
  t.idempotency_key = key.empty() ? "key-" + id : key;
  return t;
}

} // namespace bgagent::testing
