#include "app/provider_prices.hpp"

#include <chrono>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "persistence/store.hpp"
#include "providers/openrouter_models.hpp"

namespace bgagent {

namespace {

constexpr int64_t day_seconds = 24 * 3600;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string age(int64_t seconds) {
  if (seconds < 2 * 3600)
    return std::to_string(seconds / 60) + " min";
  if (seconds < 2 * day_seconds)
    return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / day_seconds) + " days";
}

} // namespace

void add_provider_prices(price_list& prices, const provider_settings& p,
                         store* db, bool writable) {
  if (p.name != "openrouter" || p.base_url.empty())
    return;
  auto url = openrouter_models_url(p.base_url);
  std::optional<cached_prices> cached;
  if (db)
    cached = db->cached_price_list(url);
  auto now = unix_now();
  auto use_cached = [&] {
    prices.set_provider_list(price_map_from_json(cached->prices),
                             url + " (kept " +
                               age(now - cached->fetched_at) + " ago)");
  };
  if (cached && now - cached->fetched_at < day_seconds) {
    use_cached();
    return;
  }
  try {
    auto body = fetch_openrouter_models(
      url, p.api_key, std::max(10.0, p.connect_timeout_seconds));
    auto list = parse_openrouter_models(body);
    if (list.empty())
      throw std::invalid_argument("no model with a usable price");
    if (db && writable)
      db->cache_price_list(url, cached_prices{now, price_map_to_json(list)});
    prices.set_provider_list(std::move(list), url);
  } catch (const std::exception& e) {
    if (cached) {
      spdlog::warn("price list {}: {}; using the copy fetched {} ago", url,
                   e.what(), age(now - cached->fetched_at));
      use_cached();
    } else {
      spdlog::warn("price list {}: {}; models are priced only by "
                   "BG_AGENT_PRICES, BG_AGENT_PRICE_* and the built-in table",
                   url, e.what());
    }
  }
}

} // namespace bgagent
