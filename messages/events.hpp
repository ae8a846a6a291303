// Audit events and alerts: what actors tell the auditor and the monitor.
//
// Contract: an audit_event becomes one JSON line with `ts` and `seq` added by
// the store when the event is committed (committed_event); empty fields (and
// attempt < 0) are left out of the line.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace bgagent {

struct audit_event {
  std::string event;
  std::string task_id;
  int32_t attempt = -1;
  std::string node;
  std::string detail;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_event& x) {
  return f(caf::meta::type_name("audit_event"), x.event, x.task_id, x.attempt,
           x.node, x.detail);
}

// An audit event as committed to the store's `events` table: its `seq` and
// `ts` are the store's, and the audit log line is written from them (the
// log is derived from the table; see actors/auditor.hpp).
struct committed_event {
  uint64_t seq = 0;
  std::string ts; // RFC 3339 UTC, when it was inserted
  audit_event event;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, committed_event& x) {
  return f(caf::meta::type_name("committed_event"), x.seq, x.ts, x.event);
}

inline audit_event make_event(std::string event, std::string task_id = {},
                              int32_t attempt = -1, std::string detail = {},
                              std::string node = {}) {
  return audit_event{std::move(event), std::move(task_id), attempt,
                     std::move(node), std::move(detail)};
}

enum class severity : uint8_t { warning, critical };

// "warning" | "critical" (the alerts file, audit lines, the webhook).
const char* to_string(severity s);

// An alert for a human; kind is a stable word (dead_mans_switch,
// failure_escalation, budget_alarm, restart_intensity, out_of_credits,
// node_lost, ...).
struct alert {
  severity level = severity::warning;
  std::string kind;
  std::string message;
  std::string task_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, alert& x) {
  return f(caf::meta::type_name("alert"), x.level, x.kind, x.message,
           x.task_id);
}

} // namespace bgagent
