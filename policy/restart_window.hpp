// Restart intensity, as Erlang supervisors count it: more than
// max_restarts worker restarts within window_seconds end the run.
//
// Contract: record(now) notes one restart and returns true when the
// restarts within the window ending at `now` exceed max_restarts (and on
// every later restart while they still do). Times come from the caller, so
// tests need no clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace bgagent {

class restart_window {
public:
  using time_point = std::chrono::steady_clock::time_point;

  restart_window(uint32_t max_restarts, double window_seconds)
    : max_(max_restarts), window_(window_seconds) {}

  bool record(time_point now);
  size_t in_window() const { return times_.size(); }

private:
  uint32_t max_;
  std::chrono::duration<double> window_;
  std::deque<time_point> times_;
};

} // namespace bgagent
