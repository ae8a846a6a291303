// OpenRouter's own price list: GET {base}/models, which gives every model's
// prices in USD per token (as decimal strings).
//
// Contract:
// - parse_openrouter_models() keeps the models with a usable prompt and
//   completion price (0 <= x, finite, at most $100,000 per million) in USD
//   per million tokens; a model priced "-1" (a router whose price varies)
//   or with unreadable prices is left out, so it has no known price. A body
//   that is not such a list throws std::invalid_argument, one line.
// - fetch_openrouter_models() is one blocking GET (for a run's start, not an
//   actor); a failure (unreachable, timeout, non-2xx, over 32 MB) throws
//   std::runtime_error naming the URL, never the key.
// - The list is kept in the store for a day (store::cached_price_list).
#pragma once

#include <map>
#include <string>

#include "providers/pricing.hpp"

namespace bgagent {

std::map<std::string, model_price>
parse_openrouter_models(const std::string& body);

// {base}/models, e.g. https://openrouter.ai/api/v1/models.
std::string openrouter_models_url(const std::string& base_url);

std::string fetch_openrouter_models(const std::string& url,
                                    const std::string& api_key,
                                    double timeout_seconds);

// The list as a compact JSON text ({"model": [prompt, completion]}, per
// million tokens) for the store's cache, and back.
std::string price_map_to_json(const std::map<std::string, model_price>& m);
std::map<std::string, model_price> price_map_from_json(const std::string& text);

} // namespace bgagent
