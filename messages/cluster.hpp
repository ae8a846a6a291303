// The gatekeeper's answer to a node's hello.
//
// Contract: a node says (hello_atom, string role, string secret, string
// node_name, string wire) to the published gatekeeper; role is "worker" or
// "admin", wire its messages/wire_fingerprint. The
// answer is a `welcome`: accepted with the handles for that role, or refused
// with a one-line reason (the secret is never echoed).
#pragma once

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/admin_endpoint_actor.hpp"
#include "messages/admin_status.hpp"
#include "messages/worker_context.hpp"

namespace bgagent {

struct welcome {
  bool accepted = false;
  std::string reason;   // why it was refused
  std::string head;     // the head's node name, for messages
  worker_context ctx;   // role "worker": what its task workers talk to
  admin_endpoint_actor admin; // role "admin": the endpoint for this node
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, welcome& x) {
  return f(caf::meta::type_name("welcome"), x.accepted, x.reason, x.head,
           x.ctx, x.admin);
}

} // namespace bgagent
