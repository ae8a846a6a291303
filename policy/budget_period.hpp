// Budget periods (DESIGN.md section 5): the span of time whose spending a
// budget limits. `run`: the run, however long; `hour`, `day`, `month`:
// calendar periods in UTC, so spending in the period survives restarts and
// a new period starts with nothing spent.
//
// Contract: pure functions of unix seconds; no clock is read here. For
// `run`, period_start() is 0 and next_period_start() never comes (INT64_MAX).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bgagent {

enum class budget_period { run, hour, day, month };

std::optional<budget_period> parse_budget_period(std::string_view text);
const char* to_string(budget_period p);

// The first second of the period holding `t`.
int64_t period_start(budget_period p, int64_t t);
// The first second of the period after the one holding `t`.
int64_t next_period_start(budget_period p, int64_t t);

// `t` as the store writes times: RFC 3339 UTC with milliseconds, e.g.
// 2026-11-27T00:00:00.000Z (so the ledger's text times compare in order).
std::string rfc3339_utc(int64_t t);

} // namespace bgagent
