// The provider's own price list added to the prices in force: OpenRouter's
// GET /models, kept in the store for a day.
//
// Contract: for openrouter only (other providers publish no prices). The
// store's copy is used while under a day old; else the list is fetched
// (and, with a writable store, kept); when that fails an older copy is used
// with a warning, else none (a warning: then only the prices file,
// BG_AGENT_PRICE_* and the built-in table price models). Never throws for
// the network: a run goes on, refusing only models left without a price.
#pragma once

#include "providers/price_list.hpp"
#include "providers/provider.hpp"

namespace bgagent {

class store;

// `db`: the store to read and (when `writable`) keep the list in; null for
// none (a worker node).
void add_provider_prices(price_list& prices, const provider_settings& p,
                         store* db, bool writable);

} // namespace bgagent
