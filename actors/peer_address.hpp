// Who sent a message, in words a person can act on: the network address of
// the sender's node as the middleman sees the connection.
//
// Contract: resolve_peer never blocks; it calls `f` exactly once (from the
// actor's own context) with "HOST:PORT" for a remote node, "local" for this
// process, "anonymous" when the message had no sender, or "node <id>" when
// the middleman no longer knows the connection. (The gatekeeper's: the
// actor that meets strangers.)
#pragma once

#include <functional>
#include <string>

#include <caf/fwd.hpp>

#include "messages/gatekeeper_actor.hpp"

namespace bgagent {

void resolve_peer(gatekeeper_actor::base* self,
                  const caf::strong_actor_ptr& sender,
                  std::function<void(const std::string&)> f);

// The host part of "HOST:PORT" (the whole text when there is no port).
std::string peer_host(const std::string& address);

} // namespace bgagent
