// The monitor: heartbeats and the dead man's switch, failure escalation,
// alerts, and the metrics a person looks at.
//
// Contract (messages/monitor_actor.hpp):
//   (heartbeat_atom, string source, bool busy, string task_id)
//       a busy source silent for longer than the window trips the dead
//       man's switch (one critical alert per silence); busy=false stops
//       watching it. The supervisor beats as "supervisor".
//   (outcome_atom, outcome_kind what, string task_id)
//       `escalate_after` consecutive failed
//       attempts with no completion in between raise failure_escalation.
//   (alert_atom, alert)                  raise an alert
//   (budget_atom, budget_snapshot)       latest budget figures
//   (workers_atom, uint64 workers, uint64 nodes)
//   (calls_atom, int64 delta, double latency_seconds)  calls in flight;
//       a finished call (delta -1) adds its latency to the histogram
// Calls in flight, latencies and completions usually arrive without a
// message, through the run's call_counters (settings.counters), which the
// two messages above also feed.
//   (pause_atom, bool paused)
//   (metrics_atom)                       -> metrics_snapshot
//   (flush_atom)                         -> flush_atom when alerts are out
// Every alert goes to the log (spdlog), to the alerts JSONL file, to the
// auditor as an `alert` event, and, when a webhook URL is set, as a JSON POST
// from a detached helper so a slow receiver never stalls the monitor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/call_counters.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/monitor_actor.hpp"

namespace bgagent {

struct monitor_settings {
  std::string alerts_path = "bgagent-alerts.jsonl";
  std::string webhook_url; // empty: no webhook
  double deadman_seconds = 60;
  uint32_t escalate_after = 5;
  std::string run_label; // included in alerts
  // Shared with the run's gateways and supervisor; null: its own.
  std::shared_ptr<call_counters> counters;
};

monitor_actor spawn_monitor(caf::actor_system& sys, monitor_settings s,
                            const auditor_actor& auditor);

} // namespace bgagent
