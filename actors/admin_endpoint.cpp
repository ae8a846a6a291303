#include "actors/admin_endpoint.hpp"

#include <cmath>
#include <cstdio>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/admin_endpoint_actor.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/cluster.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "actors/head_handles.hpp"

namespace bgagent {

namespace {

struct endpoint_state {
  head_handles h; // never sent to the admin node
  caf::node_id admin_node;
  std::string address;
  std::string admin_name;
  bool watching = false;
  static inline const char* name = "admin_endpoint";
};

using endpoint_ptr = admin_endpoint_actor::stateful_pointer<endpoint_state>;

// True when the current message comes from the admin node; otherwise the
// message is audited as refused.
bool allowed(endpoint_ptr self, const std::string& command) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (sender && sender->node() == st.admin_node) {
    if (!st.watching) {
      // The session ends with the admin's actor (or its connection).
      st.watching = true;
      self->monitor(sender);
    }
    self->send(st.h.auditor,
               make_event("admin_command", {}, -1,
                          command + " (admin " + st.admin_name + " at " +
                            st.address + ")",
                          st.address));
    spdlog::info("admin {} at {}: {}", st.admin_name, st.address, command);
    return true;
  }
  self->send(st.h.auditor,
             make_event("admin_refused", {}, -1,
                        command + ": sent to the admin endpoint of " +
                          st.address + " by another node",
                        sender ? to_string(sender->node()) : "anonymous"));
  return false;
}

// Asks `dest` and answers the admin with its reply. Never a delegation:
// the responder's handle would travel to the admin node and make `dest`
// addressable from the network.
template <class Reply, class Dest, class... Ts>
caf::typed_response_promise<Reply> forward(endpoint_ptr self, const Dest& dest,
                                           Ts... xs) {
  auto rp = self->make_response_promise<Reply>();
  self->request(dest, caf::infinite, xs...)
    .then([=](Reply& r) mutable { rp.deliver(std::move(r)); },
          [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (auto& id : ids)
    out += (out.empty() ? "" : " ") + id;
  return out;
}

admin_endpoint_actor::behavior_type
admin_endpoint(endpoint_ptr self, head_handles h, caf::node_id admin_node,
               std::string address, std::string admin_name) {
  auto& st = self->state;
  st.h = std::move(h);
  st.admin_node = std::move(admin_node);
  st.address = std::move(address);
  st.admin_name = std::move(admin_name);
  self->set_down_handler([=](caf::down_msg&) { self->quit(); });
  // A session that never sends a command does not linger.
  self->delayed_send(self, std::chrono::seconds(120), timeout_atom::value);
  auto refused = caf::sec::request_receiver_down;
  return {
    [=](timeout_atom) {
      if (!self->state.watching)
        self->quit();
    },
    [=](status_atom) -> caf::result<admin_status> {
      if (!allowed(self, "status"))
        return refused;
      auto rp = self->make_response_promise<admin_status>();
      auto& st = self->state;
      self->request(st.h.store.main(), caf::infinite, status_atom::value)
        .then([=](status_report& rep) mutable {
          auto& st = self->state;
          self->request(st.h.budget_keeper, caf::infinite, budget_atom::value)
            .then([=](const budget_snapshot& b) mutable {
              auto& st = self->state;
              rep.budget.tokens_used = b.tokens_used;
              rep.budget.tokens_limit = b.tokens_limit;
              rep.budget.tokens_reserved = b.tokens_reserved;
              rep.budget.cost_used = b.cost_used;
              rep.budget.cost_limit = b.cost_limit;
              rep.budget.cost_reserved = b.cost_reserved;
              self->request(st.h.monitor, caf::infinite, metrics_atom::value)
                .then([=](metrics_snapshot& m) mutable {
                  auto& st = self->state;
                  self->request(st.h.supervisor, caf::infinite,
                                workers_atom::value)
                    .then([=](std::vector<std::string>& w) mutable {
                      rp.deliver(admin_status{rep, m, std::move(w)});
                    });
                });
            });
        });
      return rp;
    },
    [=](pause_atom) -> caf::result<bool> {
      if (!allowed(self, "pause"))
        return refused;
      return forward<bool>(self, self->state.h.supervisor, pause_atom::value);
    },
    [=](resume_atom) -> caf::result<bool> {
      if (!allowed(self, "resume"))
        return refused;
      return forward<bool>(self, self->state.h.supervisor, resume_atom::value);
    },
    [=](drain_atom) -> caf::result<bool> {
      if (!allowed(self, "drain"))
        return refused;
      auto& st = self->state;
      if (st.h.batches) {
        // The batch_runner ends at once (its batches stay open in the
        // store); the supervisor may not have started (batch mode): it is
        // told, not waited for.
        caf::anon_send(st.h.batches, drain_atom::value, int32_t{0});
        caf::anon_send(st.h.supervisor, drain_atom::value);
        return true;
      }
      return forward<bool>(self, st.h.supervisor, drain_atom::value);
    },
    [=](shutdown_atom) -> caf::result<bool> {
      if (!allowed(self, "shutdown"))
        return refused;
      auto& st = self->state;
      if (st.h.batches) {
        caf::anon_send(st.h.batches, drain_atom::value, int32_t{0});
        caf::anon_send(st.h.supervisor, shutdown_atom::value);
        return true;
      }
      return forward<bool>(self, st.h.supervisor, shutdown_atom::value);
    },
    [=](set_budget_atom,
        const budget_change& c) -> caf::result<budget_snapshot> {
      std::string what = "set-budget";
      if (c.set_tokens)
        what += " --tokens " + std::to_string(c.tokens);
      if (c.set_cost && c.cost >= 0 && std::isfinite(c.cost)) {
        char buf[48];
        std::snprintf(buf, sizeof(buf), " --cost %.6f", c.cost);
        what += buf;
      }
      if (!allowed(self, what))
        return refused;
      return forward<budget_snapshot>(self, self->state.h.budget_keeper,
                                      set_budget_atom::value, c);
    },
    [=](requeue_atom, const std::vector<std::string>& ids,
        bool all_quarantined) -> caf::result<std::vector<std::string>> {
      if (!allowed(self, "requeue " + (all_quarantined ? std::string(
                                                           "--quarantined")
                                                       : join_ids(ids))))
        return refused;
      auto rp = self->make_response_promise<std::vector<std::string>>();
      auto& st = self->state;
      // The event is committed with each requeue, in its transaction.
      self->request(st.h.store.main(), caf::infinite, requeue_atom::value, ids,
                    all_quarantined,
                    make_event("task_requeued", {}, -1,
                               "by admin at " + st.address, st.address))
        .then([=](std::vector<std::string>& done) mutable {
          if (!done.empty())
            self->send(self->state.h.supervisor, poll_atom::value);
          rp.deliver(std::move(done));
        });
      return rp;
    },
    [=](cancel_atom, const std::vector<std::string>& ids)
      -> caf::result<std::vector<std::string>> {
      if (!allowed(self, "cancel " + join_ids(ids)))
        return refused;
      auto& st = self->state;
      return forward<std::vector<std::string>>(
        self, st.h.supervisor, cancel_atom::value, ids,
        make_event("task_cancelled", {}, -1, "by admin at " + st.address,
                   st.address));
    },
    [=](cancel_atom, batch_atom,
        const std::string& id) -> caf::result<std::string> {
      if (!allowed(self, "cancel-batch " + id))
        return refused;
      auto& st = self->state;
      if (!st.h.batches)
        return std::string("this head has no provider batch open (no "
                           "--mode batch, and none taken up)");
      return forward<std::string>(self, st.h.batches, cancel_atom::value, id);
    },
    [=](workers_atom) -> caf::result<std::vector<std::string>> {
      if (!allowed(self, "workers"))
        return refused;
      return forward<std::vector<std::string>>(self, self->state.h.supervisor,
                                              workers_atom::value);
    },
  };
}

} // namespace

admin_endpoint_actor spawn_admin_endpoint(caf::actor_system& sys,
                                          const head_handles& handles,
                                          const caf::node_id& admin_node,
                                          const std::string& address,
                                          const std::string& admin_name) {
  return sys.spawn(admin_endpoint, handles, admin_node, address, admin_name);
}

} // namespace bgagent
