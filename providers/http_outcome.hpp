// What an HTTP answer from an OpenAI-compatible chat completions endpoint
// means for bgagent: a validated result with its usage and cost, or a
// classified error. Pure functions, no network: the HTTP provider calls
// them on every response and tests call them directly.
//
// Contract (error classes, DESIGN.md section 3):
//   2xx with a valid answer        ok; usage from usage.prompt_tokens and
//                                  usage.completion_tokens; cost from
//                                  usage.cost whenever the server sends it
//                                  (OpenRouter, OpenAI, any compatible
//                                  server), else the price table; no usage
//                                  (or only one count) -> usage_reported=false
//                                  (the worker charges the reservation)
//   2xx with impossible usage      (a token count that is not a whole number
//                                  >= 0, NaN/inf, or over 10,000,000; a
//                                  usage.cost that is not a number, < 0 or
//                                  over $1,000; a usage that is not an
//                                  object; null counts as absent) ->
//                                  retryable, usage_invalid=true, nothing
//                                  reported (so the reservation is charged),
//                                  error "<provider> answer: usage.<field> =
//                                  <value> is not a valid ..." (the head
//                                  raises the critical lying_usage alert).
//                                  Usage above the reservation is not
//                                  impossible: the budget_keeper alerts.
//   2xx empty, truncated, malformed JSON, no content, or content failing
//       the task type's validation -> retryable (usage kept when reported);
//       content failing validation also sets raw_answer (the content, cut
//       to 65,536 characters) and answer_error (the validation error) for the repair
//       turn
//   2xx whose message has no content but a `refusal` -> permanent (the
//       model refused; asking again changes nothing)
//   402                            out_of_credits (stops the run)
//   400 401 403 404 422 (and other 4xx) -> permanent (quarantine at once)
//   408 409 429 5xx, timeouts, refused/reset connections -> retryable
//   429 and 503 carry the delay of `retry-after-ms` or `Retry-After`
//   (seconds or an HTTP date) in retry_after_ms, capped at one day (the
//   supervisor caps it further).
// Error text names the provider, the HTTP status and the provider's own
// message; the API key is removed from every text that leaves here (before
// anything is cut). Every text that leaves here is valid UTF-8 (ill-formed
// bytes from the server become U+FFFD) and quoted server text is cut by
// characters (at most 300 of them), never inside a UTF-8 sequence.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "messages/call_outcome.hpp"
#include "providers/http_client.hpp"
#include "providers/pricing.hpp"

namespace bgagent {

struct outcome_context {
  std::string provider; // e.g. "openrouter"
  std::string model;
  std::string schema;   // JSON Schema text of the result ("" any object)
  model_price price;
  std::string secret;   // removed from any text (the API key)
  double timeout_seconds = 0;
  // A chat task: the whole answer is kept (outcome.response); without a
  // schema its result is the message {"role": "assistant", "content"}.
  bool raw = false;
  // OpenRouter's `models`: the others it may answer with, and their prices.
  // An answer whose `model` is one of them is recorded (and, without
  // usage.cost, priced) as that model.
  std::vector<std::pair<std::string, model_price>> routes;
};

call_outcome interpret_response(const http_response& r,
                                const outcome_context& c);

// The class of an HTTP status (2xx -> none).
error_kind classify_status(int status);

// Whether an error body says the account's quota is gone (OpenAI's 429
// {"error": {"code" or "type": "insufficient_quota"}}): out of credits,
// not a rate limit.
bool is_quota_exhausted(const std::string& body);

// Whether a 4xx error says this model will not take this request, where
// another model might: longer than its context (OpenAI's
// context_length_exceeded, "maximum context length", OpenRouter's
// "context length"), or refused by its content policy
// (content_policy_violation, content_filter, OpenRouter's moderation 403).
bool is_model_refusal(int status, const std::string& body);

// The delay a 429/503 asks for, in ms, or -1 when none. `now` is the
// current time for HTTP dates.
int64_t retry_after_ms(const std::map<std::string, std::string>& headers,
                       std::time_t now);

// The provider's own error message from an error body (OpenAI and
// OpenRouter `error.message`, `detail`, `message`, or the text itself).
std::string provider_message(const std::string& body);

// `text` with every occurrence of `secret` replaced by "[redacted]".
std::string redact(std::string text, const std::string& secret);

} // namespace bgagent
