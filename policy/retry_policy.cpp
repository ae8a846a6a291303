#include "policy/retry_policy.hpp"

#include <algorithm>
#include <cmath>

#include "messages/call_outcome.hpp"

namespace bgagent {

double retry_policy::backoff_seconds(uint32_t attempt,
                                     std::mt19937_64& rng) const {
  double d = s_.initial_seconds *
             std::pow(s_.factor, static_cast<double>(attempt - 1));
  d = std::min(d, s_.cap_seconds);
  // Equal jitter: half fixed, half random, so retries of many tasks spread.
  std::uniform_real_distribution<double> jitter(0.0, d / 2);
  return d / 2 + jitter(rng);
}

retry_decision retry_policy::decide(const call_outcome& failure,
                                    uint32_t attempt, std::mt19937_64& rng,
                                    uint32_t not_counted,
                                    bool model_left) const {
  retry_decision d;
  if (failure.model_refused && model_left) {
    d.what = retry_decision::action::retry;
    d.next_model = true;
    return d;
  }

  switch (failure.error_class()) {
    case error_kind::out_of_credits:
      d.what = retry_decision::action::stop_run;
      return d;
    case error_kind::permanent:
      d.what = retry_decision::action::quarantine;
      d.error = failure.error;
      return d;
    default:
      break;
  }
  // Attempts that count, this one included (0: it was not counted).
  uint32_t counted = attempt > not_counted ? attempt - not_counted : 0;
  if (counted >= 1 + s_.max_retries) {
    d.what = retry_decision::action::quarantine;
    d.error = failure.error + " (after " + std::to_string(attempt) +
              " attempts)";
    return d;
  }
  d.what = retry_decision::action::retry;
  if (failure.retry_after_ms >= 0) {
    d.from_retry_after = true;
    d.delay_seconds = std::min(failure.retry_after_ms / 1000.0,
                               s_.retry_after_cap_seconds);
  } else if (failure.provider_fault) {
    d.delay_seconds = 0; // held at the rate_keeper while the circuit is open
  } else {
    d.delay_seconds = backoff_seconds(attempt, rng);
  }
  return d;
}

} // namespace bgagent
