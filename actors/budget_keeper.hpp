// The budget_keeper: the only actor that decides whether tokens and dollars
// may be spent.
//
// Contract (messages, request -> reply):
//   (reserve_atom, string task_id, uint64 tokens, double cost) -> reservation
//       granted only if spent + reserved + this fits both budgets
//   (commit_atom, uint64 reservation_id, usage actual)         -> bool
//       releases the reservation and adds the actual usage to spent
//   (release_atom, uint64 reservation_id)                      -> bool
//   (set_budget_atom, uint64 tokens, double cost)              -> budget_snapshot
//   (budget_atom)                                              -> budget_snapshot
// So concurrent workers can never overshoot: the sum of what is spent and
// what is reserved never exceeds the limits. Alarms at 50 %, 80 % and 100 %
// of either budget fire once each (audit `budget_alarm` + an alert to the
// monitor); the first denial also counts as reaching 100 %. Every grant and
// denial is audited.
#pragma once

#include <cstdint>

#include <caf/fwd.hpp>

namespace bgagent {

struct budget_settings {
  uint64_t token_limit = 50000;
  double cost_limit = 1.0;
  uint64_t tokens_spent = 0; // restored from the ledger on resume
  double cost_spent = 0;
};

caf::actor spawn_budget_keeper(caf::actor_system& sys, budget_settings s,
                               const caf::actor& checkpointer,
                               const caf::actor& auditor,
                               const caf::actor& monitor);

} // namespace bgagent
