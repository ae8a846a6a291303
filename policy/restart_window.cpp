#include "policy/restart_window.hpp"

namespace bgagent {

bool restart_window::record(time_point now) {
  times_.push_back(now);
  while (!times_.empty() && now - times_.front() > window_)
    times_.pop_front();
  return times_.size() > max_;
}

} // namespace bgagent
