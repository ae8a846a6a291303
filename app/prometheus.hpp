// The head's metrics in Prometheus text exposition format (version 0.0.4).
//
// Contract: a pure function of the monitor's snapshot and the store's
// counts; metric names are stable (bgagent_*), documented in the README.
#pragma once

#include <string>

namespace bgagent {

struct metrics_snapshot;
struct status_report;

std::string prometheus_text(const metrics_snapshot& m,
                            const status_report& store);

} // namespace bgagent
