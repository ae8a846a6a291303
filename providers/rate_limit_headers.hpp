// What a provider's answer says about its rate limits, from its headers:
// OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} (resets as
// durations: "1s", "6m0s", "20ms") and OpenRouter's X-RateLimit-Limit,
// -Remaining and -Reset (a Unix time in ms).
//
// Contract: limits are per minute (OpenAI's; OpenRouter's are read the
// same way); -1 for what the answer does not say or says unreadably.
// wait_ms is how long until a limit with nothing remaining resets (-1:
// none is used up); a used-up token limit counts at most 10 s (OpenAI's
// reset is when the budget is full again, and it refills all along). Header names are in lower case (http_client's map).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace bgagent {

struct rate_limit_info {
  int64_t limit_requests = -1;
  int64_t limit_tokens = -1;
  int64_t wait_ms = -1;
};

rate_limit_info read_rate_limit_headers(
  const std::map<std::string, std::string>& headers, int64_t now_unix_ms);

// "1h2m3.5s", "6m0s", "20ms", "0.5s" -> ms; -1 when unreadable.
int64_t parse_reset_duration_ms(const std::string& text);

} // namespace bgagent
