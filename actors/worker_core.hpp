// worker_core: the provider half of one attempt, as a plain object with
// no actor in it. The task_worker actor (task_worker.hpp) wraps it with a
// mailbox, timers and heartbeats; the core holds what an attempt knows and
// the rules that decide its outcome, so they can be tested without an
// actor system (tests/worker_core_test.cpp).
//
// Contract:
// - take(t, attempt) starts an attempt: its models are model_chain(t),
//   starting at t.model_index (the last one when past the end); it makes
//   the core busy and moves its generation on (answers of an earlier
//   attempt or call no longer match).
// - begin() builds the request for the model the attempt is at and
//   returns what the head's gateway needs to begin it: the estimated
//   prompt tokens, max_tokens, the worst-case cost (with OpenRouter, the
//   rest of the chain goes as the request's `fallback_models` and the
//   worst case is the dearest of them), "provider/model" as shown, and
//   whether a later model is left to fall back to. fall_back() moves to
//   the next model (with none left it stays: the gateway should not have
//   said so).
// - start(now, later) starts the call (the provider may throw: a crash,
//   for the caller to handle). An answer the provider gives inside
//   start() is returned; any later one is handed to `later` with the
//   call's generation, from whatever thread the provider answers on.
// - answers(gen) tells whether an answer handed to `later` with `gen` is
//   for the call in flight (false: a call that already ended, timed out
//   or was superseded; drop it).
// - take_answer(out, now) ends the call with the provider's answer: past
//   the deadline it is a timeout all the same (a provider that blocked in
//   start()); a 2xx answer, or a request sent whole and unanswered, may
//   have been billed (charge_reservation). time_out(now) cancels the call
//   and ends it as a retryable failure that charges the reservation.
// - idle() ends an attempt that made no call (the gateway refused it or
//   answered it from the cache).
// Not thread-safe: one owner (an actor) calls it; only `later` runs
// elsewhere, and it touches nothing of the core.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "messages/call_outcome.hpp"
#include "messages/task.hpp"
#include "providers/provider.hpp"

namespace bgagent {

class worker_core {
public:
  using clock_type = std::chrono::steady_clock;

  struct begin_figures {
    uint64_t est_prompt = 0;
    uint64_t max_tokens = 0;
    double worst_cost = 0;
    std::string shown;        // "provider/model"
    bool may_fall_back = false;
  };

  // How an attempt's call ended, for the gateway's finish.
  struct ended {
    call_outcome out;
    bool charge_reservation = false;
    double latency = 0; // seconds from start to end
  };

  worker_core(provider_ptr prov, double timeout_seconds);

  void take(task t, uint32_t attempt);
  begin_figures begin();
  void fall_back();
  std::optional<call_outcome>
  start(clock_type::time_point now,
        std::function<void(uint64_t gen, call_outcome)> later);
  ended take_answer(call_outcome out, clock_type::time_point now);
  ended time_out(clock_type::time_point now);
  void idle() {
    busy_ = false;
    in_call_ = false;
  }

  bool answers(uint64_t gen) const { return in_call_ && gen == generation_; }
  bool busy() const { return busy_; }
  bool in_call() const { return in_call_; }
  uint64_t generation() const { return generation_; }
  clock_type::time_point deadline() const { return deadline_; }
  const task& current() const { return current_; }
  uint32_t attempt() const { return attempt_; }
  const llm_request& request() const { return req_; }

private:
  ended end_call(call_outcome out, bool charge_reservation,
                 clock_type::time_point now);

  provider_ptr prov_;
  double timeout_seconds_;
  bool busy_ = false;
  bool in_call_ = false;
  task current_;
  uint32_t attempt_ = 0;
  std::vector<std::string> chain_; // model_chain(current_)
  size_t model_at_ = 0;
  llm_request req_;
  uint64_t generation_ = 0;
  uint64_t call_id_ = 0;
  clock_type::time_point call_started_;
  clock_type::time_point deadline_;
};

} // namespace bgagent
