// The rate_keeper: holds every call of the cluster (local workers and
// remote nodes alike: the gateways ask it) to BG_AGENT_RPM requests and
// BG_AGENT_TPM tokens per minute for each provider and model, and holds
// every call to a provider and model while its Retry-After runs.
//
// Contract (messages/rate_keeper_actor.hpp):
//   (pace_atom, key, tokens) -> slot   answered when the call fits its
//       key's window (policy/rate_window.hpp), first come first served per
//       key; tokens are the reservation's worst case. Waiting is a delayed
//       message to itself, never a blocked thread.
//   (refund_atom, key, slot, tokens, limit_requests, limit_tokens, wait_ms,
//    limited)                          the call's actual tokens replace its
//       worst case in the window, and the answer teaches the key's pace
//       where BG_AGENT_RPM / _TPM do not set it: the limits its headers give
//       (per minute, scaled to the window) are held; a used-up limit holds
//       the key until it resets; with neither limits nor headers, a 429
//       without Retry-After (`limited`) halves the calls allowed in flight
//       (to half of those in flight) and each answer without one adds
//       1/cap (additive increase, multiplicative decrease).
//   (hold_atom, provider, ms)          no call to any model of the provider
//       goes before now + ms (a 429's Retry-After), those admitted aside.
//   (drain_atom)                        the run stops: waiting paces and
//       every later one are answered slot 0 (the call must not go).
// Holds last at most 600 s. With neither limit nor hold, pace is answered
// at once.
#pragma once

#include <cstdint>

#include <caf/fwd.hpp>

#include "messages/rate_keeper_actor.hpp"

namespace bgagent {

struct rate_settings {
  uint32_t rpm = 0; // BG_AGENT_RPM, per provider and model (0: none)
  uint64_t tpm = 0; // BG_AGENT_TPM, per provider and model (0: none)
  // BG_AGENT_RATE_WINDOW: the limits are held over this sliding window,
  // scaled to it (rpm x window / 60 calls per window, at least 1).
  double window_seconds = 60;
  // A call let go longer ago than this has ended (BG_AGENT_TIMEOUT and a
  // margin), refunded or not: it no longer counts as in flight.
  double call_seconds = 330;
};

rate_keeper_actor spawn_rate_keeper(caf::actor_system& sys,
                                    rate_settings s);

} // namespace bgagent
