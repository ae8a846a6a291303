// Run-level values: a run's identity, counts per state, status, the final
// summary, submission reports and the monitor's metrics.
//
// Contract: plain values; field names match the JSON contracts in
// DESIGN.md section 8 wherever they appear there.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/batch.hpp"
#include "messages/budget.hpp"

namespace bgagent {

// A run as stored; opening a run resumes the last unfinished one.
struct run_info {
  int64_t id = 0;
  std::string state;      // running | finished | stopped_budget | interrupted | failed
  std::string started_at; // RFC 3339 UTC
  bool resumed = false;
  uint64_t tokens_used = 0; // restored from the usage ledger
  double cost_used = 0;
  std::vector<std::string> interrupted; // tasks found running at open
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_info& x) {
  return f(caf::meta::type_name("run_info"), x.id, x.state, x.started_at,
           x.resumed, x.tokens_used, x.cost_used, x.interrupted);
}

struct state_counts {
  uint64_t pending = 0;
  uint64_t running = 0;
  uint64_t retry_wait = 0;
  uint64_t completed = 0;
  uint64_t quarantined = 0;
  uint64_t cancelled = 0;
  uint64_t total() const {
    return pending + running + retry_wait + completed + quarantined + cancelled;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_counts& x) {
  return f(caf::meta::type_name("state_counts"), x.pending, x.running,
           x.retry_wait, x.completed, x.quarantined, x.cancelled);
}

// Where the supervisor's reading of runnable tasks stands: tasks run by
// priority (higher first), then in submit order (seq). The start is before
// every task (priorities are bounded far below the maximum).
struct fetch_cursor {
  int64_t priority = std::numeric_limits<int64_t>::max();
  int64_t seq = 0;
};

// One tag's line of `bgagent status --by-tag`.
struct tag_totals {
  std::string tag;
  state_counts tasks;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tag_totals& x) {
  return f(caf::meta::type_name("tag_totals"), x.tag, x.tasks,
           x.prompt_tokens, x.completion_tokens, x.cost_usd);
}

// What `bgagent status` shows.
struct status_report {
  state_counts tasks;
  budget_snapshot budget;
  run_info run; // id 0 when there was never a run
  // While the last run is running: its provider models whose circuit is
  // open, as "provider/model since <RFC 3339 time>".
  std::vector<std::string> circuits_open;
  // The last run's budget period: run, hour, day or month (UTC); the
  // budget's figures are the period's.
  std::string budget_period = "run";
  // Provider batches not ended (DESIGN.md section 13), newest first.
  std::vector<batch_row> open_batches;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_report& x) {
  return f(caf::meta::type_name("status_report"), x.tasks, x.budget, x.run,
           x.circuits_open, x.budget_period, x.open_batches);
}

// The checkpointer's answer to a submission.
struct submit_report {
  std::vector<std::string> inserted;
  std::vector<std::string> duplicates;        // same key, same content
  std::vector<std::string> replaced;          // other content, replaced
  std::vector<std::string> conflicts_skipped; // other content, kept
  std::string error;         // non-empty: nothing was inserted
  int64_t failed_index = -1; // the task at fault, when known
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_report& x) {
  return f(caf::meta::type_name("submit_report"), x.inserted, x.duplicates,
           x.replaced, x.conflicts_skipped, x.error, x.failed_index);
}

// What a streamed submission did, in counts (store::end_submission).
struct submit_counts {
  uint64_t inserted = 0;
  uint64_t duplicates = 0;
  uint64_t replaced = 0;
  uint64_t conflicts_skipped = 0;
  std::string error; // non-empty: nothing was inserted
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_counts& x) {
  return f(caf::meta::type_name("submit_counts"), x.inserted, x.duplicates,
           x.replaced, x.conflicts_skipped, x.error);
}

// How a run ended; `exit_code` follows DESIGN.md section 8.
// How many tasks this process quarantined with one error text.
struct error_tally {
  std::string error;
  uint64_t tasks = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, error_tally& x) {
  return f(caf::meta::type_name("error_tally"), x.error, x.tasks);
}

struct run_summary {
  int32_t exit_code = 0;
  std::string stop_reason; // empty, "budget", "out_of_credits", "signal", ...
  uint64_t completed = 0;  // in this process
  uint64_t quarantined = 0;
  uint64_t retries = 0;
  uint64_t restarts = 0;
  state_counts store; // counts in the store at the end
  // The most frequent errors of the tasks quarantined here (at most 3).
  std::vector<error_tally> quarantine_errors;
  uint64_t tokens_used = 0;
  double cost_used = 0;
  double wall_seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_summary& x) {
  return f(caf::meta::type_name("run_summary"), x.exit_code, x.stop_reason,
           x.completed, x.quarantined, x.retries, x.restarts,
           x.store, x.quarantine_errors, x.tokens_used, x.cost_used,
           x.wall_seconds);
}

// The monitor's view, for the progress line and the metrics endpoint.
struct metrics_snapshot {
  uint64_t completed = 0;
  uint64_t failed_attempts = 0;
  uint64_t retries = 0;
  uint64_t quarantined = 0;
  uint64_t restarts = 0;
  uint64_t in_flight = 0;
  uint64_t workers = 0;
  uint64_t nodes = 0;
  uint64_t alerts = 0;
  uint64_t paused = 0;
  budget_snapshot budget;
  std::vector<uint64_t> latency_buckets; // cumulative, see monitor.hpp
  double latency_sum_seconds = 0;
  uint64_t latency_count = 0;
  double elapsed_seconds = 0;
  // The rate_keeper's: calls waiting for their turn (rate limits, holds,
  // open circuits); provider models whose circuit is open, and how long
  // the oldest has been.
  uint64_t rate_waiting = 0;
  uint64_t circuits_open = 0;
  double outage_seconds = 0;
  // The rate limit of the provider model called last (BG_AGENT_RPM or
  // learned from its headers), per minute, and its calls in the last
  // window, per minute; 0 and 0: no limit known.
  uint64_t rate_limit_rpm = 0;
  uint64_t rate_used_rpm = 0;
  // Provider batches not ended, the tasks in them, tasks completed from
  // the response cache, and the batches' progress as one line.
  uint64_t batches_open = 0;
  uint64_t batch_tasks = 0;
  uint64_t cached = 0;
  std::string batch_progress;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metrics_snapshot& x) {
  return f(caf::meta::type_name("metrics_snapshot"), x.completed,
           x.failed_attempts, x.retries, x.quarantined, x.restarts,
           x.in_flight, x.workers, x.nodes, x.alerts, x.paused, x.budget,
           x.latency_buckets, x.latency_sum_seconds, x.latency_count,
           x.elapsed_seconds, x.rate_waiting, x.circuits_open,
           x.outage_seconds, x.rate_limit_rpm, x.rate_used_rpm,
           x.batches_open, x.batch_tasks, x.cached, x.batch_progress);
}

} // namespace bgagent
