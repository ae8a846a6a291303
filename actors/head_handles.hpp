// The head's internal actors, as the head's own actors see them.
//
// Contract: these handles never leave the head's process. There is no
// inspect() for this struct on purpose: it cannot be put into a message to
// a node. CAF 0.17's BASP lets any connected peer address every actor whose
// handle was ever serialized to it (also as the *sender* of a message or
// the responder of a delegated request), so code that talks to remote nodes
// sends anonymously or through a node gateway, never from one of these.
#pragma once

#include <caf/actor.hpp>

namespace bgagent {

struct head_handles {
  caf::actor supervisor;
  caf::actor budget_keeper;
  caf::actor checkpointer;
  caf::actor auditor;
  caf::actor monitor;
};

} // namespace bgagent
