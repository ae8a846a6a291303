#include "actors/task_worker.hpp"

#include <atomic>
#include <chrono>
#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/worker_core.hpp"
#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/task.hpp"
#include "messages/task_worker_actor.hpp"
#include "messages/worker_context.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

// What the worker's end must tell: shared with the attach_functor.
struct exit_guard {
  bool beating = false;
};

struct worker_state {
  worker_context ctx;
  std::unique_ptr<worker_core> core; // the attempt (worker_core.hpp)
  worker_settings settings;
  std::shared_ptr<exit_guard> guard = std::make_shared<exit_guard>();
  // Whether a deadline timer is pending: one at most per worker, never
  // one per call. A timer per call stayed in CAF's clock for the whole
  // BG_AGENT_TIMEOUT after its call had ended (measured: ~530 bytes a
  // call, 1.6 GB at 10,000 calls/s with the default 300 s) and woke the
  // clock's thread at every call.
  bool timer_pending = false;
  bool ticking = false;
  static inline const char* name = "task_worker";
};

using worker_ptr = task_worker_actor::stateful_pointer<worker_state>;

void beat(worker_ptr self) {
  auto& st = self->state;
  bool busy = st.core->busy();
  if (st.settings.alive && busy)
    st.settings.alive->store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
        clock_type::now().time_since_epoch())
        .count(),
      std::memory_order_relaxed);
  self->send(st.ctx.gateway, heartbeat_atom::value, st.settings.name, busy,
             busy ? st.core->current().id : std::string{});
  st.guard->beating = busy;
}

void start_ticking(worker_ptr self) {
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

// Hands the ended call to the gateway, which charges, stores and reports
// it (finish, one-way).
void finish_attempt(worker_ptr self, worker_core::ended e) {
  auto& st = self->state;
  mark_call_over(st); // before the report, which the supervisor answers
  self->send(st.ctx.gateway, finish_atom::value, st.core->current().id,
             st.core->attempt(), std::move(e.out), e.charge_reservation,
             e.latency);
}

void arm_deadline_timer(worker_ptr self, clock_type::duration after) {
  self->state.timer_pending = true;
  // Rounded up: a timer that fires a little early would only re-arm.
  self->delayed_send(self,
                     std::chrono::ceil<std::chrono::milliseconds>(after),
                     timeout_atom::value);
}

void start_call(worker_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto me = caf::actor_cast<task_worker_actor>(self);
  // May throw: that is the crash path the supervisor handles.
  auto answered = st.core->start(now, [me](uint64_t gen, call_outcome out) {
    caf::anon_send(me, provider_atom::value, gen, std::move(out));
  });
  if (answered) {
    // Answered inside start(): no timer either (the clock thread is the
    // costliest part of a short call).
    finish_attempt(self,
                   st.core->take_answer(std::move(*answered),
                                        self->clock().now()));
    return;
  }
  // A timer still pending (armed for an earlier call) re-arms itself for
  // this deadline when it fires before it.
  if (!st.timer_pending)
    arm_deadline_timer(self, st.core->deadline() - now);
}

// Asks the gateway to begin the attempt on the model it is at; told to
// fall back (that model is down), it asks again with the next one.
void begin_call(worker_ptr self) {
  auto& st = self->state;
  auto f = st.core->begin();
  auto gen = st.core->generation();
  self->request(st.ctx.gateway, caf::infinite, begin_atom::value,
                st.core->current().id, st.core->attempt(), f.est_prompt,
                f.max_tokens, f.worst_cost, std::move(f.shown),
                f.may_fall_back)
    .then(
      [=](int32_t answer) {
        auto& st = self->state;
        if (gen != st.core->generation())
          return;
        if (answer == begin_answer::fall_back) {
          // The next model; with none left (a gateway that should not have
          // said so), the same one again, which cannot fall back.
          st.core->fall_back();
          begin_call(self);
          return;
        }
        if (answer != begin_answer::go) { // the gateway told the supervisor
          mark_call_over(st);
          st.core->idle();
          return;
        }
        start_call(self);
      },
      [=](caf::error& err) {
        // The head's gateway is gone: nothing can be begun or stored.
        self->quit(err);
      });
}

task_worker_actor::behavior_type task_worker(worker_ptr self,
                                             worker_context ctx,
                                             provider_ptr p,
                                             worker_settings s) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.core = std::make_unique<worker_core>(std::move(p), s.timeout_seconds);
  st.settings = std::move(s);
  // A throw is a crash by design: log one line (not CAF's banner) and die
  // with the message as the reason the supervisor sees.
  self->set_exception_handler(
    [](caf::scheduled_actor* a, std::exception_ptr& ep) -> caf::error {
      auto* me = static_cast<worker_ptr>(a);
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("{} crashed on task {}: {}", me->state.settings.name,
                    me->state.core->current().id, what);
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
      if (st.core->busy())
        return; // one attempt at a time; the supervisor never does this
      st.core->take(std::move(t), attempt); // the message is ours: no copy
      start_ticking(self);
      begin_call(self);
    },
    [=](provider_atom, uint64_t gen, call_outcome& out) {
      auto& st = self->state;
      if (!st.core->answers(gen))
        return; // the attempt timed out already
      finish_attempt(self, st.core->take_answer(std::move(out),
                                                self->clock().now()));
    },
    [=](timeout_atom) {
      auto& st = self->state;
      if (self->current_sender() != self->ctrl())
        return; // not its own timer: a deadline is the worker's to keep
      st.timer_pending = false;
      if (!st.core->in_call())
        return; // its call ended in time; no other is in flight
      auto now = self->clock().now();
      if (now < st.core->deadline()) { // a later call's deadline
        arm_deadline_timer(self, st.core->deadline() - now);
        return;
      }
      finish_attempt(self, st.core->time_out(now));
    },
    [=](tick_atom) {
      auto& st = self->state;
      beat(self);
      if (st.core->busy()) {
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
