#include "actors/node_gateway.hpp"

#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/head_handles.hpp"
#include "actors/send_here.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/task.hpp"
#include "messages/utf8.hpp"
#include "providers/task_request.hpp"
#include "persistence/cache_filter.hpp"

namespace bgagent {

namespace {

// One attempt this gateway handed to a worker, until its finish or the
// worker's end.
struct open_attempt {
  caf::actor_addr worker;
  uint32_t attempt = 0;
  int64_t seq = 0;          // the task's in the store: its marks find it by it
  bool begun = false;       // the worker asked to begin it
  uint64_t reservation = 0; // 0 while the keeper has not answered
  uint64_t worst_prompt = 0;     // estimated prompt tokens
  uint64_t worst_completion = 0; // max_tokens
  double worst_cost = 0;
  uint64_t worst_tokens() const { return worst_prompt + worst_completion; }
  bool in_call = false; // marked running: the call may be under way
  // The worker's begin, answered once the store's running mark is durable
  // (its answer comes with the others of its commit: running_marked()).
  caf::typed_response_promise<int32_t> begin_answered;
  std::string rate_key;   // "provider/model" the rate_keeper paced it as
  uint64_t rate_slot = 0; // its slot there (0: not paced)
  // The task's models (model_chain; "" the node's MODEL), and the begins
  // asked: one per model at most.
  std::vector<std::string> models;
  uint32_t begins = 0;
  // The response cache: the task (kept only when it may be cached) and
  // its request's fingerprint once looked up.
  std::shared_ptr<const task> cacheable;
  std::string fingerprint;
};

// Whether `detail` ("provider/model") names one of the task's models: a
// node's begin paces, and may open, only the circuits of its task's models.
bool names_a_model_of(const std::string& detail,
                      const std::vector<std::string>& models) {
  auto slash = detail.find('/');
  if (slash == std::string::npos)
    return false;
  auto model = detail.substr(slash + 1);
  for (auto& m : models)
    if (m.empty() || m == model)
      return true;
  return false;
}

struct gateway_state {
  head_handles h;
  gateway_settings s;
  std::unordered_map<std::string, open_attempt> open; // by task id
  std::unordered_set<caf::actor_addr> watched;
  // Answers sent to the store whose done/skipped the supervisor still
  // waits for: a lost node's gateway stays until they are reported.
  uint32_t storing = 0;
  bool node_lost = false;
  static inline const char* name = "node_gateway";
};

using gateway_ptr = node_gateway_actor::stateful_pointer<gateway_state>;

std::string fmt_usage(const usage& u) {
  char buf[96];
  std::snprintf(buf, sizeof(buf),
                "prompt_tokens=%llu completion_tokens=%llu cost_usd=%.6f",
                static_cast<unsigned long long>(u.prompt_tokens),
                static_cast<unsigned long long>(u.completion_tokens),
                u.cost_usd);
  return buf;
}

audit_event event_for(gateway_ptr self, const std::string& event,
                      const std::string& id, uint32_t attempt,
                      const std::string& detail) {
  return make_event(event, id, static_cast<int32_t>(attempt), detail,
                    self->state.s.node);
}

void raise(gateway_ptr self, severity level, const char* kind,
           const std::string& msg, const std::string& task_id) {
  spdlog::warn("{}: {}", kind, msg);
  self->send(self->state.h.monitor, alert_atom::value,
             alert{level, kind, msg, task_id});
}

// A message this gateway will not act on: audited, never acted on.
void refuse(gateway_ptr self, const std::string& why) {
  auto& st = self->state;
  spdlog::warn("node gateway {}: refused {}", st.s.node, why);
  self->send(st.h.auditor,
             make_event("admin_refused", {}, -1,
                        why + " (node gateway of " + st.s.node + " at " +
                          st.s.address + ")",
                        st.s.node));
}

// What the attempt is charged: the provider's figures when it reported
// believable ones, else the whole reservation (the call was billed, or may
// have been, and the truth is unknown).
usage charge_for(gateway_ptr self, const std::string& id, const open_attempt& a,
                 const call_outcome& out, bool charge_reservation) {
  usage worst{a.worst_prompt, a.worst_completion, a.worst_cost};
  if (out.usage_invalid) {
    raise(self, severity::critical, "lying_usage",
          "provider reported impossible usage for task " + id + " (" +
            out.error + "); charged the reservation",
          id);
    return worst;
  }
  if (out.usage_reported) {
    usage u{out.prompt_tokens, out.completion_tokens, out.cost_usd};
    if (self->state.s.remote &&
        (u.total_tokens() > a.worst_tokens() || u.cost_usd > a.worst_cost)) {
      // A node cannot spend past what the head granted it.
      raise(self, severity::critical, "usage_over_reservation",
            "node " + self->state.s.node + " reported " + fmt_usage(u) +
              " for task " + id + ", above its reservation of " +
              std::to_string(a.worst_tokens()) + " tokens; charged the "
              "reservation",
            id);
      return worst;
    }
    return u;
  }
  if (out.ok || charge_reservation)
    return worst;
  return usage{};
}

void call_ended(gateway_ptr self, double latency) {
  if (auto& c = self->state.h.counters)
    c->call_ended(latency);
}

void watch(gateway_ptr self, const caf::actor_addr& worker) {
  if (worker && self->state.watched.insert(worker).second)
    self->monitor(worker);
}

// An attempt paced but ended without an answer (denied, skipped, its
// worker gone): no longer in flight for the rate_keeper. Its request stays
// counted; its tokens too when the call may have been sent.
void release_pace(gateway_ptr self, const open_attempt& a) {
  if (a.rate_slot != 0 && self->state.h.rate_keeper)
    self->send(self->state.h.rate_keeper, refund_atom::value, a.rate_key,
               a.rate_slot, a.in_call ? a.worst_tokens() : uint64_t{0});
}

void begin(gateway_ptr self, const task_worker_actor& worker,
           const std::string& id, uint32_t attempt, uint64_t prompt,
           uint64_t completion, double cost, const std::string& detail,
           bool may_fall_back, caf::typed_response_promise<int32_t> rp) {
  auto& st = self->state;
  auto addr = worker.address();
  auto& a = st.open[id];
  a.begun = true;
  a.worst_prompt = prompt;
  a.worst_completion = completion;
  a.worst_cost = cost;
  // Saturating: a hostile node's figures must not wrap around.
  uint64_t tokens = prompt + completion < prompt ? UINT64_MAX
                                                 : prompt + completion;
  auto still_open = [self, id, addr, attempt] {
    auto i = self->state.open.find(id);
    return i != self->state.open.end() && i->second.worker == addr &&
           i->second.attempt == attempt;
  };
  // Paced first (BG_AGENT_RPM / _TPM, Retry-After), then reserved: no
  // reservation is held while a call waits for its turn.
  if (st.h.rate_keeper && !a.rate_slot) {
    self->request(st.h.rate_keeper, caf::infinite, pace_atom::value, detail,
                  tokens, may_fall_back)
      .then([=](uint64_t slot) mutable {
        auto& st = self->state;
        if (!still_open()) { // the worker died while it waited
          if (slot != 0)
            self->send(st.h.rate_keeper, refund_atom::value, detail, slot,
                       uint64_t{0});
          return;
        }
        if (slot == 0) { // the run stops: this call does not go
          st.open.erase(id);
          self->send(st.h.supervisor, skipped_atom::value, addr, id, attempt);
          rp.deliver(begin_answer::refused);
          return;
        }
        if (slot == circuit_open_slot) {
          // Its model is down: the worker begins again with the next one.
          st.open[id].begun = false;
          self->send(st.h.auditor,
                     event_for(self, "task_fallback", id, attempt,
                               detail + " is down (circuit open): the "
                                        "attempt goes to the next model"));
          rp.deliver(begin_answer::fall_back);
          return;
        }
        auto& a = st.open[id];
        a.rate_key = detail;
        a.rate_slot = slot;
        begin(self, worker, id, attempt, prompt, completion, cost, detail,
              false, rp);
      });
    return;
  }
  self->request(st.h.budget_keeper, caf::infinite, reserve_atom::value, id,
                tokens, cost)
    .then([=](const reservation& r) mutable {
      auto& st = self->state;
      if (!still_open()) { // the worker died meanwhile
        if (r.granted)
          caf::anon_send(st.h.budget_keeper, release_atom::value, r.id);
        return;
      }
      if (!r.granted) {
        release_pace(self, st.open[id]);
        st.open.erase(id);
        self->send(st.h.supervisor, denied_atom::value, addr, id, attempt,
                   r.reason);
        rp.deliver(begin_answer::refused);
        return;
      }
      auto& a = st.open[id];
      a.reservation = r.id;
      a.begin_answered = rp;
      // The grant goes with the start (the keeper audits it itself only
      // when it scaled it up). The store's answer: running_marked().
      self->send(st.h.store.of(id), running_atom::value, id, attempt, r.id,
                 tokens, cost,
                 event_for(self, "task_started", id, attempt,
                           detail + ", reserved " +
                             tokens_and_cost(tokens, cost)),
                 a.seq);
    });
}

// The store's answer to a running mark: the call may go, or (nothing
// written: the attempt was superseded) the reservation is released and the
// supervisor told.
void running_marked(gateway_ptr self, const mark_answer& m) {
  auto& st = self->state;
  auto i = st.open.find(m.id);
  bool open = i != st.open.end() && i->second.attempt == m.attempt &&
              i->second.reservation == m.reservation && !i->second.in_call;
  if (!m.written) {
    caf::anon_send(st.h.budget_keeper, release_atom::value, m.reservation);
    if (open) {
      auto a = std::move(i->second);
      st.open.erase(i);
      release_pace(self, a);
      self->send(st.h.supervisor, skipped_atom::value, a.worker, m.id,
                 m.attempt);
      a.begin_answered.deliver(begin_answer::refused);
    }
    return;
  }
  if (!open)
    return; // its worker died after the mark: the store charges it later
  auto& a = i->second;
  a.in_call = true;
  if (st.h.counters)
    st.h.counters->call_started();
  a.begin_answered.deliver(begin_answer::go);
}

// The store's answers to completions of one commit: the supervisor is
// told, in one message, which are done (written) and which skipped (stale,
// nothing written). It settles each by id and attempt, as `freed` put it
// among those being stored.
void completions_stored(gateway_ptr self, std::vector<mark_answer> stored) {
  auto& st = self->state;
  auto n = static_cast<uint32_t>(stored.size());
  self->send(st.h.supervisor, done_atom::value, std::move(stored));
  st.storing = n < st.storing ? st.storing - n : 0;
  if (st.storing == 0 && st.node_lost)
    self->quit();
}

// A begin whose request may have a cached answer: looked up first; found,
// the store completes the task from it and the worker is told so (no
// call, no reservation); not found, the begin goes on.
void look_in_cache(gateway_ptr self, const task_worker_actor& worker,
                   const std::string& id, uint32_t attempt, uint64_t prompt,
                   uint64_t completion, double cost, const std::string& detail,
                   bool may_fall_back,
                   caf::typed_response_promise<int32_t> rp) {
  auto& st = self->state;
  auto addr = worker.address();
  auto fp = st.open[id].fingerprint;
  self->request(st.h.store.of(id), caf::infinite, cached_atom::value,
                std::vector<std::string>{id}, std::vector<std::string>{fp},
                event_for(self, "task_cached", id, attempt, ""))
    .then(
      [=](const std::vector<std::string>& done) mutable {
        auto& st = self->state;
        auto i = st.open.find(id);
        bool open = i != st.open.end() && i->second.worker == addr &&
                    i->second.attempt == attempt;
        if (!done.empty()) {
          if (open)
            st.open.erase(i);
          if (st.h.counters)
            st.h.counters->cached();
          self->send(st.h.supervisor, done_atom::value, addr, id, attempt);
          rp.deliver(begin_answer::cached);
          return;
        }
        if (!open)
          return; // the worker died meanwhile
        begin(self, worker, id, attempt, prompt, completion, cost, detail,
              may_fall_back, rp);
      },
      [=](caf::error&) mutable {
        // The store did not answer: the call goes as if nothing were
        // cached (at worst it is paid once more).
        auto i = self->state.open.find(id);
        if (i != self->state.open.end() && i->second.worker == addr &&
            i->second.attempt == attempt)
          begin(self, worker, id, attempt, prompt, completion, cost, detail,
                may_fall_back, rp);
      });
}

// A failed attempt: its usage and task_failed to the store, then the
// failure to the supervisor, naming the worker. Whether it was the
// provider's fault is the rate_keeper's word (`provider_fault`), never a
// node's.
void record_failure(gateway_ptr self, const caf::actor_addr& worker,
                    const std::string& id, uint32_t attempt,
                    call_outcome out, const usage& u, bool provider_fault) {
  auto& st = self->state;
  out.provider_fault = provider_fault;
  auto detail = std::string(to_string(out.error_class())) + ": " + out.error;
  if (out.provider_fault)
    detail += " [the provider's fault: not counted]";
  self->request(st.h.store.of(id), caf::infinite, usage_atom::value, id,
                attempt, u, out.provider, out.model,
                event_for(self, "task_failed", id, attempt, detail),
                out.raw_answer, out.answer_error)
    .then([=](bool) {
      self->send(self->state.h.supervisor, failed_atom::value, worker, id,
                 attempt, out);
    });
}

void finish(gateway_ptr self, const task_worker_actor& worker,
            const std::string& id, uint32_t attempt, const call_outcome& out,
            bool charge_reservation, double latency) {
  auto& st = self->state;
  auto i = st.open.find(id);
  if (i == st.open.end() || i->second.worker != worker.address() ||
      i->second.attempt != attempt || !i->second.in_call) {
    refuse(self, "a result for task " + id + " attempt " +
                   std::to_string(attempt) +
                   " that this gateway did not hand to that worker");
    return;
  }
  auto a = i->second;
  st.open.erase(i);
  call_ended(self, latency);
  auto u = charge_for(self, id, a, out, charge_reservation);
  bool ask_circuit = false;
  if (a.rate_slot != 0) {
    // A node's figures are its own word: its limits and resets pace no one
    // (they would pace every node); its 429s still count, and so do its
    // calls that found the provider down (nodes share the provider).
    bool remote = st.s.remote;
    auto limit_requests = remote ? int64_t{-1} : out.limit_requests;
    auto limit_tokens = remote ? int64_t{-1} : out.limit_tokens;
    auto wait_ms = remote ? int64_t{-1} : out.limit_wait_ms;
    bool limited = out.http_status == 429 && out.retry_after_ms < 0;
    // No answer, and not for want of a connection (a timeout, a call
    // refused here or cancelled): it says nothing of the provider's health.
    bool got_answer = out.ok || out.http_status != 0 || out.provider_down;
    if (out.ok) {
      self->send(st.h.rate_keeper, refund_atom::value, a.rate_key,
                 a.rate_slot, u.total_tokens(), limit_requests, limit_tokens,
                 wait_ms, limited);
    } else {
      ask_circuit = true;
      self->request(st.h.rate_keeper, caf::infinite, refund_atom::value,
                    a.rate_key, a.rate_slot, u.total_tokens(),
                    limit_requests, limit_tokens, wait_ms, limited,
                    out.provider_down ? out.error : std::string(), id,
                    got_answer)
        .then(
          [=](bool open) {
            record_failure(self, worker.address(), id, attempt, out, u, open);
          },
          [=](caf::error&) {
            record_failure(self, worker.address(), id, attempt, out, u, false);
          });
    }
    // A Retry-After holds every call to this provider, not only this task.
    if (out.http_status == 429 && out.retry_after_ms >= 0)
      self->send(st.h.rate_keeper, hold_atom::value,
                 a.rate_key.substr(0, a.rate_key.find('/')),
                 out.retry_after_ms);
  }
  if (charge_reservation && !out.usage_reported)
    self->send(st.h.auditor,
               event_for(self, "budget_charged", id, attempt,
                         "no usage known for a call that was sent (timed "
                         "out, dropped before its answer, or answered "
                         "without usage): charged the reservation, " +
                           fmt_usage(u)));
  if (out.ok) {
    // The worker may start its next attempt while this answer commits.
    self->send(st.h.supervisor, freed_atom::value, worker.address(), id,
               attempt);
    ++st.storing;
    auto kept = out;
    kept.fingerprint = a.fingerprint; // set here only, never by a node
    // Known at once, not when the store gets to it: an equal request
    // begun meanwhile asks the store (behind this answer) instead of
    // paying for a second call.
    if (!a.fingerprint.empty() && st.s.cache_known)
      st.s.cache_known->add(a.fingerprint);
    // The store's answer: completions_stored().
    self->send(st.h.store.of(id), complete_atom::value, id, attempt, kept, u,
               event_for(self, "task_completed", id, attempt, fmt_usage(u)),
               a.reservation, a.seq);
    return;
  }
  if (!ask_circuit)
    record_failure(self, worker.address(), id, attempt, out, u, false);
}

node_gateway_actor::behavior_type node_gateway(gateway_ptr self, head_handles h,
                                               gateway_settings s) {
  self->state.h = std::move(h);
  self->state.s = std::move(s);
  // No exit message is obeyed (from a BASP peer it is just bytes with any
  // source it likes); `kill`, which CAF does not let an actor refuse, ends
  // it: sent by the gatekeeper or the supervisor when they end.
  self->set_exit_handler([=](caf::exit_msg& em) {
    refuse(self, "an exit message (" + to_string(em.reason) + ")");
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    st.watched.erase(dm.source);
    for (auto i = st.open.begin(); i != st.open.end();) {
      if (i->second.worker != dm.source) {
        ++i;
        continue;
      }
      // A reservation not yet in a call is settled by the running mark's
      // reply: released when the mark failed, else charged by the store
      // when the supervisor moves the task on (so keeper and ledger agree).
      if (i->second.in_call)
        call_ended(self, 0.0);
      release_pace(self, i->second);
      i = st.open.erase(i);
    }
    // The node itself is gone: so is the reason for this gateway.
    if (st.s.remote &&
        dm.reason == caf::exit_reason::remote_link_unreachable &&
        st.watched.empty()) {
      st.node_lost = true;
      if (st.storing == 0)
        self->quit();
    }
  });
  // Workers are told apart by address: the sender of their messages.
  auto sender_worker = [self]() -> task_worker_actor {
    return caf::actor_cast<task_worker_actor>(self->current_sender());
  };
  return {
    // From the supervisor only: hand an attempt to one of this node's
    // workers (anonymously: the worker never learns the supervisor).
    // (The task is moved on, not copied: the message is this handler's.)
    [=](dispatch_atom, const task_worker_actor& worker, task& t,
        uint32_t attempt) {
      auto& st = self->state;
      if (self->current_sender() != caf::actor_cast<caf::strong_actor_ptr>(
                                      st.h.supervisor)) {
        refuse(self, "a dispatch for task " + t.id + " not from the "
                     "supervisor");
        return;
      }
      auto& a = st.open[t.id];
      a = open_attempt{};
      a.worker = worker.address();
      a.attempt = attempt;
      a.seq = t.seq;
      a.models = model_chain(t);
      if (st.s.cache && t.temperature == 0)
        a.cacheable = std::make_shared<const task>(t);
      watch(self, worker.address());
      anon_send_here(self, worker, dispatch_atom::value, std::move(t),
                     attempt);
    },
    [=](begin_atom, const std::string& id, uint32_t attempt, uint64_t prompt,
        uint64_t completion, double cost, const std::string& detail,
        bool may_fall_back) -> caf::result<int32_t> {
      auto worker = sender_worker();
      auto rp = self->make_response_promise<int32_t>();
      auto& st = self->state;
      auto i = st.open.find(id);
      if (!worker || i == st.open.end() ||
          i->second.worker != worker.address() ||
          i->second.attempt != attempt || i->second.begun) {
        refuse(self, "a begin for task " + id + " attempt " +
                       std::to_string(attempt) +
                       " that this gateway did not hand to that worker");
        rp.deliver(begin_answer::refused);
        return rp;
      }
      if (++i->second.begins > i->second.models.size() ||
          !names_a_model_of(detail, i->second.models)) {
        refuse(self, "a begin for task " + id + " attempt " +
                       std::to_string(attempt) + " on " +
                       utf8_clip(sanitize_utf8(detail), 120, "...") +
                       ", not one of the task's models (or once too often)");
        rp.deliver(begin_answer::refused);
        return rp;
      }
      auto& a = i->second;
      auto slash = detail.find('/');
      auto provider = detail.substr(0, slash);
      if (a.cacheable && provider != "offline") {
        // Most requests are not in the cache: say so without the store.
        auto fp = request_fingerprint(*a.cacheable, provider,
                                      detail.substr(slash + 1),
                                      st.s.response_format);
        a.cacheable.reset();
        a.fingerprint = fp;
        if (!fp.empty() &&
            (!st.s.cache_known || st.s.cache_known->may_contain(fp))) {
          a.begun = true; // one begin at a time, even while it looks
          look_in_cache(self, worker, id, attempt, prompt, completion, cost,
                        detail, may_fall_back, rp);
          return rp;
        }
      }
      a.cacheable.reset();
      begin(self, worker, id, attempt, prompt, completion, cost, detail,
            may_fall_back, rp);
      return rp;
    },
    [=](finish_atom, const std::string& id, uint32_t attempt,
        const call_outcome& out, bool charge_reservation, double latency) {
      auto worker = sender_worker();
      if (!worker) {
        refuse(self, "an anonymous result for task " + id);
        return;
      }
      finish(self, worker, id, attempt, out, charge_reservation, latency);
    },
    [=](marks_atom, std::vector<mark_answer>& answers) {
      auto& st = self->state;
      if (!st.h.store.holds(self->current_sender())) {
        refuse(self, "store answers not from the store");
        return;
      }
      std::vector<mark_answer> stored;
      for (auto& m : answers)
        if (m.completion)
          stored.push_back(std::move(m));
        else
          running_marked(self, m);
      if (!stored.empty())
        completions_stored(self, std::move(stored));
    },
    [=](heartbeat_atom, const std::string& name, bool busy,
        const std::string& task_id) {
      auto& st = self->state;
      if (st.s.remote && name.rfind(st.s.node + "/", 0) != 0) {
        refuse(self, "a heartbeat for " + name + ", not a worker of " +
                       st.s.node);
        return;
      }
      self->send(st.h.monitor, heartbeat_atom::value, name, busy, task_id);
    },
    [=](join_atom, const std::vector<task_worker_actor>& workers,
        const std::vector<std::string>& names) -> caf::result<bool> {
      auto& st = self->state;
      if (!st.s.remote)
        return false;
      for (auto& w : workers)
        watch(self, w.address());
      auto rp = self->make_response_promise<bool>();
      self->request(st.h.supervisor, caf::infinite, join_atom::value,
                    st.s.node, st.s.address, workers, names)
        .then([=](bool ok) mutable { rp.deliver(ok); },
              [=](caf::error&) mutable { rp.deliver(false); });
      return rp;
    },
  };
}

} // namespace

node_gateway_actor spawn_node_gateway(caf::actor_system& sys,
                                      const head_handles& h,
                                      gateway_settings s) {
  return sys.spawn(node_gateway, h, std::move(s));
}

} // namespace bgagent
