// The node gateway: the head's half of every attempt, for the workers of one
// node. The head has several for its local workers (one per scheduler
// thread by default, each with its share of them) and one per remote node
// (spawned by the gatekeeper after that node's hello); it is the only head
// actor a remote node can address.
//
// Contract (messages/node_gateway_actor.hpp, request -> reply):
//   (dispatch_atom, task_worker_actor worker, task, uint32 attempt)   from the supervisor
//       only: records the attempt as handed to that worker and passes the
//       task on anonymously. Only handed attempts may begin and finish.
// From task workers:
//   (begin_atom, string id, uint32 attempt, uint64 worst_prompt_tokens,
//    uint64 max_tokens, double worst_cost, string "provider/model",
//    bool may_fall_back) -> int32 begin_answer
//       paces the call with the rate_keeper (which answers at once, for a
//       call that may fall back, when the model's circuit is open: then
//       begin_answer::fall_back, task_fallback audited, and the worker may
//       begin the same attempt again with its next model); then
//       reserves the worst case (prompt + max_tokens tokens, worst_cost
//       dollars) with the budget_keeper; if granted, marks
//       the task running with that reservation and audits task_started
//       (one checkpointer transaction); counts the call in flight (the
//       run's call_counters, no message): begin_answer::go.
//       begin_answer::refused: the worker stays idle; the gateway has told the supervisor
//       (denied: budget; skipped: the store no longer wants the task).
//   (finish_atom, string id, uint32 attempt, call_outcome,
//    bool charge_reservation, double latency_seconds)   (no reply)
//       accepted only for an attempt this gateway began for that worker
//       (anything else is refused and audited). The usage charged is the
//       provider's, or the whole reservation when it reported none, lied
//       (call_outcome::usage_invalid: critical `lying_usage` alert) or
//       the call timed out after it was sent (`charge_reservation`,
//       audited budget_charged). A remote node's figures are bounded by
//       the reservation (critical `usage_over_reservation` alert when
//       over). A success is stored (complete) and a failure's usage
//       recorded, each with its audit event in the same transaction; only
//       then is the supervisor told done / skipped / failed (each report
//       is sent by the gateway as itself, naming the worker, the task and the
//       attempt).
//       A success frees the worker at once (freed_atom, before its
//       complete is sent): it takes its next attempt while the answer
//       commits, and done or skipped follows. A lost node's gateway stays
//       until every answer it sent to the store has been reported.
//   (heartbeat_atom, string worker_name, bool busy, string task_id)
//       forwarded to the monitor (a remote worker's name must start with
//       "NODE/").
//   (join_atom, vector<task_worker_actor> workers, vector<string> names)
//       -> bool
//       remote gateways: adds the node's workers to the run.
// Every message from a worker is checked against what was handed to that
// worker; anything else is refused and audited (`admin_refused`).
// A worker that dies (or whose node is lost) with an attempt open ends its
// call in flight here; the store charges that attempt's reservation when
// the supervisor moves the task on. A remote gateway ends when its node is
// lost; all end with the gatekeeper or the supervisor (which send
// `kill`: a gateway obeys no other exit message).
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/node_id.hpp>

#include "messages/node_gateway_actor.hpp"

namespace bgagent {

struct head_handles;
class cache_filter;

struct gateway_settings {
  std::string node = "head";     // the node's name in audit lines
  std::string address = "local"; // its network address, for audit lines
  bool remote = false;           // bound the usage it reports
  // The response cache (DESIGN.md section 13): a begin of a task at
  // temperature 0 whose request (providers/task_request.hpp, computed here,
  // never taken from the node) has a cached answer is completed from it,
  // no call (begin_answer::cached); a completed answer is kept under its
  // request's fingerprint. Off with --no-cache, and for the offline
  // provider (its answers cost nothing).
  bool cache = false;
  bool response_format = true;   // as the requests are built
  // The cache's fingerprints in memory: a request surely not cached is
  // not looked up in the store (null: every one is); an answer is added
  // to it as it goes to the store, so the next equal request asks.
  std::shared_ptr<cache_filter> cache_known;
};

node_gateway_actor spawn_node_gateway(caf::actor_system& sys,
                                      const head_handles& h,
                                      gateway_settings s);

} // namespace bgagent
