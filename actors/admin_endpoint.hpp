// The admin endpoint: what the gatekeeper hands an admin node after a valid
// hello. One per admin session; it obeys only the node that said hello and
// ends when that node's session actor goes away (or after 120 s if no
// command ever came).
//
// Contract (messages/admin_endpoint_actor.hpp, request -> reply):
//   (status_atom)                        -> admin_status
//   (pause_atom) (resume_atom) (drain_atom) (shutdown_atom) -> bool
//   (set_budget_atom, budget_change)              -> budget_snapshot
//   (requeue_atom, vector<string> ids, bool all_quarantined)
//                                        -> vector<string> requeued
//   (cancel_atom, vector<string> ids)    -> vector<string> cancelled
//   (workers_atom)                       -> vector<string>
// Every command is audited as `admin_command` with the admin node's address
// and name; a message from any other node is refused (`admin_refused`).
// Requeued tasks are audited `task_requeued` and the supervisor is asked to
// look for work at once.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "messages/admin_endpoint_actor.hpp"

namespace bgagent {

struct head_handles;

admin_endpoint_actor spawn_admin_endpoint(caf::actor_system& sys,
                                          const head_handles& handles,
                                          const caf::node_id& admin_node,
                                          const std::string& address,
                                          const std::string& admin_name);

} // namespace bgagent
