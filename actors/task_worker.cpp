#include "actors/task_worker.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <type_traits>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/task.hpp"
#include "messages/task_worker_actor.hpp"
#include "messages/utf8.hpp"
#include "messages/worker_context.hpp"
#include "providers/task_request.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

// What the worker's end must tell: shared with the attach_functor.
struct exit_guard {
  bool beating = false;
};

struct worker_state {
  worker_context ctx;
  provider_ptr prov;
  worker_settings settings;
  std::shared_ptr<exit_guard> guard = std::make_shared<exit_guard>();
  // The attempt in progress.
  bool busy = false;
  bool in_call = false;
  task current;
  uint32_t attempt = 0;
  // The task's models (model_chain) and the one this attempt is at.
  std::vector<std::string> chain;
  size_t model_at = 0;
  llm_request req;
  uint64_t generation = 0; // matches provider replies and timeouts
  uint64_t call_id = 0;
  clock_type::time_point call_started;
  // The call's deadline (on the actor system's clock, a test's simulated
  // one), and whether a timer is pending: one at most per worker, never
  // one per call. A timer per call stayed in CAF's clock for
  // the whole BG_AGENT_TIMEOUT after its call had ended (measured: ~530
  // bytes a call, 1.6 GB at 10,000 calls/s with the default 300 s) and
  // woke the clock's thread at every call.
  clock_type::time_point deadline;
  bool timer_pending = false;
  bool ticking = false;
  static inline const char* name = "task_worker";
};

using self_ptr = task_worker_actor::stateful_pointer<worker_state>;

void beat(self_ptr self) {
  auto& st = self->state;
  if (st.settings.alive && st.busy)
    st.settings.alive->store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
        clock_type::now().time_since_epoch())
        .count(),
      std::memory_order_relaxed);
  self->send(st.ctx.gateway, heartbeat_atom::value, st.settings.name, st.busy,
             st.busy ? st.current.id : std::string{});
  st.guard->beating = st.busy;
}

void start_ticking(self_ptr self) {
  auto& st = self->state;
  if (!st.guard->beating)
    beat(self);
  if (!st.ticking) {
    st.ticking = true;
    self->delayed_send(self,
                       std::chrono::milliseconds(static_cast<int64_t>(
                         st.settings.heartbeat_seconds * 1000)),
                       tick_atom::value);
  }
}

// The attempt is out of the worker's hands (the gateway stores or reports
// it): the supervisor's hang check stops counting its silence.
void mark_call_over(worker_state& st) {
  if (st.settings.alive)
    st.settings.alive->store(worker_settings::call_over,
                             std::memory_order_relaxed);
}

// Hands the outcome to the gateway, which charges, stores and reports it.
// `charge_reservation`: the request was sent and may have been billed
// although no usage is known (a timeout, or a 2xx answer without usage).
void finish_attempt(self_ptr self, call_outcome out, bool charge_reservation) {
  auto& st = self->state;
  st.in_call = false;
  auto latency = std::chrono::duration<double>(self->clock().now() -
                                               st.call_started)
                   .count();
  mark_call_over(st); // before the report, which the supervisor answers
  self->send(st.ctx.gateway, finish_atom::value, st.current.id, st.attempt,
             out, charge_reservation, latency);
  st.busy = false;
}

// The attempt ran past BG_AGENT_TIMEOUT: it fails as retryable.
void time_out(self_ptr self) {
  auto& st = self->state;
  st.prov->cancel(st.call_id);
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%g", st.settings.timeout_seconds);
  auto out = make_failure(error_kind::retryable,
                          std::string("timed out after ") + secs +
                            " s (BG_AGENT_TIMEOUT)");
  out.provider = st.prov->name();
  out.model = st.req.model.empty() ? st.prov->model() : st.req.model;
  // The request was sent: the provider may bill it; assume the worst.
  finish_attempt(self, std::move(out), true);
}

// The provider's answer to the attempt in its call.
void take_answer(self_ptr self, call_outcome out) {
  auto& st = self->state;
  // A provider that blocked in start() (against its contract) answered
  // before any timer could fire: past the deadline it is a timeout all the
  // same.
  if (self->clock().now() > st.deadline) {
    time_out(self);
    return;
  }
  // A 2xx answer was billed even when it is unusable, and a request sent
  // whole may have been processed although no answer came back: without
  // usage, charge the reservation rather than nothing.
  bool billed = (out.http_status >= 200 && out.http_status < 300) ||
                out.sent_unanswered;
  finish_attempt(self, std::move(out), billed);
}

void arm_deadline_timer(self_ptr self, clock_type::duration after) {
  self->state.timer_pending = true;
  // Rounded up: a timer that fires a little early would only re-arm.
  self->delayed_send(self,
                     std::chrono::ceil<std::chrono::milliseconds>(after),
                     timeout_atom::value);
}

// A provider's answer that may come inside start() (offline) or later from
// another thread: taken inside start() it is handled at once, without a
// message to itself (one message fewer per attempt).
struct answer_slot {
  enum : int { in_start, answered_inside, start_returned };
  std::atomic<int> state{in_start};
  call_outcome out; // written before `answered_inside`, read after it
};

void start_call(self_ptr self) {
  auto& st = self->state;
  st.in_call = true;
  st.call_started = self->clock().now();
  st.deadline = st.call_started +
                std::chrono::duration_cast<clock_type::duration>(
                  std::chrono::duration<double>(st.settings.timeout_seconds));
  auto gen = ++st.generation;
  auto me = caf::actor_cast<task_worker_actor>(self);
  auto slot = std::make_shared<answer_slot>();
  // May throw: that is the crash path the supervisor handles.
  st.call_id = st.prov->start(st.req, [me, gen, slot](call_outcome out) {
    slot->out = std::move(out);
    int expected = answer_slot::in_start;
    if (slot->state.compare_exchange_strong(expected,
                                            answer_slot::answered_inside))
      return;
    caf::anon_send(me, provider_atom::value, gen, std::move(slot->out));
  });
  int expected = answer_slot::in_start;
  if (!slot->state.compare_exchange_strong(expected,
                                           answer_slot::start_returned)) {
    // Answered inside start(): no timer either (the clock thread is the
    // costliest part of a short call).
    take_answer(self, std::move(slot->out));
    return;
  }
  // A timer still pending (armed for an earlier call) re-arms itself for
  // this deadline when it fires before it.
  if (!st.timer_pending)
    arm_deadline_timer(self, st.deadline - st.call_started);
}

// Asks the gateway to begin the attempt on the model it is at; told to
// fall back (that model is down), it asks again with the next one.
void begin_call(self_ptr self) {
  auto& st = self->state;
  auto& t = st.current;
  auto model = st.chain[st.model_at];
  st.req = request_for(t, model);
  auto est_prompt = st.prov->estimate_prompt_tokens(st.req);
  auto worst_cost = st.prov->price_of(model).cost(est_prompt,
                                                  st.req.max_tokens);
  // OpenRouter takes the rest of the list itself (its `models`): any of
  // them may answer, so the worst case is the dearest.
  if (st.prov->name() == "openrouter")
    for (size_t i = st.model_at + 1; i < st.chain.size(); ++i) {
      st.req.fallback_models.push_back(st.chain[i]);
      worst_cost = std::max(worst_cost,
                            st.prov->price_of(st.chain[i])
                              .cost(est_prompt, st.req.max_tokens));
    }
  bool may_fall_back = st.model_at + 1 < st.chain.size();
  auto shown = model.empty() ? st.prov->model() : model;
  auto gen = st.generation;
  self->request(st.ctx.gateway, caf::infinite, begin_atom::value, t.id,
                st.attempt, est_prompt, uint64_t{st.req.max_tokens},
                worst_cost, st.prov->name() + "/" + shown, may_fall_back)
    .then(
      [=](int32_t answer) {
        auto& st = self->state;
        if (gen != st.generation)
          return;
        if (answer == begin_answer::fall_back) {
          // The next model; with none left (a gateway that should not have
          // said so), the same one again, which cannot fall back.
          if (st.model_at + 1 < st.chain.size())
            ++st.model_at;
          begin_call(self);
          return;
        }
        if (answer != begin_answer::go) { // the gateway told the supervisor
          mark_call_over(st);
          st.busy = false;
          return;
        }
        start_call(self);
      },
      [=](caf::error& err) {
        // The head's gateway is gone: nothing can be begun or stored.
        self->quit(err);
      });
}

task_worker_actor::behavior_type task_worker(self_ptr self,
                                             worker_context ctx,
                                             provider_ptr p,
                                             worker_settings s) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.prov = std::move(p);
  st.settings = std::move(s);
  // A throw is a crash by design: log one line (not CAF's banner) and die
  // with the message as the reason the supervisor sees.
  self->set_exception_handler(
    [](caf::scheduled_actor* a, std::exception_ptr& ep) -> caf::error {
      auto* me = static_cast<self_ptr>(a);
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("{} crashed on task {}: {}", me->state.settings.name,
                    me->state.current.id, what);
      return caf::make_error(caf::sec::runtime_error, "crashed: " + what);
    });
  // Whatever way the worker ends, the dead man's switch stops expecting
  // its heartbeats (the gateway ends its call and the store charges it).
  self->attach_functor([guard = st.guard, gateway = st.ctx.gateway,
                        name = st.settings.name](const caf::error&) {
    if (guard->beating)
      caf::anon_send(gateway, heartbeat_atom::value, name, false,
                     std::string{});
  });
  return {
    [=](dispatch_atom, task& t, uint32_t attempt) {
      auto& st = self->state;
      if (st.busy)
        return; // one attempt at a time; the supervisor never does this
      st.busy = true;
      st.current = std::move(t); // the message is ours: no copy
      st.attempt = attempt;
      ++st.generation;
      st.chain = model_chain(st.current);
      st.model_at =
        std::min<size_t>(st.current.model_index, st.chain.size() - 1);
      start_ticking(self);
      begin_call(self);
    },
    [=](provider_atom, uint64_t gen, call_outcome& out) {
      auto& st = self->state;
      if (gen != st.generation || !st.in_call)
        return; // the attempt timed out already
      take_answer(self, std::move(out));
    },
    [=](timeout_atom) {
      auto& st = self->state;
      if (self->current_sender() != self->ctrl())
        return; // not its own timer: a deadline is the worker's to keep
      st.timer_pending = false;
      if (!st.in_call)
        return; // its call ended in time; no other is in flight
      auto now = self->clock().now();
      if (now < st.deadline) { // a later call's deadline
        arm_deadline_timer(self, st.deadline - now);
        return;
      }
      time_out(self);
    },
    [=](tick_atom) {
      auto& st = self->state;
      beat(self);
      if (st.busy) {
        self->delayed_send(self,
                           std::chrono::milliseconds(static_cast<int64_t>(
                             st.settings.heartbeat_seconds * 1000)),
                           tick_atom::value);
      } else {
        st.ticking = false;
      }
    },
  };
}

} // namespace

task_worker_actor spawn_task_worker(caf::actor_system& sys,
                                    const worker_context& ctx,
                                    provider_ptr p, worker_settings s) {
  return sys.spawn(task_worker, ctx, std::move(p), std::move(s));
}

} // namespace bgagent
