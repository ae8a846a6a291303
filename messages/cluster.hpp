// Messages between the head and remote nodes: the gatekeeper's answer to a
// hello, and what `bgagent admin status` receives.
//
// Contract: a node says (hello_atom, string role, string secret, string
// node_name) to the published gatekeeper; role is "worker" or "admin". The
// answer is a `welcome`: accepted with the handles for that role, or refused
// with a one-line reason (the secret is never echoed).
#pragma once

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/run.hpp"
#include "messages/worker_context.hpp"

namespace bgagent {

struct welcome {
  bool accepted = false;
  std::string reason;   // why it was refused
  std::string head;     // the head's node name, for messages
  worker_context ctx;   // role "worker": what its task workers talk to
  caf::actor admin;     // role "admin": the admin endpoint for this node
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, welcome& x) {
  return f(caf::meta::type_name("welcome"), x.accepted, x.reason, x.head,
           x.ctx, x.admin);
}

// `bgagent admin status`: the store's counts and budget, the monitor's
// live figures (rate, calls in flight, paused) and the supervisor's workers
// ("node worker-name state" lines).
struct admin_status {
  status_report report;
  metrics_snapshot metrics;
  std::vector<std::string> workers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_status& x) {
  return f(caf::meta::type_name("admin_status"), x.report, x.metrics,
           x.workers);
}

} // namespace bgagent
