#include "messages/wire_fingerprint.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/type_erased_value.hpp>

namespace bgagent {

namespace {

// FNV-1a, 64 bits: a change detector, not a defence (the peer already
// holds the cluster secret).
void mix(uint64_t& h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= 0xff; // a separator no text holds alone
  h *= 1099511628211ull;
}

} // namespace

std::string wire_fingerprint(const caf::actor_system_config& cfg) {
  std::vector<std::string> names;
  for (auto& kv : cfg.value_factories_by_name)
    names.push_back(kv.first);
  std::sort(names.begin(), names.end()); // a hash map's order is not stable
  uint64_t h = 14695981039346656037ull;
  for (auto& name : names) {
    mix(h, name);
    auto value = cfg.value_factories_by_name.at(name)();
    mix(h, value ? value->stringify() : std::string("?"));
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(h));
  return std::string(BGAGENT_VERSION) + "/" + hex;
}

} // namespace bgagent
