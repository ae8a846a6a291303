// The OpenAI Batch file format (DESIGN.md section 10), in and out.
//
// Contract:
// - read_batch_line() turns one input line {custom_id, method, url, body}
//   into a task of the built-in type `chat`: id = custom_id, key "id:" +
//   custom_id, input = the body (compact JSON in the line's key order; a
//   null max_tokens dropped), model = body.model (empty: the run's MODEL),
//   max_tokens = body.max_tokens or body.max_completion_tokens, else 1024.
//   It throws std::invalid_argument naming the field at fault: another
//   field, a custom_id with control characters, a method other than POST,
//   a url that is not a chat-completions path, a body nested more than 64
//   levels or without messages, a streamed, n > 1 or tool-calling request
//   (one content answer bounds the reservation), or a response_format
//   without a string type or whose JSON Schema is not valid draft 7.
// - chat_body_schema() is that JSON Schema's text ("" when none): the
//   answer must satisfy it.
// - chat_request_body() is the body to send: the line's, with `model` and
//   `max_tokens` added when absent, and the repair turn's two messages
//   appended when there is one.
// - batch_output_line() is one line of the OpenAI Batch output format for a
//   finished task (completed: response.body is the provider's whole answer,
//   or for tasks of other providers an equivalent chat.completion;
//   quarantined / cancelled: error {code, message}); "" for tasks not
//   finished.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "messages/task.hpp"

namespace bgagent {

constexpr uint32_t batch_default_max_tokens = 1024;

bool is_batch_line(const nlohmann::json& line);

task read_batch_line(const nlohmann::ordered_json& line,
                     uint32_t max_tokens_limit,
                     const std::string& chat_fingerprint);

std::string chat_body_schema(const nlohmann::json& body);

// The user message of a repair turn: why the last answer failed.
std::string repair_instruction(const std::string& error);

std::string chat_request_body(const std::string& body_text,
                              const std::string& model, uint32_t max_tokens,
                              const std::string& repair_answer,
                              const std::string& repair_error);

std::string batch_output_line(const task_record& r);

} // namespace bgagent
