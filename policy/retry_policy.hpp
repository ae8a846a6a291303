// What happens after an attempt fails: the supervisor's retry policy as a
// pure function of the failure, the attempt number and the settings.
//
// Contract: decide() classifies one failed attempt (attempts count from 1):
// - out_of_credits (HTTP 402): stop_run; the task goes back to pending
//   with its attempt not counted (it is not the task's fault);
// - permanent: quarantine at once, with the error as it is;
// - anything else: retry while the attempts that count are at most
//   max_retries (a 429 is the provider's limit, not the task's fault: up to
//   free_rate_limited of a task's 429 answers count against no retry, and
//   no attempt that failed while its model's circuit was open counts), after the
//   provider's Retry-After (capped at retry_after_cap_seconds) when given,
//   at once when the circuit was open (the rate_keeper holds the call until
//   a probe gets through),
//   else exponential backoff with equal jitter: d = min(initial *
//   factor^(attempt-1), cap), waited d/2 + uniform(0, d/2); once the
//   retries are used up, quarantine with "(after N attempts)" added.
// The jitter comes from the generator passed in, so tests can fix it.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace bgagent {

struct call_outcome;

struct retry_settings {
  uint32_t max_retries = 3; // retries after the first attempt
  double initial_seconds = 1;
  double factor = 2;
  double cap_seconds = 60;
  double retry_after_cap_seconds = 600;
  uint32_t free_rate_limited = 20;
};

struct retry_decision {
  enum class action { retry, quarantine, stop_run } what = action::retry;
  double delay_seconds = 0;     // retry: how long to wait
  bool from_retry_after = false; // retry: the provider said how long
  std::string error;            // quarantine: the error to record
};

class retry_policy {
public:
  explicit retry_policy(retry_settings s) : s_(s) {}

  // `rate_limited`: how many of this task's attempts, this one included,
  // were answered 429; `in_outage`: how many failed while the circuit of
  // their model was open (call_outcome::circuit_open), this one included.
  retry_decision decide(const call_outcome& failure, uint32_t attempt,
                        std::mt19937_64& rng, uint32_t rate_limited = 0,
                        uint32_t in_outage = 0) const;

  // The backoff before retry number `attempt` (no Retry-After).
  double backoff_seconds(uint32_t attempt, std::mt19937_64& rng) const;

private:
  retry_settings s_;
};

} // namespace bgagent
