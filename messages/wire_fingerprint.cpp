#include "messages/wire_fingerprint.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/binary_serializer.hpp>
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
  // Sorted by name: a hash map's order is not stable.
  std::vector<const decltype(cfg.value_factories_by_name)::value_type*> types;
  for (auto& kv : cfg.value_factories_by_name)
    types.push_back(&kv);
  std::sort(types.begin(), types.end(),
            [](auto* a, auto* b) { return a->first < b->first; });
  uint64_t h = 14695981039346656037ull;
  for (auto* type : types) {
    mix(h, type->first);
    auto value = type->second();
    if (!value) {
      mix(h, "?");
      continue;
    }
    // The bytes show each field's width (uint32 or uint64, float or
    // double, an enum's underlying type); the text its default.
    std::vector<char> bytes;
    caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr),
                                bytes};
    if (value->save(sink))
      mix(h, "!");
    mix(h, std::string(bytes.begin(), bytes.end()));
    mix(h, value->stringify());
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(h));
  return std::string(BGAGENT_VERSION) + "/" + hex;
}

bool well_formed_wire(const std::string& wire) {
  auto slash = wire.find('/');
  if (wire.size() > 64 || slash == std::string::npos || slash == 0 ||
      wire.size() - slash != 17)
    return false;
  for (size_t i = 0; i < wire.size(); ++i) {
    auto c = static_cast<unsigned char>(wire[i]);
    bool ok = i < slash    ? std::isalnum(c) || c == '.' || c == '-' ||
                              c == '+' || c == '~'
              : i == slash ? true
                           : std::isxdigit(c) != 0;
    if (!ok)
      return false;
  }
  return true;
}

} // namespace bgagent
