#include "actors/task_worker.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <type_traits>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/task.hpp"
#include "messages/worker_context.hpp"
#include "providers/task_types.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

// What must be undone if the worker dies mid-attempt; shared with the
// attach_functor that runs at its exit.
struct in_flight_guard {
  uint64_t reservation = 0; // 0: none held
  bool in_call = false;
  bool beating = false;
};

struct worker_state {
  worker_context ctx;
  provider_ptr prov;
  worker_settings settings;
  std::shared_ptr<in_flight_guard> guard = std::make_shared<in_flight_guard>();
  // The attempt in progress.
  bool busy = false;
  task current;
  uint32_t attempt = 0;
  llm_request req;
  uint64_t est_prompt = 0;
  double worst_cost = 0;
  uint64_t generation = 0; // matches provider replies and timeouts
  uint64_t call_id = 0;
  clock_type::time_point call_started;
  bool ticking = false;
  static inline const char* name = "task_worker";
};

using self_ptr = caf::stateful_actor<worker_state>*;

std::string fmt_usage(const usage& u) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "prompt_tokens=%llu completion_tokens=%llu "
                                   "cost_usd=%.6f",
                static_cast<unsigned long long>(u.prompt_tokens),
                static_cast<unsigned long long>(u.completion_tokens),
                u.cost_usd);
  return buf;
}

void audit(self_ptr self, const std::string& event, const std::string& detail) {
  auto& st = self->state;
  self->send(st.ctx.auditor,
             make_event(event, st.current.id, static_cast<int32_t>(st.attempt),
                        detail, st.settings.node));
}

void beat(self_ptr self) {
  auto& st = self->state;
  self->send(st.ctx.monitor, heartbeat_atom::value, st.settings.name, st.busy,
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

void become_idle(self_ptr self) {
  auto& st = self->state;
  st.busy = false;
  st.guard->reservation = 0;
  st.guard->in_call = false;
}

// What the attempt costs: the provider's figures, or the whole reservation
// when the provider could not tell (no usage in the answer, or timed out
// after the request was sent).
usage charge_for(const worker_state& st, const call_outcome& out,
                 bool charge_reservation) {
  usage u;
  if (out.usage_reported) {
    u.prompt_tokens = out.prompt_tokens;
    u.completion_tokens = out.completion_tokens;
    u.cost_usd = out.cost_usd;
  } else if (out.ok || charge_reservation) {
    u.prompt_tokens = st.est_prompt;
    u.completion_tokens = st.req.max_tokens;
    u.cost_usd = st.worst_cost;
  }
  return u;
}

void finish_attempt(self_ptr self, call_outcome out, bool charge_reservation) {
  auto& st = self->state;
  st.guard->in_call = false;
  auto latency = std::chrono::duration<double>(clock_type::now() -
                                               st.call_started)
                   .count();
  auto u = charge_for(st, out, charge_reservation);
  auto res = st.guard->reservation;
  if (st.ctx.gateway) {
    // Remote: the head's gateway does the same steps in one request.
    // One-way: the gateway owns the reservation from here, and the
    // supervisor hears done/failed from it only after the store commit, so
    // no new dispatch can arrive before that.
    auto failed = std::string(to_string(out.error_class())) + ": " + out.error;
    self->send(st.ctx.gateway, finish_atom::value, st.current.id, st.attempt,
               res, out, u, latency, st.settings.node, fmt_usage(u), failed);
    become_idle(self);
    return;
  }
  self->send(st.ctx.monitor, calls_atom::value, int64_t{-1}, latency);
  self->request(st.ctx.budget_keeper, caf::infinite, commit_atom::value, res, u)
    .then([=](bool) mutable {
      auto& st = self->state;
      st.guard->reservation = 0;
      auto id = st.current.id;
      auto attempt = st.attempt;
      if (out.ok) {
        self->request(st.ctx.checkpointer, caf::infinite, complete_atom::value,
                      id, attempt, out, u)
          .then([=](bool committed) {
            auto& st = self->state;
            if (committed) {
              audit(self, "task_completed", fmt_usage(u));
              self->send(st.ctx.supervisor, done_atom::value, id, attempt);
            } else {
              self->send(st.ctx.supervisor, skipped_atom::value, id, attempt);
            }
            become_idle(self);
          });
        return;
      }
      if (u.total_tokens() > 0 || u.cost_usd > 0)
        caf::anon_send(st.ctx.checkpointer, usage_atom::value, id, attempt, u,
                       out.provider, out.model);
      audit(self, "task_failed",
            std::string(to_string(out.error_class())) + ": " + out.error);
      self->send(st.ctx.supervisor, failed_atom::value, id, attempt, out);
      become_idle(self);
    });
}

std::string started_detail(const worker_state& st) {
  return st.prov->name() + "/" + st.prov->model();
}

void start_call(self_ptr self) {
  auto& st = self->state;
  if (!st.ctx.gateway) { // the gateway audited and counted it already
    audit(self, "task_started", started_detail(st));
    self->send(st.ctx.monitor, calls_atom::value, int64_t{1}, 0.0);
  }
  st.guard->in_call = true;
  st.call_started = clock_type::now();
  auto gen = ++st.generation;
  auto me = caf::actor_cast<caf::actor>(self);
  auto answered = std::make_shared<std::atomic<bool>>(false);
  // May throw: that is the crash path the supervisor handles.
  st.call_id = st.prov->start(st.req, [me, gen, answered](call_outcome out) {
    answered->store(true);
    caf::anon_send(me, provider_atom::value, gen, std::move(out));
  });
  // A provider that answered inside start() (offline) needs no timer; the
  // clock thread is the costliest part of a short call.
  if (answered->load())
    return;
  self->delayed_send(self,
                     std::chrono::milliseconds(static_cast<int64_t>(
                       st.settings.timeout_seconds * 1000)),
                     timeout_atom::value, gen);
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
  out.model = st.prov->model();
  // The request was sent: the provider may bill it; assume the worst.
  finish_attempt(self, std::move(out), true);
}

// Tells the supervisor why the attempt never started (denied: the budget;
// skipped: the store no longer wants it) and waits for the next task.
template <class Atom>
void give_up(self_ptr self, Atom why, const std::string& reason) {
  auto& st = self->state;
  if constexpr (std::is_same_v<Atom, denied_atom>)
    self->send(st.ctx.supervisor, why, st.current.id, st.attempt, reason);
  else
    self->send(st.ctx.supervisor, why, st.current.id, st.attempt);
  become_idle(self);
}

bool granted_or_gave_up(self_ptr self, const reservation& r) {
  if (!r.granted)
    give_up(self, denied_atom::value, r.reason);
  return r.granted;
}

caf::behavior task_worker(self_ptr self, worker_context ctx, provider_ptr p,
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
  // Whatever way the worker ends, give back what it holds.
  self->attach_functor([guard = st.guard, keeper = st.ctx.budget_keeper,
                        mon = st.ctx.monitor,
                        name = st.settings.name](const caf::error&) {
    if (guard->reservation != 0)
      caf::anon_send(keeper, release_atom::value, guard->reservation);
    if (guard->in_call)
      caf::anon_send(mon, calls_atom::value, int64_t{-1}, 0.0);
    if (guard->beating)
      caf::anon_send(mon, heartbeat_atom::value, name, false, std::string{});
  });
  return {
    [=](dispatch_atom, const task& t, uint32_t attempt) {
      auto& st = self->state;
      st.busy = true;
      st.current = t;
      st.attempt = attempt;
      ++st.generation;
      st.req = llm_request{t.id, t.type, t.input,
                           t.max_tokens ? t.max_tokens
                                        : default_max_tokens(t.type)};
      st.est_prompt = st.prov->estimate_prompt_tokens(st.req);
      st.worst_cost = st.prov->worst_case_cost(st.est_prompt,
                                               st.req.max_tokens);
      start_ticking(self);
      auto gen = st.generation;
      if (st.ctx.gateway) {
        // Remote: reservation and running mark in one request to the head.
        self->request(st.ctx.gateway, caf::infinite, begin_atom::value, t.id,
                      attempt, st.est_prompt + st.req.max_tokens,
                      st.worst_cost, started_detail(st), st.settings.node)
          .then([=](const reservation& r, bool marked) {
            auto& st = self->state;
            if (gen != st.generation || !granted_or_gave_up(self, r))
              return;
            if (!marked) {
              give_up(self, skipped_atom::value, {});
              return;
            }
            st.guard->reservation = r.id;
            start_call(self);
          });
        return;
      }
      self->request(st.ctx.budget_keeper, caf::infinite, reserve_atom::value,
                    t.id, st.est_prompt + st.req.max_tokens, st.worst_cost)
        .then([=](const reservation& r) {
          auto& st = self->state;
          if (gen != st.generation || !granted_or_gave_up(self, r))
            return;
          st.guard->reservation = r.id;
          self->request(st.ctx.checkpointer, caf::infinite,
                        running_atom::value, st.current.id, st.attempt)
            .then([=](bool marked) {
              auto& st = self->state;
              if (!marked) {
                caf::anon_send(st.ctx.budget_keeper, release_atom::value,
                               st.guard->reservation);
                give_up(self, skipped_atom::value, {});
                return;
              }
              start_call(self);
            });
        });
    },
    [=](provider_atom, uint64_t gen, call_outcome& out) {
      auto& st = self->state;
      if (gen != st.generation || !st.guard->in_call)
        return; // the attempt timed out already
      // A provider that blocked in start() (against its contract) answered
      // before any timer could fire: past the deadline it is a timeout all
      // the same.
      if (clock_type::now() - st.call_started >
          std::chrono::duration<double>(st.settings.timeout_seconds)) {
        time_out(self);
        return;
      }
      // A 2xx answer was billed even when it is unusable: without usage in
      // it, charge the reservation rather than nothing.
      bool billed = out.http_status >= 200 && out.http_status < 300;
      finish_attempt(self, std::move(out), billed);
    },
    [=](timeout_atom, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.generation || !st.guard->in_call)
        return;
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

caf::actor spawn_task_worker(caf::actor_system& sys, const worker_context& ctx,
                             provider_ptr p, worker_settings s) {
  return sys.spawn(task_worker, ctx, std::move(p), std::move(s));
}

} // namespace bgagent
