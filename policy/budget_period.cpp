#include "policy/budget_period.hpp"

#include <ctime>
#include <limits>

#include "policy/utc_time.hpp"

namespace bgagent {

std::optional<budget_period> parse_budget_period(std::string_view text) {
  if (text == "run")
    return budget_period::run;
  if (text == "hour")
    return budget_period::hour;
  if (text == "day")
    return budget_period::day;
  if (text == "month")
    return budget_period::month;
  return std::nullopt;
}

const char* to_string(budget_period p) {
  switch (p) {
    case budget_period::run: return "run";
    case budget_period::hour: return "hour";
    case budget_period::day: return "day";
    case budget_period::month: return "month";
  }
  return "run";
}

int64_t period_start(budget_period p, int64_t t) {
  switch (p) {
    case budget_period::run: return 0;
    case budget_period::hour: return t - ((t % 3600) + 3600) % 3600;
    case budget_period::day: return t - ((t % 86400) + 86400) % 86400;
    case budget_period::month: {
      auto tm = utc(t);
      tm.tm_mday = 1;
      tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
      return static_cast<int64_t>(timegm(&tm));
    }
  }
  return 0;
}

int64_t next_period_start(budget_period p, int64_t t) {
  switch (p) {
    case budget_period::run: return std::numeric_limits<int64_t>::max();
    case budget_period::hour: return period_start(p, t) + 3600;
    case budget_period::day: return period_start(p, t) + 86400;
    case budget_period::month: {
      auto tm = utc(period_start(p, t));
      tm.tm_mon += 1; // timegm normalizes December + 1 to next January
      return static_cast<int64_t>(timegm(&tm));
    }
  }
  return std::numeric_limits<int64_t>::max();
}

std::string rfc3339_utc(int64_t t) {
  auto tm = utc(t);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

} // namespace bgagent
