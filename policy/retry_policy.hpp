// What happens after an attempt fails: the supervisor's retry policy as a
// pure function of the failure, the attempt number and the settings.
//
// Contract: decide() classifies one failed attempt (attempts count from 1):
// - out_of_credits (HTTP 402): stop_run; the task goes back to pending
//   with its attempt not counted (it is not the task's fault);
// - the provider's fault (call_outcome::provider_fault: its model's
//   circuit was open, or it was down twice in a row): not counted (the
//   supervisor counts it in `not_counted`), and without a Retry-After
//   retried at once (the rate_keeper holds the call while the circuit is
//   open);
// - a model that refused the request (call_outcome::model_refused: too
//   long for its context, its content policy) while the task has another
//   model to try: retry at once on the next model, not counted;
// - permanent: quarantine at once, with the error as it is;
// - anything else: retry while the attempts that count are at most
//   max_retries (a 429 is the provider's limit, not the task's fault: up to
//   `not_counted` of its attempts count against no retry: the supervisor's
//   count of the provider's faults), after the
//   provider's Retry-After (capped at retry_after_cap_seconds) when given,
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
  bool next_model = false;       // retry: on the task's next model
  std::string error;            // quarantine: the error to record
};

class retry_policy {
public:
  explicit retry_policy(retry_settings s) : s_(s) {}

  // `not_counted`: how many of this task's attempts, this one included,
  // count against no retry; `model_left`: the task has a model after the
  // one that answered.
  retry_decision decide(const call_outcome& failure, uint32_t attempt,
                        std::mt19937_64& rng, uint32_t not_counted = 0,
                        bool model_left = false) const;

  // Whether a 429 is free: the first free_rate_limited of a task's 429s in
  // a run (`rate_limited` counts them, this one included).
  bool rate_limit_is_free(uint32_t rate_limited) const {
    return rate_limited <= s_.free_rate_limited;
  }

  // The backoff before retry number `attempt` (no Retry-After).
  double backoff_seconds(uint32_t attempt, std::mt19937_64& rng) const;

private:
  retry_settings s_;
};

} // namespace bgagent
