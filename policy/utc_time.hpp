// Unix seconds as the calendar fields of UTC (gmtime_r), for the policies
// that reason in calendar hours and days (budget periods, schedules).
#pragma once

#include <cstdint>
#include <ctime>

namespace bgagent {

inline std::tm utc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

} // namespace bgagent
