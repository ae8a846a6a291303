#include "policy/circuit_breaker.hpp"

namespace bgagent {

circuit_breaker::clock_type::duration
circuit_breaker::wait(time_point now) const {
  if (!open_)
    return clock_type::duration::zero();
  if (probing_)
    return probe_every_;
  return now < next_probe_ ? next_probe_ - now
                           : clock_type::duration::zero();
}

circuit_breaker::gate circuit_breaker::ask(time_point now) {
  if (!open_)
    return gate::go;
  if (probing_ || now < next_probe_)
    return gate::wait;
  probing_ = true;
  return gate::probe;
}

circuit_breaker::change circuit_breaker::answered(bool down, bool probe,
                                                  time_point now,
                                                  bool repeat) {
  if (probe)
    probing_ = false;
  if (!down) {
    down_in_a_row_ = 0;
    if (!open_)
      return change::none;
    open_ = false;
    probing_ = false;
    return change::closed;
  }
  if (!repeat)
    ++down_in_a_row_;
  if (open_) {
    if (probe)
      next_probe_ = now + probe_every_;
    return change::none;
  }
  if (down_in_a_row_ < threshold_)
    return change::none;
  open_ = true;
  probing_ = false;
  opened_at_ = now;
  next_probe_ = now + probe_every_;
  return change::opened;
}

void circuit_breaker::probe_lost(time_point now) {
  if (!probing_)
    return;
  probing_ = false;
  if (next_probe_ > now)
    next_probe_ = now;
}

} // namespace bgagent
