// The monitor's typed interface (semantics: actors/monitor.hpp).
//
// Contract: the only handle to the monitor is this type, so the compiler
// checks every message sent to it; it never leaves the head.
#pragma once

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/events.hpp"
#include "messages/outcome_kind.hpp"
#include "messages/run.hpp"

namespace bgagent {

using monitor_actor = caf::typed_actor<
  // (source, busy, task id): the dead man's switch
  caf::reacts_to<heartbeat_atom, std::string, bool, std::string>,
  // (what happened to an attempt, task id): failure escalation, metrics
  caf::reacts_to<outcome_atom, outcome_kind, std::string>,
  caf::reacts_to<alert_atom, alert>,
  caf::reacts_to<budget_atom, budget_snapshot>,
  // (workers, nodes)
  caf::reacts_to<workers_atom, uint64_t, uint64_t>,
  // (calls in flight delta, latency of a finished call)
  caf::reacts_to<calls_atom, int64_t, double>,
  caf::reacts_to<pause_atom, bool>,
  caf::replies_to<metrics_atom>::with<metrics_snapshot>,
  // answered when the alerts raised before it are out
  caf::replies_to<flush_atom>::with<flush_atom>,
  // its own timer
  caf::reacts_to<tick_atom>>;

} // namespace bgagent
