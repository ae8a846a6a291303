// The rate_keeper: holds every call of the cluster (local workers and
// remote nodes alike: the gateways ask it) to BG_AGENT_RPM requests and
// BG_AGENT_TPM tokens per minute for each provider and model, holds every
// call to a provider and model while its Retry-After runs, and keeps each
// provider model's circuit (policy/circuit_breaker.hpp): while it is open
// only one probe call goes every BG_AGENT_PROBE_SECONDS.
//
// Contract (messages/rate_keeper_actor.hpp):
//   (pace_atom, key, tokens, may_fall_back) -> slot   answered when the
//       call fits its key's window (policy/rate_window.hpp), first come
//       first served per key; tokens are the reservation's worst case.
//       Waiting is a delayed message to itself, never a blocked thread.
//       While the key's circuit is open and no probe is due, a call that
//       may fall back to another model is answered circuit_open_slot at
//       once (waiting or not) instead of waiting.
//   (refund_atom, key, slot, tokens, limit_requests, limit_tokens, wait_ms,
//    limited)                          the call's actual tokens replace its
//       worst case in the window, and the answer teaches the key's pace
//       where BG_AGENT_RPM / _TPM do not set it: the limits its headers give
//       (per minute, scaled to the window) are held; a used-up limit holds
//       the key until it resets; with neither limits nor headers, a 429
//       without Retry-After (`limited`) halves the calls allowed in flight
//       (to half of those in flight) and each answer without one adds
//       1/cap (additive increase, multiplicative decrease).
//   (refund_atom, ..., limited, down, task, answered) -> provider's fault
//       the same for a failed call; `down` (why: a connection failure or a
//       5xx) counts toward opening the key's circuit unless it is for the
//       same task as the last down answer; any other answer closes it; no
//       answer (a timeout, a call never sent) leaves it as it is. The
//       reply says whether the failure is the provider's: the circuit is
//       open after it, or this and the down answer before (another
//       task's) were down. The attempt then counts against no retry. Opening raises a critical
//       `provider_unavailable` alert, audits `circuit_opened` and records
//       the circuit in the store (status shows it); closing audits
//       `circuit_closed`. A circuit open for BG_AGENT_OUTAGE_MAX seconds is
//       told once to the supervisor given by (outage_atom, supervisor):
//       (outage_atom, key, seconds).
//   (hold_atom, provider, ms)          no call to any model of the provider
//       goes before now + ms (a 429's Retry-After), those admitted aside.
//   (drain_atom)                        the run stops: waiting paces and
//       every later one are answered slot 0 (the call must not go).
// Holds last at most 600 s. Without BG_AGENT_RPM / _TPM a key starts
// slow: its first call goes alone, and the first answer (its rate-limit
// headers, or none) sets the pace; after that, with neither limit nor
// hold, pace is answered at once.
#pragma once

#include <cstdint>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/call_counters.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/monitor_actor.hpp"
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
  // Down answers in a row that open a circuit; BG_AGENT_PROBE_SECONDS;
  // BG_AGENT_OUTAGE_MAX.
  uint32_t circuit_threshold = 5;
  double probe_seconds = 30;
  double outage_max_seconds = 600;
  // Without BG_AGENT_RPM / _TPM, a key's first call goes alone and its
  // answer's headers set the pace for the rest (slow start).
  bool slow_start = true;
};

// Whom the rate_keeper tells about circuits (each may be null: tests).
struct rate_keeper_links {
  monitor_actor monitor;           // alerts
  auditor_actor auditor;           // circuit_opened / circuit_closed
  checkpointer_actor checkpointer; // the circuits open, for `status`
  // Circuits open, calls waiting, for metrics and the live line.
  std::shared_ptr<call_counters> counters;
};

rate_keeper_actor spawn_rate_keeper(caf::actor_system& sys,
                                    rate_settings s,
                                    rate_keeper_links links = {});

} // namespace bgagent
