// What one provider call produced: a validated result or a classified error,
// plus the usage it cost.
//
// Contract: providers fill this in; the worker never guesses. `kind` decides
// what happens next (see error_kind). When `usage_reported` is false the
// worker charges the whole reservation, never zero.
//
// `usage_invalid`: the provider answered (2xx, so it may have billed) but
// its `usage` was a lie: a token count that is not a whole number, negative,
// NaN/infinite or absurd (over 10,000,000 for one call), or a `usage.cost`
// that is not a number, negative or absurd (over $1,000 for one call). Then
// the outcome is a retryable failure whose `error` names the field and the
// value (e.g. "openai answer: usage.prompt_tokens = -5 is not a valid token
// count"), `usage_reported` and `cost_reported` are false and the token and
// cost fields are 0, so whoever charges the attempt charges the whole
// reservation (never 0, never the absurd figure); and whoever handles the
// outcome on the head raises a critical `lying_usage` alert with that error.
// Usage that is believable but above the reservation is NOT invalid: it is
// charged as reported and the budget_keeper raises `usage_over_reservation`.
// (JSON has no NaN or infinity: a number beyond a double's range makes the
// whole answer malformed JSON, retryable and charged the reservation as a
// 2xx without usage, but not flagged.)
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace bgagent {

enum class error_kind : uint8_t {
  none = 0,       // success
  retryable = 1,  // timeouts, connection errors, 408/409/429/5xx, bad output
  permanent = 2,  // 400/401/403/404/422, unknown task type: quarantine now
  out_of_credits = 3, // 402: stop the run like a budget denial
};

const char* to_string(error_kind k);

struct call_outcome {
  bool ok = false;
  std::string result;  // compact JSON of the validated result
  std::string error;   // names the HTTP status and the provider's message
  uint8_t kind = 0;    // error_kind
  int64_t retry_after_ms = -1; // from Retry-After / retry-after-ms, or -1
  int http_status = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;
  // Of those, read from the prompt cache and spent reasoning (usage.
  // prompt_tokens_details.cached_tokens, completion_tokens_details.
  // reasoning_tokens; 0 when not reported).
  uint64_t cached_tokens = 0;
  uint64_t reasoning_tokens = 0;
  bool usage_reported = false; // provider sent usage.*_tokens
  bool cost_reported = false;  // provider sent usage.cost
  bool usage_invalid = false;  // provider sent impossible usage (see above)
  std::string provider;
  std::string model;
  // An answer that failed the task's schema: the answer (cut to at most
  // 65,536 characters) and the validation error, kept for the repair turn and shown
  // with a quarantined task.
  std::string raw_answer;
  std::string answer_error;
  // Chat tasks (OpenAI Batch lines): the provider's whole JSON answer.
  std::string response;
  // What the answer's rate-limit headers say (providers/
  // rate_limit_headers.hpp): limits per minute, and how long until a used
  // up one resets; -1: not said.
  int64_t limit_requests = -1;
  int64_t limit_tokens = -1;
  int64_t limit_wait_ms = -1;
  // The provider looked down: a connection failure or a 5xx (what opens
  // its circuit: policy/circuit_breaker.hpp); a timeout is not.
  bool provider_down = false;
  // No answer came back for a request that was sent whole (a connection
  // that dropped, a timeout): the provider may have processed and billed
  // it, so the attempt is charged its reservation.
  bool sent_unanswered = false;
  // Set by the head's node gateway only (whatever a node says), from the
  // rate_keeper: the attempt failed while its model's circuit was open, or
  // the provider was down for it and for another task's call right before:
  // the provider's fault, so it counts against no retry.
  bool provider_fault = false;
  // The model refused this request: longer than its context, or against
  // its content policy (a 4xx saying so). Another model may take it.
  bool model_refused = false;
  // The request's response-cache key (providers/task_request.hpp), set on
  // the head only (the gateway, the batch_runner): a completed answer is
  // kept under it. "" : not cached.
  std::string fingerprint;

  error_kind error_class() const { return static_cast<error_kind>(kind); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_outcome& x) {
  return f(caf::meta::type_name("call_outcome"), x.ok, x.result, x.error,
           x.kind, x.retry_after_ms, x.http_status, x.prompt_tokens,
           x.completion_tokens, x.cost_usd, x.usage_reported, x.cost_reported,
           x.provider, x.model, x.usage_invalid, x.raw_answer,
           x.answer_error, x.response, x.limit_requests, x.limit_tokens,
           x.limit_wait_ms, x.provider_down, x.provider_fault,
           x.model_refused, x.cached_tokens, x.reasoning_tokens,
           x.fingerprint, x.sent_unanswered);
}

inline call_outcome make_failure(error_kind k, std::string error,
                                 int http_status = 0) {
  call_outcome out;
  out.ok = false;
  out.kind = static_cast<uint8_t>(k);
  out.error = std::move(error);
  out.http_status = http_status;
  return out;
}

} // namespace bgagent
