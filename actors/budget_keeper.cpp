#include "actors/budget_keeper.hpp"

#include <cstdio>
#include <unordered_map>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/events.hpp"

namespace bgagent {

namespace {

struct held {
  uint64_t tokens;
  double cost;
};

struct keeper_state {
  budget_snapshot b;
  std::unordered_map<uint64_t, held> reservations;
  uint64_t next_id = 1;
  bool token_alarm[3] = {false, false, false};
  bool cost_alarm[3] = {false, false, false};
  caf::actor checkpointer, auditor, monitor;
  static inline const char* name = "budget_keeper";
};

using self_ptr = caf::stateful_actor<keeper_state>*;

constexpr double thresholds[3] = {0.5, 0.8, 1.0};

std::string fmt_cost(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", x);
  return buf;
}

void raise_alarm(self_ptr self, const std::string& what, int level,
                 const std::string& figures) {
  static const char* pct[3] = {"50%", "80%", "100%"};
  auto msg = what + " budget " + pct[level] + " used (" + figures + ")";
  self->send(self->state.auditor,
             make_event("budget_alarm", {}, -1, msg));
  self->send(self->state.monitor, alert_atom::value,
             alert{level == 2 ? "critical" : "warning", "budget_alarm", msg,
                   {}});
}

void check_alarms(self_ptr self, bool exhausted) {
  auto& st = self->state;
  auto& b = st.b;
  for (int i = 0; i < 3; ++i) {
    bool tok = b.tokens_limit > 0 &&
               (static_cast<double>(b.tokens_used) >=
                  thresholds[i] * static_cast<double>(b.tokens_limit) ||
                (i == 2 && exhausted));
    if (tok && !st.token_alarm[i]) {
      st.token_alarm[i] = true;
      raise_alarm(self, "token", i,
                  std::to_string(b.tokens_used) + " of " +
                    std::to_string(b.tokens_limit) + " tokens");
    }
    bool cost = b.cost_limit > 0 &&
                (b.cost_used >= thresholds[i] * b.cost_limit ||
                 (i == 2 && exhausted && b.cost_used > 0));
    if (cost && !st.cost_alarm[i]) {
      st.cost_alarm[i] = true;
      raise_alarm(self, "cost", i,
                  "$" + fmt_cost(b.cost_used) + " of $" +
                    fmt_cost(b.cost_limit));
    }
  }
}

// Gives back reservation `id`; false when it is unknown (already released).
bool release(keeper_state& st, uint64_t id) {
  auto i = st.reservations.find(id);
  if (i == st.reservations.end())
    return false;
  st.b.tokens_reserved -= i->second.tokens;
  st.b.cost_reserved -= i->second.cost;
  st.reservations.erase(i);
  if (st.reservations.empty())
    st.b.cost_reserved = 0; // no float residue while idle
  return true;
}

void publish(self_ptr self) {
  self->send(self->state.monitor, budget_atom::value, self->state.b);
}

// Alarms already passed in an earlier process of the same run stay quiet.
void mark_passed_alarms(keeper_state& st) {
  for (int i = 0; i < 3; ++i) {
    if (st.b.tokens_limit > 0 &&
        static_cast<double>(st.b.tokens_used) >=
          thresholds[i] * static_cast<double>(st.b.tokens_limit))
      st.token_alarm[i] = true;
    if (st.b.cost_limit > 0 &&
        st.b.cost_used >= thresholds[i] * st.b.cost_limit)
      st.cost_alarm[i] = true;
  }
}

caf::behavior budget_keeper(self_ptr self, budget_settings s,
                            caf::actor checkpointer, caf::actor auditor,
                            caf::actor monitor) {
  auto& st = self->state;
  st.b.tokens_limit = s.token_limit;
  st.b.cost_limit = s.cost_limit;
  st.b.tokens_used = s.tokens_spent;
  st.b.cost_used = s.cost_spent;
  st.checkpointer = std::move(checkpointer);
  st.auditor = std::move(auditor);
  st.monitor = std::move(monitor);
  mark_passed_alarms(st);
  publish(self);
  return {
    [=](reserve_atom, const std::string& task_id, uint64_t tokens,
        double cost) {
      auto& st = self->state;
      auto& b = st.b;
      bool tokens_fit = b.tokens_used + b.tokens_reserved + tokens <=
                        b.tokens_limit;
      // A tiny epsilon keeps float rounding from denying an exact fit.
      bool cost_fit = b.cost_used + b.cost_reserved + cost <=
                      b.cost_limit + 1e-12;
      reservation r;
      if (!tokens_fit || !cost_fit) {
        ++b.denials;
        r.reason = !tokens_fit
                     ? "token budget: " + std::to_string(b.tokens_used) +
                         " spent + " + std::to_string(b.tokens_reserved) +
                         " reserved + " + std::to_string(tokens) +
                         " needed > " + std::to_string(b.tokens_limit)
                     : "cost budget: $" + fmt_cost(b.cost_used) +
                         " spent + $" + fmt_cost(b.cost_reserved) +
                         " reserved + $" + fmt_cost(cost) + " needed > $" +
                         fmt_cost(b.cost_limit);
        self->send(st.auditor, make_event("budget_denied", task_id, -1,
                                          r.reason));
        check_alarms(self, true);
        publish(self);
        return r;
      }
      r.granted = true;
      r.id = st.next_id++;
      st.reservations.emplace(r.id, held{tokens, cost});
      b.tokens_reserved += tokens;
      b.cost_reserved += cost;
      ++b.grants;
      self->send(st.auditor,
                 make_event("budget_granted", task_id, -1,
                            "reserved " + std::to_string(tokens) +
                              " tokens, $" + fmt_cost(cost)));
      return r;
    },
    [=](commit_atom, uint64_t id, const usage& u) {
      auto& st = self->state;
      if (!release(st, id))
        return false;
      st.b.tokens_used += u.total_tokens();
      st.b.cost_used += u.cost_usd;
      check_alarms(self, false);
      publish(self);
      return true;
    },
    [=](release_atom, uint64_t id) {
      return release(self->state, id);
    },
    [=](set_budget_atom, uint64_t tokens, double cost) {
      auto& st = self->state;
      st.b.tokens_limit = tokens;
      st.b.cost_limit = cost;
      // Alarms are re-armed relative to the new limits.
      for (int i = 0; i < 3; ++i)
        st.token_alarm[i] = st.cost_alarm[i] = false;
      mark_passed_alarms(st);
      caf::anon_send(st.checkpointer, limits_atom::value, tokens, cost);
      publish(self);
      return st.b;
    },
    [=](budget_atom) { return self->state.b; },
  };
}

} // namespace

caf::actor spawn_budget_keeper(caf::actor_system& sys, budget_settings s,
                               const caf::actor& checkpointer,
                               const caf::actor& auditor,
                               const caf::actor& monitor) {
  return sys.spawn(budget_keeper, s, checkpointer, auditor, monitor);
}

} // namespace bgagent
