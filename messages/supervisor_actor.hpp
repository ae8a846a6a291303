// The supervisor's typed interface (semantics: actors/supervisor.hpp).
//
// Contract: the only handle to the supervisor is this type, so the
// compiler checks every message sent to it; it never leaves the head.
// done / failed / denied / skipped / freed come from a node gateway (as
// itself), naming first the worker concerned (the supervisor knows workers
// by address and takes the report only from that worker's gateway).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/run.hpp"
#include "messages/task_worker_actor.hpp"

namespace bgagent {

using supervisor_actor = caf::typed_actor<
  // answered when the run ends
  caf::replies_to<run_atom>::with<run_summary>,
  // -- an attempt's end, from the gateway of the worker it was handed to:
  // (that worker, id, attempt, ...) -------------------------------------
  caf::reacts_to<done_atom, caf::actor_addr, std::string, uint32_t>,
  caf::reacts_to<failed_atom, caf::actor_addr, std::string, uint32_t,
                 call_outcome>,
  // (worker, id, attempt, why the budget said no)
  caf::reacts_to<denied_atom, caf::actor_addr, std::string, uint32_t,
                 std::string>,
  caf::reacts_to<skipped_atom, caf::actor_addr, std::string, uint32_t>,
  // the call ended with an answer the store is committing: the worker is
  // free now, and done or skipped for the attempt follows
  caf::reacts_to<freed_atom, caf::actor_addr, std::string, uint32_t>,
  // from a gateway: the store's answers to its completions of one commit,
  // each done (written) or skipped (stale) for an attempt it freed
  caf::reacts_to<done_atom, std::vector<mark_answer>>,
  // -- commands (admin, signals) --------------------------------------------
  caf::replies_to<pause_atom>::with<bool>,
  caf::replies_to<resume_atom>::with<bool>,
  caf::replies_to<drain_atom>::with<bool>,
  // (signal number): the run exits 128 + signal
  caf::replies_to<drain_atom, int32_t>::with<bool>,
  caf::replies_to<shutdown_atom>::with<bool>,
  // (ids, task_cancelled for each)
  caf::replies_to<cancel_atom, std::vector<std::string>, audit_event>::with<
    std::vector<std::string>>,
  caf::replies_to<workers_atom>::with<std::vector<std::string>>,
  // look for newly submitted or requeued tasks now (also its follow timer)
  caf::reacts_to<poll_atom>,
  caf::reacts_to<poll_timer_atom>,
  // -- the cluster ----------------------------------------------------------
  // from a remote node's gateway: (node, address, workers, names)
  caf::replies_to<join_atom, std::string, std::string,
                  std::vector<task_worker_actor>,
                  std::vector<std::string>>::with<bool>,
  // a cluster-edge actor to watch (gatekeeper, node gateway), what it is
  caf::reacts_to<watch_atom, caf::actor, std::string>,
  // from the rate_keeper: ("provider/model", seconds) its circuit has been
  // open past BG_AGENT_OUTAGE_MAX: the run stops with exit code 7
  caf::reacts_to<outage_atom, std::string, double>,
  // from the rate_keeper: ("provider/model", open) its circuit opened or
  // closed: while open, its tasks wait here but the one at its probe
  caf::reacts_to<circuit_atom, std::string, bool>,
  // -- its own timers -------------------------------------------------------
  caf::reacts_to<tick_atom>,
  // (task id) its retry wait is over
  caf::reacts_to<retry_due_atom, std::string>,
  caf::reacts_to<nodes_waited_atom>>;

} // namespace bgagent
