// A model's price in USD per million tokens, for reservations and for
// providers that do not report `usage.cost` (where prices come from:
// providers/price_list.hpp).
#pragma once

#include <cstdint>

namespace bgagent {

struct model_price {
  double prompt_per_million = 0;
  double completion_per_million = 0;
  // The provider's batch API price (< 0: not given; issue 15's batch mode
  // then applies its discount to the live price).
  double batch_prompt_per_million = -1;
  double batch_completion_per_million = -1;
  // Prompt tokens read from the provider's prompt cache, and reasoning
  // tokens (< 0: not given; then priced as prompt and completion tokens).
  double cached_prompt_per_million = -1;
  double reasoning_per_million = -1;
  double cost(uint64_t prompt_tokens, uint64_t completion_tokens) const {
    return (static_cast<double>(prompt_tokens) * prompt_per_million +
            static_cast<double>(completion_tokens) * completion_per_million) /
           1e6;
  }
  // The same, where `cached` of the prompt tokens came from the cache and
  // `reasoning` of the completion tokens were reasoning (each at most its
  // total).
  double cost(uint64_t prompt_tokens, uint64_t completion_tokens,
              uint64_t cached, uint64_t reasoning) const {
    cached = cached < prompt_tokens ? cached : prompt_tokens;
    reasoning = reasoning < completion_tokens ? reasoning : completion_tokens;
    double cp = cached_prompt_per_million < 0 ? prompt_per_million
                                              : cached_prompt_per_million;
    double rp = reasoning_per_million < 0 ? completion_per_million
                                          : reasoning_per_million;
    return (static_cast<double>(prompt_tokens - cached) * prompt_per_million +
            static_cast<double>(cached) * cp +
            static_cast<double>(completion_tokens - reasoning) *
              completion_per_million +
            static_cast<double>(reasoning) * rp) /
           1e6;
  }
};

} // namespace bgagent
