// A task worker: runs one attempt of one task at a time.
//
// Contract (messages):
//   (dispatch_atom, task, uint32 attempt)   from the supervisor
// For each dispatch it, in order: asks the budget_keeper for a reservation
// of the worst case (estimated prompt + max_tokens, and its cost); marks the
// task running through the checkpointer (durable before the call); starts
// the provider call without blocking (the outcome comes back as a message);
// enforces the per-attempt timeout with a delayed message; commits the
// actual usage to the budget_keeper; stores a success through the
// checkpointer (durable before it is reported); and tells the supervisor:
//   (done_atom, string id, uint32 attempt)
//   (failed_atom, string id, uint32 attempt, call_outcome)
//   (denied_atom, string id, uint32 attempt, string reason)  budget said no;
//        the task was never marked running
//   (skipped_atom, string id, uint32 attempt) the store refused it (cancelled
//        or superseded)
// A remote worker (ctx.gateway set) sends the same steps to the head's node
// gateway instead: a begin request (reserve + mark running + task_started)
// and a one-way finish (commit + store + audit + report), see
// node_gateway.hpp. While busy it beats to the monitor every heartbeat
// interval. A provider
// that throws kills the worker: the supervisor sees the down message,
// restarts a worker and counts the attempt. Audit events: task_started,
// task_completed, task_failed (with node name when remote).
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "providers/provider.hpp"

namespace bgagent {

struct worker_context;

struct worker_settings {
  std::string name;              // e.g. "head/worker-3"
  std::string node = "head";     // node name for audit lines
  double timeout_seconds = 300;  // per attempt
  double heartbeat_seconds = 5;
};

caf::actor spawn_task_worker(caf::actor_system& sys,
                             const worker_context& ctx, provider_ptr p,
                             worker_settings s);

} // namespace bgagent
