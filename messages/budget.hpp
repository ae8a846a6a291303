// Budget messages: a reservation request's answer, actual usage, and a view
// of the budget.
//
// Contract: a worker asks the budget_keeper for a reservation of its worst
// case before every provider call and commits the actual usage after it.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace bgagent {

// "N tokens, $C" (cost to 6 decimals): how audit lines state an amount.
std::string tokens_and_cost(uint64_t tokens, double cost);

struct reservation {
  bool granted = false;
  uint64_t id = 0;
  std::string reason; // why it was denied
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reservation& x) {
  return f(caf::meta::type_name("reservation"), x.granted, x.id, x.reason);
}

struct usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;
  uint64_t total_tokens() const { return prompt_tokens + completion_tokens; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage& x) {
  return f(caf::meta::type_name("usage"), x.prompt_tokens,
           x.completion_tokens, x.cost_usd);
}

// A reservation ended by a committed attempt, with what it actually used.
struct settlement {
  uint64_t reservation_id = 0;
  usage spent;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, settlement& x) {
  return f(caf::meta::type_name("settlement"), x.reservation_id, x.spent);
}

// A change of a running run's budgets (admin set-budget): a limit changes
// only when its flag is set (a cost that is not a finite amount >= 0 never).
struct budget_change {
  bool set_tokens = false;
  uint64_t tokens = 0;
  bool set_cost = false;
  double cost = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, budget_change& x) {
  return f(caf::meta::type_name("budget_change"), x.set_tokens, x.tokens,
           x.set_cost, x.cost);
}

struct budget_snapshot {
  uint64_t tokens_used = 0;
  uint64_t tokens_reserved = 0;
  uint64_t tokens_limit = 0;
  double cost_used = 0;
  double cost_reserved = 0;
  double cost_limit = 0;
  uint64_t grants = 0;
  uint64_t denials = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, budget_snapshot& x) {
  return f(caf::meta::type_name("budget_snapshot"), x.tokens_used,
           x.tokens_reserved, x.tokens_limit, x.cost_used, x.cost_reserved,
           x.cost_limit, x.grants, x.denials);
}

} // namespace bgagent
