// Registers every message type with an actor system configuration.
//
// Contract: both ends of a remote connection call this, so they agree on
// every type name. Call it before constructing the actor_system.
#pragma once

#include <caf/fwd.hpp>

namespace bgagent {

void add_message_types(caf::actor_system_config& cfg);

} // namespace bgagent
