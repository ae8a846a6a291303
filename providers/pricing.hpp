// Model prices in USD per million tokens, for reservations and for providers
// that do not report `usage.cost`.
//
// Contract: price_for() never returns a zero price for an unknown paid model:
// it falls back to a deliberately high default so budgets err on the safe
// side. Overrides (BG_AGENT_PRICE_PROMPT / BG_AGENT_PRICE_COMPLETION) win.
#pragma once

#include <cstdint>
#include <string>

namespace bgagent {

struct model_price {
  double prompt_per_million = 0;
  double completion_per_million = 0;
  double cost(uint64_t prompt_tokens, uint64_t completion_tokens) const {
    return (static_cast<double>(prompt_tokens) * prompt_per_million +
            static_cast<double>(completion_tokens) * completion_per_million) /
           1e6;
  }
};

// The price of `model`; an override >= 0 replaces the table's figure.
model_price price_for(const std::string& model, double override_prompt = -1,
                      double override_completion = -1);

} // namespace bgagent
