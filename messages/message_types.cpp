#include "messages/message_types.hpp"

#include <cstdio>

#include <caf/actor_system_config.hpp>

#include "messages/batch.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/cluster.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/outcome_kind.hpp"
#include "messages/task_worker_actor.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/worker_context.hpp"

namespace bgagent {

const char* to_string(outcome_kind k) {
  switch (k) {
    case outcome_kind::completed: return "completed";
    case outcome_kind::failed: return "failed";
    case outcome_kind::retry: return "retry";
    case outcome_kind::quarantined: return "quarantined";
    case outcome_kind::restart: return "restart";
  }
  return "unknown";
}

const char* to_string(batch_state s) {
  switch (s) {
    case batch_state::preparing: return "preparing";
    case batch_state::uploaded: return "uploaded";
    case batch_state::submitted: return "submitted";
    case batch_state::in_progress: return "in_progress";
    case batch_state::finalizing: return "finalizing";
    case batch_state::cancelling: return "cancelling";
    case batch_state::completed: return "completed";
    case batch_state::failed: return "failed";
    case batch_state::expired: return "expired";
    case batch_state::cancelled: return "cancelled";
  }
  return "unknown";
}

bool parse_batch_state(const std::string& name, batch_state& out) {
  for (int i = 0; i <= static_cast<int>(batch_state::cancelled); ++i) {
    auto s = static_cast<batch_state>(i);
    if (name == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

const char* to_string(batch_verdict v) {
  switch (v) {
    case batch_verdict::completed: return "completed";
    case batch_verdict::retry: return "retry";
    case batch_verdict::quarantine: return "quarantine";
    case batch_verdict::give_back: return "give_back";
  }
  return "unknown";
}

const char* to_string(severity s) {
  return s == severity::critical ? "critical" : "warning";
}

std::string tokens_and_cost(uint64_t tokens, double cost) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%llu tokens, $%.6f",
                static_cast<unsigned long long>(tokens), cost);
  return buf;
}

const char* to_string(error_kind k) {
  switch (k) {
    case error_kind::none: return "none";
    case error_kind::retryable: return "retryable";
    case error_kind::permanent: return "permanent";
    case error_kind::out_of_credits: return "out_of_credits";
  }
  return "unknown";
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<batch_row>("bgagent::batch_row");
  cfg.add_message_type<std::vector<batch_row>>(
    "std::vector<bgagent::batch_row>");
  cfg.add_message_type<batch_member>("bgagent::batch_member");
  cfg.add_message_type<std::vector<batch_member>>(
    "std::vector<bgagent::batch_member>");
  cfg.add_message_type<batch_outcome>("bgagent::batch_outcome");
  cfg.add_message_type<std::vector<batch_outcome>>(
    "std::vector<bgagent::batch_outcome>");
  cfg.add_message_type<task>("bgagent::task");
  cfg.add_message_type<std::vector<task>>("std::vector<bgagent::task>");
  cfg.add_message_type<type_definition>("bgagent::type_definition");
  cfg.add_message_type<std::vector<type_definition>>(
    "std::vector<bgagent::type_definition>");
  cfg.add_message_type<task_record>("bgagent::task_record");
  cfg.add_message_type<std::vector<task_record>>(
    "std::vector<bgagent::task_record>");
  cfg.add_message_type<call_outcome>("bgagent::call_outcome");
  cfg.add_message_type<reservation>("bgagent::reservation");
  cfg.add_message_type<std::vector<reservation>>(
    "std::vector<bgagent::reservation>");
  cfg.add_message_type<std::vector<double>>("std::vector<double>");
  cfg.add_message_type<usage>("bgagent::usage");
  cfg.add_message_type<mark_answer>("bgagent::mark_answer");
  cfg.add_message_type<std::vector<mark_answer>>(
    "std::vector<bgagent::mark_answer>");
  cfg.add_message_type<settlement>("bgagent::settlement");
  cfg.add_message_type<std::vector<settlement>>(
    "std::vector<bgagent::settlement>");
  cfg.add_message_type<budget_snapshot>("bgagent::budget_snapshot");
  cfg.add_message_type<budget_change>("bgagent::budget_change");
  cfg.add_message_type<audit_event>("bgagent::audit_event");
  cfg.add_message_type<std::vector<audit_event>>(
    "std::vector<bgagent::audit_event>");
  cfg.add_message_type<committed_event>("bgagent::committed_event");
  cfg.add_message_type<std::vector<committed_event>>(
    "std::vector<bgagent::committed_event>");
  cfg.add_message_type<alert>("bgagent::alert");
  cfg.add_message_type<run_info>("bgagent::run_info");
  cfg.add_message_type<state_counts>("bgagent::state_counts");
  cfg.add_message_type<status_report>("bgagent::status_report");
  cfg.add_message_type<tag_totals>("bgagent::tag_totals");
  cfg.add_message_type<std::vector<tag_totals>>(
    "std::vector<bgagent::tag_totals>");
  cfg.add_message_type<submit_report>("bgagent::submit_report");
  cfg.add_message_type<submit_counts>("bgagent::submit_counts");
  cfg.add_message_type<run_summary>("bgagent::run_summary");
  cfg.add_message_type<metrics_snapshot>("bgagent::metrics_snapshot");
  cfg.add_message_type<worker_context>("bgagent::worker_context");
  cfg.add_message_type<welcome>("bgagent::welcome");
  cfg.add_message_type<admin_status>("bgagent::admin_status");
  cfg.add_message_type<std::vector<std::string>>("std::vector<std::string>");
  cfg.add_message_type<std::vector<uint64_t>>("std::vector<uint64_t>");
  cfg.add_message_type<std::vector<task_worker_actor>>(
    "std::vector<bgagent::task_worker_actor>");
}

} // namespace bgagent
