// A task worker's typed interface (semantics: actors/task_worker.hpp).
//
// Contract: the supervisor (through the worker's node gateway) hands it
// one attempt at a time; the other messages are its own (the provider's
// answer, its timers).
#pragma once

#include <cstdint>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/task.hpp"

namespace bgagent {

using task_worker_actor = caf::typed_actor<
  // (task, attempt)
  caf::reacts_to<dispatch_atom, task, uint32_t>,
  // (call generation, outcome): the provider's answer
  caf::reacts_to<provider_atom, uint64_t, call_outcome>,
  // its deadline timer: one pending at most, whatever the calls (a call
  // that outlives its deadline times out; an early one is re-armed)
  caf::reacts_to<timeout_atom>,
  // its heartbeat timer
  caf::reacts_to<tick_atom>>;

} // namespace bgagent
