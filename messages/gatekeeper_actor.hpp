// The gatekeeper's typed interface (semantics: actors/gatekeeper.hpp): the
// only actor `run --listen` publishes.
//
// Contract: nodes connect with remote_actor<gatekeeper_actor>, so both
// ends agree on the hello; a hostile peer is not bound by this type and
// everything else it sends is refused and audited.
#pragma once

#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/cluster.hpp"

namespace bgagent {

using gatekeeper_actor = caf::typed_actor<
  // (role "worker" | "admin", cluster secret, node name, the node's
  // wire_fingerprint)
  caf::replies_to<hello_atom, std::string, std::string, std::string,
                  std::string>::with<welcome>>;

} // namespace bgagent
