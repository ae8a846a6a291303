// `bgagent models [--json]`: the prices in force, per model, and where each
// came from (providers/price_list.hpp).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/provider_prices.hpp"
#include "persistence/store.hpp"

namespace bgagent {

namespace {

nlohmann::json price_or_null(double x) {
  return x < 0 ? nlohmann::json(nullptr) : nlohmann::json(x);
}

std::string per_million(double x) {
  if (x < 0)
    return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  return buf;
}

} // namespace

int models_command(const config& c, bool json) {
  auto prices = std::make_shared<price_list>(
    c.provider.prices ? *c.provider.prices : price_list{});
  // The provider's own list: the store's copy when it has a fresh one
  // (read, never written here), else fetched.
  std::unique_ptr<store> db;
  std::error_code ec;
  if (c.provider.name == "openrouter" &&
      std::filesystem::exists(c.db_path, ec)) {
    try {
      db = std::make_unique<store>(c.db_path, store::open_mode::read_only);
    } catch (const store_error&) {
      // Unreadable or foreign: fetch instead.
    }
  }
  add_provider_prices(*prices, c.provider, db.get(), false);
  if (!prices->provider_list_source().empty())
    std::fprintf(stderr, "provider list: %s (%zu models)\n",
                 prices->provider_list_source().c_str(),
                 prices->provider_list_size());
  const auto& configured = c.provider.model;
  auto entries = prices->all();
  if (json) {
    for (auto& [model, e] : entries) {
      nlohmann::json j{
        {"model", model},
        {"prompt_per_million", e.price.prompt_per_million},
        {"completion_per_million", e.price.completion_per_million},
        {"batch_prompt_per_million",
         price_or_null(e.price.batch_prompt_per_million)},
        {"batch_completion_per_million",
         price_or_null(e.price.batch_completion_per_million)},
        {"cached_prompt_per_million",
         price_or_null(e.price.cached_prompt_per_million)},
        {"reasoning_per_million",
         price_or_null(e.price.reasoning_per_million)},
        {"source", to_string(e.source)},
        {"configured", model == configured}};
      if (e.source == price_source::prices_file)
        j["file"] = prices->file();
      if (e.source == price_source::provider_list)
        j["list"] = prices->provider_list_source();
      std::printf("%s\n", j.dump(-1, ' ', false,
                                 nlohmann::json::error_handler_t::replace)
                            .c_str());
    }
    return exit_code::ok;
  }
  auto mine = prices->find(configured);
  std::printf("MODEL %s: %s\n", configured.c_str(),
              mine ? ("$" + per_million(mine->price.prompt_per_million) +
                      " / $" +
                      per_million(mine->price.completion_per_million) +
                      " per million prompt / completion tokens (" +
                      to_string(mine->source) + ")")
                       .c_str()
                   : "no known price (a run refuses it: give it in "
                     "BG_AGENT_PRICES or BG_AGENT_PRICE_*)");
  if (!prices->file().empty())
    std::printf("prices file: %s\n", prices->file().c_str());
  std::printf("%-40s %10s %10s %10s %10s  %s\n", "MODEL", "PROMPT/M",
              "COMPL/M", "BATCH_P/M", "BATCH_C/M", "SOURCE");
  for (auto& [model, e] : entries)
    std::printf("%-40s %10s %10s %10s %10s  %s\n", model.c_str(),
                per_million(e.price.prompt_per_million).c_str(),
                per_million(e.price.completion_per_million).c_str(),
                per_million(e.price.batch_prompt_per_million).c_str(),
                per_million(e.price.batch_completion_per_million).c_str(),
                to_string(e.source));
  return exit_code::ok;
}

} // namespace bgagent
