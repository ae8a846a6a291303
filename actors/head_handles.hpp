// The head's internal actors, as the head's own actors see them.
//
// Contract: these handles never leave the head's process. There is no
// inspect() for this struct on purpose: it cannot be put into a message to
// a node. CAF 0.17's BASP lets any connected peer address every actor whose
// handle was ever serialized to it (also as the *sender* of a message or
// the responder of a delegated request), so code that talks to remote nodes
// sends anonymously or through a node gateway, never from one of these.
#pragma once

#include <memory>

#include "actors/call_counters.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/batch_runner_actor.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/store_handles.hpp"
#include "messages/monitor_actor.hpp"
#include "messages/rate_keeper_actor.hpp"
#include "messages/supervisor_actor.hpp"

namespace bgagent {

struct head_handles {
  supervisor_actor supervisor;
  budget_keeper_actor budget_keeper;
  // The store's writers: main() and of(task id) (messages/store_handles.hpp).
  store_handles store;
  auditor_actor auditor;
  monitor_actor monitor;
  // The run's counters (the monitor reads them); null: none kept.
  std::shared_ptr<call_counters> counters;
  // Paces every call to BG_AGENT_RPM / _TPM and Retry-After; null: none.
  rate_keeper_actor rate_keeper;
  // Provider batches (actors/batch_runner.hpp); null: none in this run.
  batch_runner_actor batches;
};

} // namespace bgagent
