// The prices in force, per model, and where each came from.
//
// Contract:
// - find(model) looks in this order: the user's prices file
//   (BG_AGENT_PRICES), the provider's own price list (OpenRouter's
//   GET /models), then BG_AGENT_PRICE_PROMPT / _COMPLETION for the
//   configured MODEL (each one given replaces the figure it would have
//   had), then the built-in table of a few well-known models, then the
//   environment's figures, when both are given, as the catch-all for a
//   model nothing else prices. They never reprice another model the table
//   knows (a free local model's 0 must not make gpt-4o free).
// - A model none of them knows has no price (nullopt): never a guess. A run
//   under a cost budget refuses to start with such a model (exit 2).
// - load_file() reads YAML or JSON, model -> {prompt, completion, batch:
//   {prompt, completion}} in USD per million tokens; a bad file throws
//   std::invalid_argument with one line naming the file, line and field.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "providers/pricing.hpp"

namespace bgagent {

enum class price_source { prices_file, provider_list, environment, built_in };

// "prices file", "provider list", "environment", "built-in".
const char* to_string(price_source s);

struct price_entry {
  model_price price;
  price_source source = price_source::built_in;
};

class price_list {
public:
  // Only the built-in table.
  price_list();

  void load_file(const std::string& path);
  // `source`: where the list came from, for `bgagent models` (a URL).
  void set_provider_list(std::map<std::string, model_price> prices,
                         const std::string& source);
  // < 0: not given. `configured`: the run's MODEL.
  void set_environment(double prompt_per_million,
                       double completion_per_million,
                       const std::string& configured);

  std::optional<price_entry> find(const std::string& model) const;

  // Every model with a price, by model name (the environment's catch-all,
  // when both figures are given, as "*").
  std::vector<std::pair<std::string, price_entry>> all() const;

  const std::string& file() const { return file_; }
  const std::string& provider_list_source() const { return list_source_; }
  size_t provider_list_size() const { return listed_.size(); }

private:
  std::map<std::string, model_price> file_prices_, listed_, built_in_;
  std::string file_, list_source_, configured_;
  double env_prompt_ = -1, env_completion_ = -1;
};

} // namespace bgagent
