// Reading a task file: JSON Lines, or one JSON array of tasks.
//
// Contract: either every task in the file is valid and returned, or
// usage_error is thrown with one line naming the file and line (or array
// element) at fault; nothing is submitted in that case. Each task needs a
// known `type` and a string `input` of at most `max_input_bytes`; `id`,
// `idempotency_key` and `max_tokens` are optional. A missing key is derived
// as the SHA-256 of type and input, so the same task is the same task; a
// missing id is derived from the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/task.hpp"

namespace bgagent {

std::vector<task> read_task_file(const std::string& path,
                                 uint64_t max_input_bytes);

// The idempotency key of a task without one.
std::string derive_idempotency_key(const std::string& type,
                                   const std::string& input);

} // namespace bgagent
