// One attempt's request, built the same way wherever it is needed: the
// worker that sends it, the head's gateway that looks it up in the
// response cache, the batch_runner that writes it into a batch file.
//
// Contract:
// - request_for() is the llm_request of task `t` on `model` (its
//   max_tokens resolved, 256 when neither task nor type gives one; its
//   repair turn, the answer cut as the worker cuts it).
// - request_fingerprint() is the response cache's key (DESIGN.md section
//   13): SHA-256 of "provider/model" and the exact JSON body the
//   OpenAI-compatible path sends (messages, parameters, schema), so two
//   tasks share a key only when they send the same thing to the same
//   model. "" when the task is not cacheable: a temperature above 0 (a
//   chat task: a body that does not say temperature 0), or a body that
//   cannot be built.
#pragma once

#include <string>

#include "messages/task.hpp"
#include "providers/provider.hpp"

namespace bgagent {

llm_request request_for(const task& t, const std::string& model);

std::string request_fingerprint(const task& t, const std::string& provider,
                                const std::string& model,
                                bool response_format = true);

} // namespace bgagent
