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
  double cost(uint64_t prompt_tokens, uint64_t completion_tokens) const {
    return (static_cast<double>(prompt_tokens) * prompt_per_million +
            static_cast<double>(completion_tokens) * completion_per_million) /
           1e6;
  }
};

} // namespace bgagent
