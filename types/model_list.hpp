// `fallback_models`, as a task file or a types file gives it.
//
// Contract: parse_model_list() accepts a JSON array of 1 to 8 distinct
// strings, each a model name of 1 to 200 characters without control
// characters, and returns them in order; anything else throws
// std::invalid_argument with a message to follow the field's name
// ("must be a list of ...").
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bgagent {

constexpr size_t max_fallback_models = 8;

std::vector<std::string> parse_model_list(const nlohmann::json& value);

} // namespace bgagent
