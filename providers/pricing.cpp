#include "providers/pricing.hpp"

#include <map>

namespace bgagent {

namespace {

const std::map<std::string, model_price>& table() {
  static const std::map<std::string, model_price> t{
    {"google/gemini-2.5-flash", {0.30, 2.50}},
    {"google/gemini-2.5-flash-lite", {0.10, 0.40}},
    {"google/gemini-2.5-pro", {1.25, 10.00}},
    {"openai/gpt-4o-mini", {0.15, 0.60}},
    {"gpt-4o-mini", {0.15, 0.60}},
    {"openai/gpt-4o", {2.50, 10.00}},
    {"gpt-4o", {2.50, 10.00}},
    {"gpt-4.1-mini", {0.40, 1.60}},
    {"anthropic/claude-3.5-haiku", {0.80, 4.00}},
    {"offline", {0.0, 0.0}},
  };
  return t;
}

} // namespace

model_price price_for(const std::string& model, double override_prompt,
                      double override_completion) {
  model_price p{3.0, 15.0}; // unknown model: assume an expensive one
  auto& t = table();
  if (auto i = t.find(model); i != t.end())
    p = i->second;
  if (override_prompt >= 0)
    p.prompt_per_million = override_prompt;
  if (override_completion >= 0)
    p.completion_per_million = override_completion;
  return p;
}

} // namespace bgagent
