// The handles a task worker needs, local or on a remote node.
//
// Contract: a worker talks to exactly these actors and nothing else. A remote
// node receives this context from the gatekeeper after a valid hello; it
// then also holds a `gateway` (see actors/node_gateway.hpp), through which
// a worker begins each attempt with one request and finishes it with one
// message instead of talking to the budget_keeper, checkpointer, auditor
// and monitor one message at a time over the network. Local workers have
// no gateway.
#pragma once

#include <string>

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

namespace bgagent {

struct worker_context {
  caf::actor supervisor;
  caf::actor budget_keeper;
  caf::actor checkpointer;
  caf::actor auditor;
  caf::actor monitor;
  caf::actor gateway; // remote workers only
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_context& x) {
  return f(caf::meta::type_name("worker_context"), x.supervisor,
           x.budget_keeper, x.checkpointer, x.auditor, x.monitor,
           x.gateway);
}

} // namespace bgagent
