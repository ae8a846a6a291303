// The lines of a provider batch's files (OpenAI's Batch API format), and
// what a provider's batch status means for bgagent's batch states.
//
// Contract:
// - batch_request_line() is one JSONL line (no newline) carrying `body`
//   (the exact JSON the live path would POST to /chat/completions) with
//   the task id as custom_id.
// - parse_batch_result_line() reads one line of an output or error file:
//   custom_id, the HTTP status and body of the response (0 and "" when it
//   has none) and the line's error (code: message), or false with why.
// - next_state() maps the provider's status onto the local states, never
//   backwards; a status it does not know leaves the state as it is.
#pragma once

#include <string>

#include "messages/batch.hpp"

namespace bgagent {

std::string batch_request_line(const std::string& custom_id,
                               const std::string& body);

struct batch_result_line {
  std::string custom_id;
  int status = 0;     // response.status_code
  std::string body;   // response.body as JSON text
  std::string error;  // error.code + ": " + error.message, or ""
  std::string code;   // error.code, e.g. "batch_expired"
};

bool parse_batch_result_line(const std::string& line, batch_result_line& out,
                             std::string& why);

batch_state next_state(batch_state current, const std::string& status);

} // namespace bgagent
