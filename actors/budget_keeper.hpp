// The budget_keeper: the only actor that decides whether tokens and dollars
// may be spent.
//
// Contract (messages/budget_keeper_actor.hpp, request -> reply):
//   (reserve_atom, string task_id, uint64 tokens, double cost) -> reservation
//       granted only if spent + reserved + tokens x factor fits the token
//       budget and spent + reserved + cost x factor fits the cost budget;
//       a grant holds tokens x factor (rounded up) and cost x factor; a
//       NaN cost is denied, a negative one counts as 0
//   (commit_atom, uint64 reservation_id, usage actual)         -> bool
//       releases the reservation and adds the actual usage to spent (a
//       cost that is NaN or negative counts as the reservation's). An
//       unknown id (never granted, released, or already committed): false,
//       and nothing is added, so nothing is ever counted twice.
//   (commit_atom, vector<settlement>)                          -> (nothing)
//       each as above, then the alarms checked and the totals published
//       once: the checkpointer's settlements of one store commit
//   (release_atom, uint64 reservation_id)                      -> bool
//   (set_budget_atom, budget_change)                           -> budget_snapshot
//       changes the limits the change names (re-arming their alarms)
//   (budget_atom)                                              -> budget_snapshot
// So concurrent workers can never overshoot: the sum of what is spent and
// what is reserved never exceeds the limits, as long as calls use no more
// than they reserved. Alarms at 50 %, 80 % and 100 % of what either budget
// has spent (reservations aside, so they come in that order) fire once each
// (audit `budget_alarm` + an alert to the monitor, critical at 100 %). The
// first denial by a budget raises one critical `budget_exhausted` alert
// (spent so far and what the call needed). Every denial is audited; a
// grant is audited (`budget_granted`) for a batch, when held again, or when
// scaled by `factor`: a task's ordinary grant is written in its
// `task_started` by the gateway that asked (one audit line fewer per call).
//
// Usage over the reservation: when a commit's actual tokens (prompt +
// completion) or cost exceed what that reservation held, the keeper still
// adds the actual usage (the provider billed it), audits
// `usage_over_reservation` and sends the monitor a critical alert of that
// kind (with the task id), naming the reservation's figures (held, and the
// worst case asked for) and the actual ones. It then raises its `factor`:
// factor starts at 1 and becomes the largest actual/asked ratio seen
// (tokens, and cost where the asked cost was > 0), capped at 10, never
// lowered for the rest of the process; every later reservation is scaled by
// it as above (grant and denial texts say so).
#pragma once

#include <cstdint>
#include <functional>

#include <caf/fwd.hpp>

#include "messages/auditor_actor.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/store_handles.hpp"
#include "messages/monitor_actor.hpp"
#include "policy/budget_period.hpp"

namespace bgagent {

struct budget_settings {
  uint64_t token_limit = 50000;
  double cost_limit = 1.0;
  uint64_t tokens_spent = 0; // restored from the ledger on resume
  double cost_spent = 0;
  // The run being resumed already stopped on a denial with these limits:
  // its budget_exhausted alerts were raised then and stay quiet now.
  bool exhausted = false;
  // The budget's period (policy/budget_period.hpp). Past the current
  // period's end the spending starts again at 0 (audited
  // `budget_period_started`, alarms and the exhausted alert re-armed),
  // looked at on every message, so usage committed after the end counts in
  // the new period, as the ledger's time says. `clock`
  // gives unix seconds (tests set it); empty: the system clock.
  budget_period period = budget_period::run;
  // The first second of the period `tokens_spent` and `cost_spent` were
  // read for (0: the one holding the clock's now).
  int64_t period_began = 0;
  std::function<int64_t()> clock;
};

budget_keeper_actor spawn_budget_keeper(caf::actor_system& sys,
                                        budget_settings s,
                                        const store_handles& store,
                                        const auditor_actor& auditor,
                                        const monitor_actor& monitor);

} // namespace bgagent
