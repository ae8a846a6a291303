// What happened to an attempt, as the monitor counts it.
//
// Contract: one name each (to_string), used in metrics and alerts.
#pragma once

#include <cstdint>

namespace bgagent {

enum class outcome_kind : uint8_t {
  completed,   // the task completed
  failed,      // the attempt failed (counts toward failure escalation)
  retry,       // the task waits for another attempt
  quarantined, // the task is given up on
  restart,     // a worker died or hung and was replaced
};

const char* to_string(outcome_kind k);

} // namespace bgagent
