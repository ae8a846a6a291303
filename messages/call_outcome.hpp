// What one provider call produced: a validated result or a classified error,
// plus the usage it cost.
//
// Contract: providers fill this in; the worker never guesses. `kind` decides
// what happens next (see error_kind). When `usage_reported` is false the
// worker charges the whole reservation, never zero.
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
  bool usage_reported = false; // provider sent usage.*_tokens
  bool cost_reported = false;  // provider sent usage.cost
  std::string provider;
  std::string model;

  error_kind error_class() const { return static_cast<error_kind>(kind); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_outcome& x) {
  return f(caf::meta::type_name("call_outcome"), x.ok, x.result, x.error,
           x.kind, x.retry_after_ms, x.http_status, x.prompt_tokens,
           x.completion_tokens, x.cost_usd, x.usage_reported, x.cost_reported,
           x.provider, x.model);
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
