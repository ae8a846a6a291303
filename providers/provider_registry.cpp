#include "providers/provider_registry.hpp"

#include <stdexcept>

#include "providers/http_provider.hpp"
#include "providers/offline_provider.hpp"

namespace bgagent {

provider_registry provider_registry::with_builtins() {
  provider_registry r;
  r.add("offline", [](const provider_settings&) {
    return std::make_shared<offline_provider>();
  });
  r.add("openrouter", make_http_provider);
  r.add("openai", make_http_provider);
  return r;
}

void provider_registry::add(const std::string& name, factory f) {
  factories_[name] = std::move(f);
}

bool provider_registry::has(const std::string& name) const {
  return factories_.count(name) > 0;
}

std::vector<std::string> provider_registry::names() const {
  std::vector<std::string> out;
  for (auto& kv : factories_)
    out.push_back(kv.first);
  return out;
}

provider_ptr provider_registry::make(const provider_settings& s) const {
  auto i = factories_.find(s.name);
  if (i == factories_.end()) {
    std::string known;
    for (auto& kv : factories_)
      known += (known.empty() ? "" : ", ") + kv.first;
    throw std::invalid_argument("unknown provider \"" + s.name +
                                "\" (known: " + known + ")");
  }
  return i->second(s);
}

} // namespace bgagent
