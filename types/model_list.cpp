#include "types/model_list.hpp"

#include <algorithm>
#include <stdexcept>

namespace bgagent {

std::vector<std::string> parse_model_list(const nlohmann::json& value) {
  auto bad = [] {
    return std::invalid_argument(
      "must be a list of 1 to " + std::to_string(max_fallback_models) +
      " different model names of 1 to 200 characters");
  };
  if (!value.is_array() || value.empty() ||
      value.size() > max_fallback_models)
    throw bad();
  std::vector<std::string> out;
  for (auto& v : value) {
    if (!v.is_string())
      throw bad();
    auto& m = v.get_ref<const std::string&>();
    if (m.empty() || m.size() > 200 ||
        std::any_of(m.begin(), m.end(),
                    [](unsigned char c) { return c < 0x20 || c == 0x7f; }) ||
        std::find(out.begin(), out.end(), m) != out.end())
      throw bad();
    out.push_back(m);
  }
  return out;
}

} // namespace bgagent
