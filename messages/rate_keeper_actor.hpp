// The rate_keeper's typed interface (semantics: actors/rate_keeper.hpp).
//
// Contract: the only handle to the rate_keeper is this type, so the
// compiler checks every message sent to it; it never leaves the head.
#pragma once

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/supervisor_actor.hpp"

namespace bgagent {

// The pace answer for a call that may fall back to another model while its
// own model's circuit is open (and no probe is due): it does not go.
constexpr uint64_t circuit_open_slot = UINT64_MAX;

using rate_keeper_actor = caf::typed_actor<
  // ("provider/model", worst-case tokens, may fall back) -> slot, once the
  // call may go; circuit_open_slot for a call that may fall back while the
  // circuit is open; 0 when the run stops
  caf::replies_to<pace_atom, std::string, uint64_t, bool>::with<uint64_t>,
  // ("provider/model", slot, actual tokens, and what the answer said:
  //  limit of requests and of tokens per minute, ms until a used-up limit
  //  resets (each -1: not said), answered 429)
  caf::reacts_to<refund_atom, std::string, uint64_t, uint64_t, int64_t,
                 int64_t, int64_t, bool>,
  // the same for a failed call, why the provider looked down
  // (call_outcome::provider_down; "": it did not), the task's id, and
  // whether the provider answered at all (false: a timeout, a call never
  // sent: it says nothing of its health) -> whether the failure is the
  // provider's (circuit open, or down for two tasks in a row): it counts
  // against no retry
  caf::replies_to<refund_atom, std::string, uint64_t, uint64_t, int64_t,
                  int64_t, int64_t, bool, std::string, std::string,
                  bool>::with<bool>,
  // ("provider/model", slot, tokens): a call that got no answer
  caf::reacts_to<refund_atom, std::string, uint64_t, uint64_t>,
  // the run stops: every waiting call, and any later one, gets slot 0
  caf::reacts_to<drain_atom>,
  // (provider, milliseconds): no call to any of its models before then
  caf::reacts_to<hold_atom, std::string, int64_t>,
  // the supervisor to tell when a circuit stays open past the outage limit
  caf::reacts_to<outage_atom, supervisor_actor>,
  // its own timer: ("provider/model")
  caf::reacts_to<wake_atom, std::string>>;

} // namespace bgagent
