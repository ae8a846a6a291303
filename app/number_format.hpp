// Numbers as people read them on a screen.
//
// Contract: grouped(1234567) is "1,234,567"; duration_short(65) is "1m05s"
// (seconds under a minute as "42s", an hour and more as "1.5h").
#pragma once

#include <cstdint>
#include <string>

namespace bgagent {

std::string grouped(uint64_t n);
std::string duration_short(double seconds);

} // namespace bgagent
