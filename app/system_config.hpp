// The actor system configuration of every bgagent process: all message
// types registered, the middleman loaded (remote nodes), CAF's own console
// output kept quiet. Include only from .cpp files: it pulls in CAF.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>

#include "messages/message_types.hpp"

namespace bgagent {

class system_config : public caf::actor_system_config {
public:
  system_config() {
    bgagent::add_message_types(*this);
    load<caf::io::middleman>();
    // One shared queue instead of work stealing: bgagent's actors exchange
    // many tiny messages, and on a few cores the stealing workers' poll
    // sleeps cost ~30 % more CPU per task (measured with bench/offline_throughput).
    set("scheduler.policy", caf::atom("sharing"));
  }
};

} // namespace bgagent
