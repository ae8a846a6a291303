// A provider model's circuit: whether calls to it may go while the
// provider looks down (connection failures, 5xx).
//
// Contract:
// - Closed, every call goes. `threshold` "down" answers in a row open it;
//   a down answer for the same request as the last one (`repeat`: one
//   task failing again) neither counts nor breaks the run of them, so one
//   request the provider cannot serve never opens it alone.
// - Open, no call goes but one probe every `probe_every`: ask() says
//   `probe` for the first call asked once the probe is due (none in flight
//   and probe_every since it opened or since the last probe's answer),
//   `wait` for every other; wait(now) says how long until a call may ask
//   again (0: now).
// - Any answer that is not "down" closes it (the provider answered: the
//   probe, or a call let go before it opened). A down answer to the probe
//   keeps it open, the next probe probe_every after that answer. A probe
//   that got no answer (never sent) lets the next call probe at once.
// - answered() says whether this answer opened or closed it.
// - Times come from the caller: tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace bgagent {

class circuit_breaker {
public:
  using clock_type = std::chrono::steady_clock;
  using time_point = clock_type::time_point;

  enum class gate { go, probe, wait };
  enum class change { none, opened, closed };

  circuit_breaker(uint32_t threshold, clock_type::duration probe_every)
    : threshold_(threshold == 0 ? 1 : threshold), probe_every_(probe_every) {}

  bool is_open() const { return open_; }
  // When it opened (meaningful while open).
  time_point opened_at() const { return opened_at_; }

  // May a call go at `now`? `probe` marks it the probe in flight.
  gate ask(time_point now);
  // How long from `now` until a call may go (0: now); while a probe is in
  // flight, probe_every (its answer comes first, or the call was lost).
  clock_type::duration wait(time_point now) const;
  // When the next probe may go (while open with no probe in flight).
  time_point wait_until() const { return next_probe_; }
  bool probing() const { return probing_; }
  // Down answers since the last one that was not.
  uint32_t down_in_a_row() const { return down_in_a_row_; }

  // A call ended with an answer: `down` (connection failure, timeout, 5xx)
  // or not; `probe`: it was the probe.
  change answered(bool down, bool probe, time_point now,
                  bool repeat = false);
  // The probe ended without an answer (it was never sent).
  void probe_lost(time_point now);

private:
  uint32_t threshold_;
  clock_type::duration probe_every_;
  uint32_t down_in_a_row_ = 0;
  bool open_ = false;
  bool probing_ = false;
  time_point opened_at_{};
  time_point next_probe_{};
};

} // namespace bgagent
