// A task worker: runs one attempt of one task at a time, local or on a
// remote node. It holds one head handle, its node's gateway (see
// node_gateway.hpp), which does the head's half of every attempt.
//
// Contract (messages/task_worker_actor.hpp):
//   (dispatch_atom, task, uint32 attempt)   from the supervisor (sent
//        anonymously: a remote worker never learns the supervisor)
// For each dispatch it, in order: takes the model the attempt starts at
// (model_chain(task)[task.model_index]); computes the worst case
// (estimated prompt + max_tokens, and its cost at the model's price; with
// OpenRouter the rest of the task's models go as its `models` and the
// worst case is the dearest); asks its gateway to begin the attempt (pace,
// reserve + mark running, one request); told to fall back (the model is
// down), it asks again with the next model; if told to go, starts the
// provider call without blocking (the outcome comes back as a message) and
// enforces the per-attempt timeout (one timer pending at most per worker,
// on the actor system's clock); then hands the outcome to the gateway
// (finish, one-way), which stores it and tells the supervisor. While busy it beats to the gateway
// every heartbeat interval. A provider that throws kills the worker: the
// supervisor sees the down message, restarts a worker and counts the
// attempt; the gateway ends the call in flight.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/task_worker_actor.hpp"
#include "providers/provider.hpp"

namespace bgagent {

struct worker_context;

struct worker_settings {
  std::string name;              // e.g. "head/worker-3"
  std::string node = "head";     // node name for audit lines
  double timeout_seconds = 300;  // per attempt
  double heartbeat_seconds = 5;
  // The worker's sign of life for the supervisor's hang check, shared
  // without a message (may be null): set to the steady clock (ns since its
  // epoch) at each heartbeat while busy, and to call_over once its attempt
  // is handed to the gateway (the wait for the store is not the worker's).
  std::shared_ptr<std::atomic<int64_t>> alive;
  static constexpr int64_t call_over = -1;
};

task_worker_actor spawn_task_worker(caf::actor_system& sys,
                                    const worker_context& ctx,
                                    provider_ptr p, worker_settings s);

} // namespace bgagent
