#include "actors/node_gateway.hpp"

#include <unordered_map>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/worker_context.hpp"

namespace bgagent {

namespace {

struct open_attempt {
  uint64_t reservation = 0;
};

struct gateway_state {
  worker_context h;
  std::unordered_map<caf::actor_addr, open_attempt> open; // by worker
  std::unordered_map<caf::actor_addr, bool> watched;
  static inline const char* name = "node_gateway";
};

using self_ptr = caf::stateful_actor<gateway_state>*;

caf::behavior node_gateway(self_ptr self, worker_context head) {
  self->state.h = std::move(head);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    st.watched.erase(dm.source);
    auto i = st.open.find(dm.source);
    if (i == st.open.end())
      return;
    // The reservation goes back whatever happened (releasing twice is
    // harmless). The call in flight is ended here only when the node is
    // gone: a worker that crashed on a live node ends its own.
    caf::anon_send(st.h.budget_keeper, release_atom::value,
                   i->second.reservation);
    if (dm.reason == caf::exit_reason::remote_link_unreachable ||
        dm.reason == caf::exit_reason::unknown)
      self->send(st.h.monitor, calls_atom::value, int64_t{-1}, 0.0);
    st.open.erase(i);
  });
  return {
    [=](begin_atom, const std::string& id, uint32_t attempt, uint64_t tokens,
        double cost, const std::string& detail, const std::string& node) {
      // Before make_response_promise, which takes the sender over.
      auto worker = caf::actor_cast<caf::actor_addr>(self->current_sender());
      auto rp = self->make_response_promise<reservation, bool>();
      auto& st = self->state;
      self->request(st.h.budget_keeper, caf::infinite, reserve_atom::value, id,
                    tokens, cost)
        .then([=](const reservation& r) mutable {
          auto& st = self->state;
          if (!r.granted) {
            rp.deliver(r, false);
            return;
          }
          self->request(st.h.checkpointer, caf::infinite, running_atom::value,
                        id, attempt)
            .then([=](bool marked) mutable {
              auto& st = self->state;
              if (!marked) {
                caf::anon_send(st.h.budget_keeper, release_atom::value, r.id);
                rp.deliver(r, false);
                return;
              }
              if (worker) {
                st.open[worker] = open_attempt{r.id};
                if (st.watched.emplace(worker, true).second)
                  self->monitor(worker);
              }
              self->send(st.h.auditor,
                         make_event("task_started", id,
                                    static_cast<int32_t>(attempt), detail,
                                    node));
              self->send(st.h.monitor, calls_atom::value, int64_t{1}, 0.0);
              rp.deliver(r, true);
            });
        });
      return rp;
    },
    [=](finish_atom, const std::string& id, uint32_t attempt, uint64_t res,
        const call_outcome& out, const usage& u, double latency,
        const std::string& node, const std::string& completed_detail,
        const std::string& failed_detail) {
      auto worker = caf::actor_cast<caf::actor>(self->current_sender());
      auto& st = self->state;
      st.open.erase(worker.address());
      self->send(st.h.monitor, calls_atom::value, int64_t{-1}, latency);
      auto ev = [=](const std::string& event, const std::string& detail) {
        return make_event(event, id, static_cast<int32_t>(attempt), detail,
                          node);
      };
      self->request(st.h.budget_keeper, caf::infinite, commit_atom::value, res,
                    u)
        .then([=](bool) {
          auto& st = self->state;
          if (out.ok) {
            self->request(st.h.checkpointer, caf::infinite,
                          complete_atom::value, id, attempt, out, u)
              .then([=](bool committed) {
                auto& st = self->state;
                if (committed) {
                  self->send(st.h.auditor, ev("task_completed",
                                              completed_detail));
                  caf::send_as(worker, st.h.supervisor, done_atom::value, id,
                               attempt);
                } else {
                  caf::send_as(worker, st.h.supervisor, skipped_atom::value,
                               id, attempt);
                }
              });
            return;
          }
          if (u.total_tokens() > 0 || u.cost_usd > 0)
            caf::anon_send(st.h.checkpointer, usage_atom::value, id, attempt,
                           u, out.provider, out.model);
          self->send(st.h.auditor, ev("task_failed", failed_detail));
          caf::send_as(worker, st.h.supervisor, failed_atom::value, id,
                       attempt, out);
        });
    },
  };
}

} // namespace

caf::actor spawn_node_gateway(caf::actor_system& sys,
                              const worker_context& head) {
  return sys.spawn(node_gateway, head);
}

} // namespace bgagent
