// Requests and tokens per minute for one provider and model, counted over
// a sliding window as providers count them, so calls admitted here are not
// answered 429 for exceeding BG_AGENT_RPM / BG_AGENT_TPM.
//
// Contract:
// - wait(now, tokens) says how long until a call of `tokens` fits: fewer
//   than `rpm` calls admitted in the window ending at `now`, and their
//   tokens plus these at most `tpm` (0: no limit). A call larger than the
//   whole `tpm` fits once the window is empty, so it is never starved.
//   A hold (a provider's Retry-After) makes every call wait until it ends.
// - admit(now, tokens) records the call and returns its slot; settle(slot,
//   tokens) replaces its tokens by the actual ones (the reservation's worst
//   case is admitted, the usage refunds it) while it is in the window.
// - The window is `window_seconds` plus `margin_seconds`, so a request that
//   reaches the provider a little after it left never counts in a minute
//   the provider still sees as full.
// - Times come from the caller: tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace bgagent {

class rate_window {
public:
  using clock_type = std::chrono::steady_clock;
  using time_point = clock_type::time_point;
  using duration = std::chrono::nanoseconds;

  rate_window(uint64_t rpm, uint64_t tpm, double window_seconds = 60,
              double margin_seconds = 0.5);

  duration wait(time_point now, uint64_t tokens);
  uint64_t admit(time_point now, uint64_t tokens);
  void settle(uint64_t slot, uint64_t tokens);
  // No call before `until` (a later hold extends an earlier one).
  void hold_until(time_point until);

  // New limits (per window; 0: none) for the calls to come.
  void set_limits(uint64_t rpm, uint64_t tpm) {
    rpm_ = rpm;
    tpm_ = tpm;
  }
  uint64_t rpm() const { return rpm_; }
  uint64_t tpm() const { return tpm_; }

  size_t calls_in_window() const { return calls_.size(); }
  uint64_t tokens_in_window() const { return tokens_; }

private:
  struct call {
    time_point at;
    uint64_t slot;
    uint64_t tokens;
  };
  void expire(time_point now);
  uint64_t clamp(uint64_t tokens) const;

  uint64_t rpm_;
  uint64_t tpm_;
  duration window_;
  std::deque<call> calls_; // admission order: times and slots ascending
  uint64_t tokens_ = 0;
  uint64_t next_slot_ = 1;
  time_point held_until_{};
};

} // namespace bgagent
