#include "providers/rate_limit_headers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace bgagent {

namespace {

// A day: no limit resets later than that; a longer figure is a lie.
constexpr int64_t max_wait_ms = 24LL * 3600 * 1000;
constexpr int64_t max_token_wait_ms = 10 * 1000;

int64_t whole(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(),
                   [](unsigned char c) { return std::isdigit(c); }))
    return -1;
  return std::strtoll(text.c_str(), nullptr, 10);
}

const std::string* find(const std::map<std::string, std::string>& h,
                        const char* name) {
  auto i = h.find(name);
  return i == h.end() ? nullptr : &i->second;
}

} // namespace

int64_t parse_reset_duration_ms(const std::string& text) {
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) ||
            text[i] == '.'))
      ++i;
    if (i == start || i - start > 18)
      return -1;
    char* end = nullptr;
    auto number = text.substr(start, i - start);
    double v = std::strtod(number.c_str(), &end);
    if (*end != '\0')
      return -1;
    std::string unit;
    while (i < text.size() &&
           std::isalpha(static_cast<unsigned char>(text[i])))
      unit += text[i++];
    double ms_per = unit == "h"    ? 3600e3
                    : unit == "m"  ? 60e3
                    : unit == "s"  ? 1e3
                    : unit == "ms" ? 1
                                   : -1;
    if (ms_per < 0)
      return -1;
    total += v * ms_per;
    any = true;
  }
  if (!any || !std::isfinite(total))
    return -1;
  return static_cast<int64_t>(
    std::ceil(std::min(total, static_cast<double>(max_wait_ms))));
}

rate_limit_info read_rate_limit_headers(
  const std::map<std::string, std::string>& h, int64_t now_unix_ms) {
  rate_limit_info info;
  auto used_up = [&](const char* remaining, const char* reset,
                     int64_t at_most) {
    auto* r = find(h, remaining);
    auto* t = find(h, reset);
    if (!r || !t || whole(*r) != 0)
      return;
    auto ms = parse_reset_duration_ms(*t);
    if (ms >= 0)
      info.wait_ms = std::max(info.wait_ms, std::min(ms, at_most));
  };
  // OpenAI.
  if (auto* v = find(h, "x-ratelimit-limit-requests"))
    info.limit_requests = whole(*v);
  if (auto* v = find(h, "x-ratelimit-limit-tokens"))
    info.limit_tokens = whole(*v);
  used_up("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
          max_wait_ms);
  // OpenAI's token reset is the time until the budget is *full* again
  // ("6m0s"); it refills all along, so a few seconds free enough for more.
  used_up("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
          max_token_wait_ms);
  // OpenRouter.
  if (auto* v = find(h, "x-ratelimit-limit"); v && info.limit_requests < 0)
    info.limit_requests = whole(*v);
  auto* r = find(h, "x-ratelimit-remaining");
  auto* t = find(h, "x-ratelimit-reset");
  if (r && t && whole(*r) == 0) {
    auto at = whole(*t);
    if (at >= 0)
      info.wait_ms = std::max(
        info.wait_ms, std::clamp<int64_t>(at - now_unix_ms, 0, max_wait_ms));
  }
  if (info.limit_requests == 0)
    info.limit_requests = -1; // a limit of 0 is not a limit we can pace to
  if (info.limit_tokens == 0)
    info.limit_tokens = -1;
  return info;
}

} // namespace bgagent
