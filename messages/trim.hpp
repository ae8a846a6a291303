// A copy of a string without the whitespace at its ends: for values read
// from files, headers and the environment.
#pragma once

#include <string>

namespace bgagent {

// `s` without leading and trailing characters of `space`.
inline std::string trim(const std::string& s,
                        const char* space = " \t\r\n") {
  auto b = s.find_first_not_of(space);
  if (b == std::string::npos)
    return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

} // namespace bgagent
