// The actor system configuration of every bgagent process: all message
// types registered, the middleman loaded (remote nodes), CAF's own console
// output kept quiet. Include only from .cpp files: it pulls in CAF.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "messages/message_types.hpp"

namespace bgagent {

class system_config : public caf::actor_system_config {
public:
  system_config() {
    bgagent::add_message_types(*this);
    load<caf::io::middleman>();
  }
};

} // namespace bgagent
