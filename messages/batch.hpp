// Provider batches (DESIGN.md section 13) as they travel between the
// batch_runner and the checkpointer, and as the store keeps them.
//
// Contract: a batch's state only moves forward along
//   preparing -> uploaded -> submitted -> in_progress -> finalizing
//     -> completed | failed | expired | cancelled
// (cancelling may come between any of the middle ones and cancelled);
// is_ended() is true for the last four. A task in a batch that has not
// ended is `running`, holds its reservation and has `batch_id` set in the
// store: nothing else runs it, and a restart does not treat it as
// interrupted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/task.hpp"

namespace bgagent {

enum class batch_state : uint8_t {
  preparing,   // the row and its tasks are stored; nothing sent yet
  uploaded,    // the request file is at the provider (input_file_id)
  submitted,   // the provider batch exists (provider_batch_id)
  in_progress, // the provider is working on it
  finalizing,  // the provider is writing its output
  cancelling,  // a cancel was asked for; the provider is stopping
  completed,   // every line's result applied
  failed,      // the provider refused or failed the whole batch
  expired,     // the window passed: what was done applied, the rest undone
  cancelled,   // cancelled: what was done applied, the rest undone
};

const char* to_string(batch_state s);
// The state named `name` (as stored), or false.
bool parse_batch_state(const std::string& name, batch_state& out);
inline bool is_ended(batch_state s) { return s >= batch_state::completed; }

// One batch, as the store keeps it and `bgagent batches` shows it.
struct batch_row {
  std::string id;    // local: "b-" + 16 hex digits; sent as metadata
  batch_state state = batch_state::preparing;
  std::string provider;
  std::string model; // as sent in each line's body
  int64_t run_id = 0;
  uint64_t tasks = 0;
  uint64_t completed = 0; // tasks completed from its output
  uint64_t failed = 0;    // tasks whose request failed or was left undone
  std::string input_file_id;
  std::string provider_batch_id;
  std::string output_file_id;
  std::string error_file_id;
  double cost_usd = 0; // committed from its output
  std::string created_at;   // RFC 3339 UTC
  std::string submitted_at; // when the provider batch was created
  std::string ended_at;
  std::string error;          // why it failed, or the last remote error
  uint64_t remote_total = 0;  // the provider's request_counts
  uint64_t remote_completed = 0;
  uint64_t remote_failed = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_row& x) {
  return f(caf::meta::type_name("batch_row"), x.id, x.state, x.provider,
           x.model, x.run_id, x.tasks, x.completed, x.failed,
           x.input_file_id, x.provider_batch_id, x.output_file_id,
           x.error_file_id, x.cost_usd, x.created_at, x.submitted_at,
           x.ended_at, x.error, x.remote_total, x.remote_completed,
           x.remote_failed);
}

// A task placed in a batch: its attempt and the reservation it holds
// (worst case at the batch price), with task_started for it.
struct batch_member {
  task t;                  // resolved, as fetched
  uint32_t attempt = 0;    // this attempt's number (attempts + 1)
  uint64_t reservation = 0;
  uint64_t reserved_tokens = 0;
  double reserved_cost = 0;
  audit_event started;     // task_started
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_member& x) {
  return f(caf::meta::type_name("batch_member"), x.t, x.attempt,
           x.reservation, x.reserved_tokens, x.reserved_cost, x.started);
}

// What a batch did for one of its tasks, decided by the batch_runner.
enum class batch_verdict : uint8_t {
  completed,  // its output line held a valid answer
  retry,      // failed or left undone: back to the queue, attempt counted
  quarantine, // failed past the retries, or permanently
  give_back,  // its batch never reached the provider: back to pending,
              // the attempt not counted, the reservation released
};

const char* to_string(batch_verdict v);

struct batch_outcome {
  std::string task_id;
  uint32_t attempt = 0;
  uint64_t reservation = 0; // 0: the store reads it
  batch_verdict verdict = batch_verdict::retry;
  call_outcome out;         // the answer (completed) or the error
  usage spent;              // what its line reports (0 when undone)
  audit_event ended;        // task_completed, or task_failed
  audit_event next;         // task_retry_scheduled / task_quarantined
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_outcome& x) {
  return f(caf::meta::type_name("batch_outcome"), x.task_id, x.attempt,
           x.reservation, x.verdict, x.out, x.spent, x.ended, x.next);
}

} // namespace bgagent
