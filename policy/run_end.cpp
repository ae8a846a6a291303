#include "policy/run_end.hpp"

namespace bgagent {

const char* to_string(stop_reason r) {
  switch (r) {
    case stop_reason::none: return "";
    case stop_reason::drain: return "drain";
    case stop_reason::shutdown: return "shutdown";
    case stop_reason::signal: return "signal";
    case stop_reason::budget: return "budget";
    case stop_reason::out_of_credits: return "out_of_credits";
    case stop_reason::restart_intensity: return "restart_intensity";
    case stop_reason::outage: return "outage";
    case stop_reason::internal: return "internal";
  }
  return "";
}

std::string run_stop::text() const {
  switch (reason) {
    case stop_reason::signal: return "signal:" + std::to_string(signal);
    case stop_reason::internal:
    case stop_reason::outage:
      return detail.empty() ? to_string(reason)
                            : std::string(to_string(reason)) + ": " + detail;
    default: return to_string(reason);
  }
}

int exit_code_for(const run_stop& stop, bool work_left) {
  switch (stop.reason) {
    case stop_reason::budget:
    case stop_reason::out_of_credits: return exit_code::budget;
    case stop_reason::signal: return 128 + stop.signal;
    case stop_reason::outage: return exit_code::outage;
    case stop_reason::restart_intensity:
    case stop_reason::internal: return exit_code::internal;
    default: return work_left ? exit_code::stopped : exit_code::ok;
  }
}

const char* run_state_for(int code) {
  switch (code) {
    case exit_code::ok: return "finished";
    case exit_code::budget: return "stopped_budget";
    case exit_code::internal: return "failed";
    default: return "interrupted";
  }
}

} // namespace bgagent
