// What a task worker talks to, local or on a remote node: its node's gateway.
//
// Contract: a worker reaches the head through exactly one actor, the gateway
// of its node (see actors/node_gateway.hpp), which runs the head's half of
// every attempt. This is the only head handle a remote node ever receives;
// the supervisor, budget_keeper, checkpointer, auditor and monitor never
// leave the head's process (actors/head_handles.hpp).
#pragma once

#include <caf/meta/type_name.hpp>

#include "messages/node_gateway_actor.hpp"

namespace bgagent {

struct worker_context {
  node_gateway_actor gateway;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_context& x) {
  return f(caf::meta::type_name("worker_context"), x.gateway);
}

} // namespace bgagent
