// What `bgagent admin status` receives from the head.
//
// Contract: a plain value, sent over the cluster link to an admin node.
#pragma once

#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/run.hpp"

namespace bgagent {

// `bgagent admin status`: the store's counts and budget, the monitor's
// live figures (rate, calls in flight, paused) and the supervisor's workers
// ("node worker-name state" lines).
struct admin_status {
  status_report report;
  metrics_snapshot metrics;
  std::vector<std::string> workers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_status& x) {
  return f(caf::meta::type_name("admin_status"), x.report, x.metrics,
           x.workers);
}

} // namespace bgagent
