// The node gateway: the head-side end of remote task workers. It turns the
// steps of one attempt into one request and one message, so a remote
// attempt costs four messages on the network (dispatch, begin and its
// answer, finish) instead of fourteen.
//
// Contract (messages, request -> reply), sent by remote task workers:
//   (begin_atom, string id, uint32 attempt, uint64 tokens, double cost,
//    string started_detail, string node)  -> (reservation, bool marked)
//       asks the budget_keeper for the reservation; if granted, marks the
//       task running through the checkpointer; if marked, audits
//       task_started (with the node) and counts the call in flight with the
//       monitor. Granted but not marked: the reservation is given back.
//   (finish_atom, string id, uint32 attempt, uint64 reservation,
//    call_outcome, usage, double latency_seconds, string node,
//    string completed_detail, string failed_detail)   (no reply)
//       commits the usage to the budget_keeper; stores a success through
//       the checkpointer (durable before it is reported) or the usage of a
//       failure in the ledger; audits task_completed / task_failed; tells
//       the supervisor done / skipped / failed *as the worker* (send_as), so
//       the supervisor sees the same messages as from a local worker.
// The same order and rules as task_worker.hpp, only executed on the head.
// If a worker's node is lost between begin and finish, the gateway gives
// its reservation back and ends its call in flight.
#pragma once

#include <caf/fwd.hpp>

namespace bgagent {

struct worker_context;

caf::actor spawn_node_gateway(caf::actor_system& sys,
                              const worker_context& head);

} // namespace bgagent
