// The supervisor: owns the run. It loads pending work from the checkpointer,
// spawns and monitors the task workers, dispatches tasks to idle workers,
// schedules retries, quarantines, restarts crashed workers, and ends the run.
//
// Contract (messages/supervisor_actor.hpp):
//   (run_atom)        -> run_summary, answered when the run ends
//   from a worker's gateway, about that worker's attempt: done_atom /
//   failed_atom / denied_atom / skipped_atom / freed_atom (see
//   node_gateway.hpp). freed makes the worker idle while its answer is
//   stored (the run does not end before its done or skipped); a report
//   naming a worker that does not hold exactly that attempt, or not sent
//   by that worker's gateway, idles nothing.
// It spawns the head's own node gateways for its local workers (one per
// scheduler thread by default: supervisor_settings::local_gateways), and
// sends to workers anonymously (dispatch, exit), so that no remote node
// ever holds the supervisor's handle.
//   (pause_atom) (resume_atom) (drain_atom)   -> bool   admin and signals:
//       pause stops dispatching; drain lets in-flight calls finish, starts
//       nothing new and ends the run with a resumable state
//   (drain_atom, int32 signal)                -> bool   same, for a signal:
//       the run exits 128 + signal (policy/run_end.hpp)
//   (poll_atom)        look for newly submitted or requeued tasks now
//   (cancel_atom, vector<string> ids, audit_event each)
//                                             -> vector<string> cancelled
//       `each` (task_cancelled, its task_id set per task) is committed
//       with each cancellation, in the same transaction
//   (join_atom, string node, string address, vector<task_worker_actor> workers,
//    vector<string> names)                    -> bool   from a remote node's
//       gateway (actors/node_gateway.hpp), which vouches for node and address
//   (watch_atom, actor edge, string what)     a cluster-edge actor
//       (gatekeeper, node gateway) to watch: if it fails, a critical
//       `cluster_edge_failed` alert, and the run carries on
//   (workers_atom)     -> vector<string> "node worker-name state" lines
//   (circuit_atom, string key, bool open)     from the rate_keeper: a
//       provider model's circuit opened or closed. While it is open, tasks
//       that can only go to it (no fallback model left) wait in memory
//       (at most 10,000; more stay in the store until it closes), except
//       one held by a worker, which waits for the probe; the longest
//       waiting takes the next turn. Closed: they all go back to the queue.
//   (outage_atom, string key, double seconds)  from the rate_keeper: a
//       circuit open past BG_AGENT_OUTAGE_MAX: a critical provider_outage
//       alert, and the run drains and exits 7 (resumable)
// Phases, each its own behavior (become): starting (until run_atom) ->
// running (fetch, dispatch) -> draining (a stop reason: calls in flight
// finish, nothing new starts, joins refused) -> finishing (the store's
// counts for the summary) -> awaiting_nodes (remote workers told to leave,
// at most 3 s) -> the summary is delivered. A run whose queue empties goes
// from running to finishing.
// Policies (pure units in policy/, tested without actors):
// - Workers (policy/worker_pool.hpp): idle and busy, each busy one with its
//   exact attempt; an attempt whose answer is being stored frees its worker
//   and is waited for until reported or its gateway ends.
// - Retries (policy/retry_policy.hpp): backoff with jitter or the
//   provider's Retry-After, then quarantine; permanent errors quarantine at
//   once; out_of_credits (HTTP 402) stops the run like a budget denial.
//   The provider's faults (a run's first 429s of a task, failures while
//   its model is down: call_outcome::provider_fault) count against no
//   retry (tasks.free_attempts keeps them across runs) and feed no
//   failure escalation; a model's refusal (model_refused) moves the task
//   to its next model (task.model_index), not counted.
// - A worker that dies mid-attempt is replaced; the attempt counts against
//   its task. More than max_restarts restarts within restart_window seconds
//   (policy/restart_window.hpp) raise a critical alert and end the run.
// - How the run ends maps to its exit code in one place
//   (policy/run_end.hpp).
// - A worker silent for longer than timeout + grace while running is
//   presumed hung: it is killed and replaced the same way.
// - A budget denial stops dispatching; in-flight calls finish; exit code 3.
//   With stay_on_budget (`serve`) the run does not stop: the denied task
//   goes back to the queue and dispatching waits (the monitor's dead man's
//   switch paused) until the budget_keeper's figures show more room than at
//   the denial (a limit raised, the period rolled over, reservations
//   released), looked at on each poll (the follow timer, or a poll_atom),
//   and at least once a minute.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/call_counters.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/store_handles.hpp"
#include "messages/monitor_actor.hpp"
#include "messages/rate_keeper_actor.hpp"
#include "messages/supervisor_actor.hpp"
#include "providers/provider.hpp"

namespace bgagent {

class cache_filter;

struct supervisor_settings {
  uint32_t workers = 4;
  // The head's own node gateways, among which its local workers are
  // spread round-robin (worker N on gateway (N-1) % G), so the head's half
  // of local attempts runs on several scheduler threads at once. 0: one
  // per scheduler thread, at most one per worker.
  uint32_t local_gateways = 0;
  uint32_t max_retries = 3;
  double retry_initial_seconds = 1;
  double retry_factor = 2;
  double retry_cap_seconds = 60;
  double retry_after_cap_seconds = 600;
  uint32_t max_restarts = 10;
  double restart_window_seconds = 60;
  double timeout_seconds = 300;
  double heartbeat_seconds = 5;
  bool follow = false;
  bool stay_on_budget = false; // serve: wait for budget instead of stopping
  double poll_interval_seconds = 10;
  std::string node = "head";
  // The response cache and how requests are built (gateway_settings).
  bool cache = false;
  bool response_format = true;
  std::shared_ptr<cache_filter> cache_known;
};

struct run_handles {
  // The store's writers, one per file (messages/store_handles.hpp).
  store_handles store;
  budget_keeper_actor budget_keeper;
  auditor_actor auditor;
  monitor_actor monitor;
  // Shared with the monitor (see call_counters.hpp); null: the supervisor
  // keeps its own, which nothing reads.
  std::shared_ptr<call_counters> counters;
  // Paces every call (actors/rate_keeper.hpp); null: none.
  rate_keeper_actor rate_keeper;
};

supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_settings s, run_handles h,
                                  provider_ptr p);

} // namespace bgagent
