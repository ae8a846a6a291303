#include "app/number_format.hpp"

#include <cstdio>

namespace bgagent {

std::string grouped(uint64_t n) {
  auto digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

std::string duration_short(double s) {
  char buf[32];
  if (s < 59.5)
    std::snprintf(buf, sizeof(buf), "%.0fs", s);
  else if (s < 3600) {
    auto whole = static_cast<long>(s + 0.5);
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", whole / 60, whole % 60);
  } else
    std::snprintf(buf, sizeof(buf), "%.1fh", s / 3600);
  return buf;
}

} // namespace bgagent
