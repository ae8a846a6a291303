// A node gateway's typed interface (semantics: actors/node_gateway.hpp).
//
// Contract: the only head actor a remote node can address. Remote peers
// are not bound by this type (BASP carries any message): the gateway
// refuses and audits anything that does not fit it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/mark_answer.hpp"
#include "messages/task.hpp"
#include "messages/task_worker_actor.hpp"

namespace bgagent {

// The answer to a worker's begin.
namespace begin_answer {
constexpr int32_t refused = 0; // no call: the supervisor was told why
constexpr int32_t go = 1;      // reserved and marked running: call now
// The model's circuit is open: begin again with the task's next model.
constexpr int32_t fall_back = 2;
// Completed from the response cache: no call; the supervisor was told.
constexpr int32_t cached = 3;
} // namespace begin_answer

using node_gateway_actor = caf::typed_actor<
  // from the supervisor only: (worker, task, attempt)
  caf::reacts_to<dispatch_atom, task_worker_actor, task, uint32_t>,
  // from a worker: (id, attempt, worst prompt tokens, max tokens, worst
  // dollars, "provider/model", may fall back to another model) ->
  // begin_answer
  caf::replies_to<begin_atom, std::string, uint32_t, uint64_t, uint64_t,
                  double, std::string, bool>::with<int32_t>,
  // from a worker: (id, attempt, outcome, charge the reservation, latency)
  caf::reacts_to<finish_atom, std::string, uint32_t, call_outcome, bool,
                 double>,
  // from the checkpointer only: its answers to this gateway's running and
  // completed marks, once their commit is durable (messages/mark_answer.hpp)
  caf::reacts_to<marks_atom, std::vector<mark_answer>>,
  // from a worker: (worker name, busy, task id)
  caf::reacts_to<heartbeat_atom, std::string, bool, std::string>,
  // from a remote node: (its workers, their names)
  caf::replies_to<join_atom, std::vector<task_worker_actor>,
                  std::vector<std::string>>::with<bool>>;

} // namespace bgagent
