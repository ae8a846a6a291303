#include "actors/budget_keeper.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <unordered_map>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/budget.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/store_handles.hpp"
#include "messages/monitor_actor.hpp"
#include "messages/events.hpp"

namespace bgagent {

namespace {

struct held {
  uint64_t tokens; // what the reservation holds: the worst case x factor
  double cost;
  uint64_t asked_tokens; // the worst case the worker asked for
  double asked_cost;
  std::string task_id;
};

// Later reservations are scaled by at most this after usage over one.
constexpr double max_factor = 10.0;

struct keeper_state {
  budget_snapshot b;
  std::unordered_map<uint64_t, held> reservations;
  uint64_t next_id = 1;
  // >= 1: the largest actual/asked ratio of a usage over its reservation
  // (capped at max_factor); every reservation holds its worst case x this.
  double factor = 1.0;
  budget_period period = budget_period::run;
  std::function<int64_t()> clock;
  int64_t next_period = 0; // unix seconds the next period starts
  bool token_alarm[3] = {false, false, false};
  bool cost_alarm[3] = {false, false, false};
  bool token_exhausted = false, cost_exhausted = false; // alert raised
  store_handles store; // the writers of the store's files
  auditor_actor auditor;
  monitor_actor monitor;
  static inline const char* name = "budget_keeper";
};

using keeper_ptr = budget_keeper_actor::stateful_pointer<keeper_state>;

// Straight to the checkpointer's transaction when there is one: a grant is
// then numbered before the `running` mark the worker sends after it (CAF
// keeps one sender's order; the grant is enqueued before the reply).
// An event about a task goes to the writer of that task's file.
void audit(keeper_ptr self, audit_event ev) {
  auto& st = self->state;
  if (st.store) {
    auto& to = ev.task_id.empty() ? st.store.main() : st.store.of(ev.task_id);
    self->send(to, audit_atom::value, std::move(ev));
  }
  else
    self->send(st.auditor, std::move(ev));
}

constexpr double thresholds[3] = {0.5, 0.8, 1.0};

std::string fmt_cost(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", x);
  return buf;
}

std::string fmt_factor(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "x%.2f", x);
  return buf;
}

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
           ? std::numeric_limits<uint64_t>::max()
           : a + b;
}

// ceil(tokens x factor), saturating (no double that does not fit is cast).
uint64_t scaled(uint64_t tokens, double factor) {
  if (factor <= 1.0)
    return tokens;
  double x = std::ceil(static_cast<double>(tokens) * factor);
  if (!(x < 18446744073709551616.0)) // 2^64
    return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(x);
}

// A cost that is not a finite amount >= 0 counts as `fallback`.
double sane_cost(double x, double fallback) {
  return std::isfinite(x) && x >= 0 ? x : fallback;
}

void raise_alarm(keeper_ptr self, const std::string& what, int level,
                 const std::string& figures) {
  static const char* pct[3] = {"50%", "80%", "100%"};
  auto msg = what + " budget " + pct[level] + " used (" + figures + ")";
  audit(self, make_event("budget_alarm", {}, -1, msg));
  self->send(self->state.monitor, alert_atom::value,
             alert{level == 2 ? severity::critical : severity::warning, "budget_alarm", msg,
                   {}});
}

// Alarms count what was spent, never what is reserved: the levels then come
// in order as spending grows.
void check_alarms(keeper_ptr self) {
  auto& st = self->state;
  auto& b = st.b;
  for (int i = 0; i < 3; ++i) {
    bool tok = b.tokens_limit > 0 &&
               static_cast<double>(b.tokens_used) >=
                 thresholds[i] * static_cast<double>(b.tokens_limit);
    if (tok && !st.token_alarm[i]) {
      st.token_alarm[i] = true;
      raise_alarm(self, "token", i,
                  std::to_string(b.tokens_used) + " of " +
                    std::to_string(b.tokens_limit) + " tokens");
    }
    bool cost = b.cost_limit > 0 && b.cost_used >= thresholds[i] * b.cost_limit;
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

// A call used more than its reservation held: the estimate was wrong (or
// the provider billed more than max_tokens allows). Critical alert, audit,
// and later reservations scale up by the ratio (never down, at most x10).
void over_reservation(keeper_ptr self, const held& h, uint64_t tokens,
                      double cost, bool tokens_over, bool cost_over) {
  auto& st = self->state;
  double ratio = 1.0;
  if (tokens_over && h.asked_tokens > 0)
    ratio = std::max(ratio, static_cast<double>(tokens) /
                              static_cast<double>(h.asked_tokens));
  else if (tokens_over)
    ratio = max_factor;
  // A free worst case ($0) cannot be scaled into a bound: only the alert.
  if (cost_over && h.asked_cost > 0)
    ratio = std::max(ratio, cost / h.asked_cost);
  ratio = std::min(ratio, max_factor);
  bool raised = ratio > st.factor;
  if (raised)
    st.factor = ratio;
  auto msg = "usage over reservation for task " + h.task_id + ": used " +
             std::to_string(tokens) + " tokens, $" + fmt_cost(cost) +
             "; the reservation held " + std::to_string(h.tokens) +
             " tokens, $" + fmt_cost(h.cost) + " (worst case " +
             std::to_string(h.asked_tokens) + " tokens, $" +
             fmt_cost(h.asked_cost) + ")" +
             (tokens_over ? "; tokens over" : "") +
             (cost_over ? "; cost over" : "") +
             "; later reservations scaled " + fmt_factor(st.factor) +
             (raised ? "" : " (unchanged)");
  audit(self, make_event("usage_over_reservation", h.task_id, -1, msg));
  self->send(st.monitor, alert_atom::value,
             alert{severity::critical, "usage_over_reservation", msg, h.task_id});
}

void publish(keeper_ptr self) {
  self->send(self->state.monitor, budget_atom::value, self->state.b);
}

// Ends reservation `id` with its actual usage `u`; false (nothing counted)
// when the id is unknown or already settled, so nothing counts twice.
bool settle(keeper_ptr self, uint64_t id, const usage& u) {
  auto& st = self->state;
  auto i = st.reservations.find(id);
  if (i == st.reservations.end())
    return false;
  auto h = i->second;
  release(st, id);
  auto tokens = sat_add(u.prompt_tokens, u.completion_tokens);
  // A cost that is no amount (NaN, negative) would poison every later
  // comparison: it counts as the reservation's.
  auto cost = sane_cost(u.cost_usd, h.cost);
  st.b.tokens_used = sat_add(st.b.tokens_used, tokens);
  st.b.cost_used += cost;
  bool tokens_over = tokens > h.tokens;
  bool cost_over = cost > h.cost * (1 + 1e-9) + 1e-12;
  if (tokens_over || cost_over)
    over_reservation(self, h, tokens, cost, tokens_over, cost_over);
  return true;
}

int64_t now_seconds(const keeper_state& st) {
  return st.clock ? st.clock() : static_cast<int64_t>(std::time(nullptr));
}

// A calendar period that has ended: its spending is history, the new
// one's starts at 0 (reservations held go on).
void roll_period(keeper_ptr self) {
  auto& st = self->state;
  if (st.period == budget_period::run)
    return;
  auto now = now_seconds(st);
  if (now < st.next_period)
    return;
  auto start = period_start(st.period, now);
  char cost[32];
  std::snprintf(cost, sizeof(cost), "%.6f", st.b.cost_used);
  audit(self, make_event("budget_period_started", {}, -1,
                         std::string("a new ") + to_string(st.period) +
                           " from " + rfc3339_utc(start) +
                           ": spending starts again at 0 (the last spent " +
                           std::to_string(st.b.tokens_used) + " tokens, $" +
                           cost + ")"));
  st.b.tokens_used = 0;
  st.b.cost_used = 0;
  for (int i = 0; i < 3; ++i)
    st.token_alarm[i] = st.cost_alarm[i] = false;
  st.token_exhausted = st.cost_exhausted = false;
  st.next_period = next_period_start(st.period, now);
  publish(self);
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

// One reservation (see the header); `force` grants it whatever the
// budget says: a batch task's worst case held again by a restarted head
// (the provider has its request already).
reservation reserve(keeper_ptr self, const std::string& task_id,
                    uint64_t asked_tokens, double asked_cost, bool force,
                    bool audit_grant) {
      roll_period(self);
      auto& st = self->state;
      auto& b = st.b;
      if (asked_cost < 0)
        asked_cost = 0; // NaN stays NaN: it fits nothing, so it is denied
      // After usage over a reservation, every worst case is scaled up.
      auto tokens = scaled(asked_tokens, st.factor);
      double cost = asked_cost * st.factor;
      std::string scaling =
        st.factor > 1.0 ? " (" + std::to_string(asked_tokens) + " tokens, $" +
                            fmt_cost(asked_cost) + " " + fmt_factor(st.factor) +
                            " after usage over a reservation)"
                        : std::string();
      bool tokens_fit = sat_add(sat_add(b.tokens_used, b.tokens_reserved),
                                tokens) <= b.tokens_limit;
      // A tiny epsilon keeps float rounding from denying an exact fit.
      bool cost_fit = b.cost_used + b.cost_reserved + cost <=
                      b.cost_limit + 1e-12;
      reservation r;
      if (!force && (!tokens_fit || !cost_fit)) {
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
        r.reason += scaling;
        audit(self, make_event("budget_denied", task_id, -1,
                                          r.reason));
        bool& raised = !tokens_fit ? st.token_exhausted : st.cost_exhausted;
        if (!raised) {
          raised = true;
          self->send(st.monitor, alert_atom::value,
                     alert{severity::critical, "budget_exhausted",
                           "budget exhausted, no new calls start: " + r.reason,
                           task_id});
        }
        publish(self);
        return r;
      }
      r.granted = true;
      r.id = st.next_id++;
      st.reservations.emplace(
        r.id, held{tokens, cost, asked_tokens, asked_cost, task_id});
      b.tokens_reserved += tokens; // fits under the limit: no overflow
      b.cost_reserved += cost;
      ++b.grants;
      // The caller's task_started says an ordinary grant.
      if (audit_grant || force || st.factor > 1.0)
        audit(self, make_event("budget_granted", task_id, -1,
                            (force ? "held again (its batch is at the "
                                     "provider): "
                                   : "reserved ") +
                              tokens_and_cost(tokens, cost) + scaling));
      return r;
}

budget_keeper_actor::behavior_type
budget_keeper(keeper_ptr self, budget_settings s,
              store_handles store, auditor_actor auditor,
              monitor_actor monitor) {
  auto& st = self->state;
  st.b.tokens_limit = s.token_limit;
  st.b.cost_limit = s.cost_limit;
  st.b.tokens_used = s.tokens_spent;
  st.b.cost_used = s.cost_spent;
  st.period = s.period;
  st.clock = s.clock;
  st.next_period = next_period_start(
    s.period, s.period_began != 0 ? s.period_began : now_seconds(st));
  st.store = std::move(store);
  st.auditor = std::move(auditor);
  st.monitor = std::move(monitor);
  mark_passed_alarms(st);
  if (s.exhausted)
    st.token_exhausted = st.cost_exhausted = true;
  publish(self);
  return {
    [=](reserve_atom, const std::string& task_id, uint64_t asked_tokens,
        double asked_cost) {
      return reserve(self, task_id, asked_tokens, asked_cost, false, false);
    },
    [=](reserve_atom, const std::vector<std::string>& ids,
        const std::vector<uint64_t>& tokens, const std::vector<double>& costs,
        bool force) {
      std::vector<reservation> out;
      for (size_t i = 0; i < ids.size() && i < tokens.size() &&
                         i < costs.size();
           ++i) {
        out.push_back(
          reserve(self, ids[i], tokens[i], costs[i], force, true));
        if (!out.back().granted)
          break; // what does not fit is not asked for: the batch is cut
      }
      return out;
    },
    [=](commit_atom, uint64_t id, const usage& u) {
      roll_period(self);
      if (!settle(self, id, u))
        return false;
      check_alarms(self);
      publish(self);
      return true;
    },
    [=](commit_atom, const std::vector<settlement>& all) {
      roll_period(self);
      bool any = false;
      for (auto& s : all)
        any |= settle(self, s.reservation_id, s.spent);
      if (any) {
        check_alarms(self);
        publish(self);
      }
    },
    [=](release_atom, uint64_t id) {
      roll_period(self);
      return release(self->state, id);
    },
    [=](set_budget_atom, const budget_change& c) {
      roll_period(self);
      auto& st = self->state;
      // A changed limit's alarms are re-armed relative to it.
      if (c.set_tokens) {
        st.b.tokens_limit = c.tokens;
        for (auto& a : st.token_alarm)
          a = false;
        st.token_exhausted = false;
      }
      if (c.set_cost && c.cost >= 0 && std::isfinite(c.cost)) {
        st.b.cost_limit = c.cost;
        for (auto& a : st.cost_alarm)
          a = false;
        st.cost_exhausted = false;
      }
      mark_passed_alarms(st);
      auto tokens = st.b.tokens_limit;
      auto cost = st.b.cost_limit;
      if (st.store)
        caf::anon_send(st.store.main(), limits_atom::value, tokens, cost);
      publish(self);
      return st.b;
    },
    [=](budget_atom) {
      roll_period(self);
      return self->state.b;
    },
  };
}

} // namespace

budget_keeper_actor spawn_budget_keeper(caf::actor_system& sys,
                                        budget_settings s,
                                        const store_handles& store,
                                        const auditor_actor& auditor,
                                        const monitor_actor& monitor) {
  return sys.spawn(budget_keeper, s, store, auditor, monitor);
}

} // namespace bgagent
