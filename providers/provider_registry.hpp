// Provider names to factories. The binary registers the built-in providers;
// tests may register doubles under their own names.
//
// Contract: make() returns a ready provider or throws std::invalid_argument
// with one line naming the unknown provider and the known ones.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "providers/provider.hpp"

namespace bgagent {

class provider_registry {
public:
  using factory = std::function<provider_ptr(const provider_settings&)>;

  // offline, openrouter, openai.
  static provider_registry with_builtins();

  void add(const std::string& name, factory f);
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  provider_ptr make(const provider_settings& settings) const;

private:
  std::map<std::string, factory> factories_;
};

} // namespace bgagent
