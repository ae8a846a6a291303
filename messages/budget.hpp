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

// In (set_budget_atom, tokens, cost): the limit that stays as it is.
constexpr uint64_t keep_token_limit = UINT64_MAX;
constexpr double keep_cost_limit = -1;

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
