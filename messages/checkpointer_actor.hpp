// The checkpointer's typed interface (semantics, transactions and replies:
// actors/checkpointer.hpp).
//
// Contract: the only handle to the checkpointer is this type, so the
// compiler checks every message sent to it; it never leaves the head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/batch.hpp"
#include "messages/budget.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/store_reader_actor.hpp"
#include "messages/task.hpp"

namespace bgagent {

using checkpointer_actor = caf::typed_actor<
  // -- an attempt (node gateways) --------------------------------------
  // Marks are not answered one by one: once their commit is durable, the
  // sender gets (marks_atom, std::vector<mark_answer>) with every answer of
  // that commit (messages/mark_answer.hpp; written false = skip it,
  // nothing written).
  // (id, attempt, reservation id, reserved tokens, reserved dollars,
  //  task_started, the task's seq or 0)
  caf::reacts_to<running_atom, std::string, uint32_t, uint64_t, uint64_t,
                 double, audit_event, int64_t>,
  // (id, attempt, outcome, usage, task_completed, reservation id or 0,
  //  the task's seq or 0)
  caf::reacts_to<complete_atom, std::string, uint32_t, call_outcome, usage,
                 audit_event, uint64_t, int64_t>,
  // (id, attempt, usage, provider, model, task_failed, raw answer,
  //  answer error): a failed attempt's usage
  caf::replies_to<usage_atom, std::string, uint32_t, usage, std::string,
                  std::string, audit_event, std::string,
                  std::string>::with<bool>,
  // -- the queue (supervisor): fetch, with the reads below ------------
  // (id, attempt, error, event, the attempt counts against no retry)
  caf::replies_to<retry_atom, std::string, uint32_t, std::string,
                  audit_event, bool>::with<bool>,
  caf::replies_to<quarantine_atom, std::string, uint32_t, std::string,
                  audit_event>::with<bool>,
  caf::replies_to<give_back_atom, std::string, uint32_t>::with<bool>,
  // -- the response cache --------------------------------------------------
  // (task ids, their requests' fingerprints, task_cached for each): those
  // whose fingerprint has a cached answer completed from it, once
  // committed
  caf::replies_to<cached_atom, std::vector<std::string>,
                  std::vector<std::string>, audit_event>::with<
    std::vector<std::string>>,
  // -- provider batches (the batch_runner; messages/batch.hpp) -----------
  // (row, members, batch_created) -> the ids placed in it, once committed
  caf::replies_to<batch_atom, batch_row, std::vector<batch_member>,
                  audit_event>::with<std::vector<std::string>>,
  // (row, outcomes, event) -> true, once committed
  caf::replies_to<batch_atom, batch_row, std::vector<batch_outcome>,
                  audit_event>::with<bool>,
  // (open only) -> batches, newest first
  caf::replies_to<batches_atom, bool>::with<std::vector<batch_row>>,
  // (batch id) -> its tasks still running
  caf::replies_to<batches_atom, std::string>::with<
    std::vector<batch_member>>,
  // (task ids, their new reservation ids)
  caf::replies_to<batches_atom, std::vector<std::string>,
                  std::vector<uint64_t>>::with<bool>,
  // -- runs --------------------------------------------------------------
  // (token limit, cost limit)
  caf::replies_to<open_run_atom, uint64_t, double>::with<run_info>,
  // (token limit, cost limit, budget period, its first second RFC 3339)
  caf::replies_to<open_run_atom, uint64_t, double, std::string,
                  std::string>::with<run_info>,
  // (run id, final state)
  caf::replies_to<finish_run_atom, int64_t, std::string>::with<bool>,
  caf::replies_to<limits_atom, uint64_t, double>::with<bool>,
  // -- submissions -------------------------------------------------------
  caf::replies_to<submit_atom, std::vector<task>>::with<submit_report>,
  // (tasks, source)
  caf::replies_to<submit_atom, std::vector<task>, std::string>::with<
    submit_report>,
  // (source, on_conflict) ... (tasks, their types, content hashes) ...
  // (keep): one transaction
  caf::replies_to<begin_submit_atom, std::string, std::string>::with<bool>,
  caf::replies_to<submit_part_atom, std::vector<task>,
                  std::vector<type_definition>,
                  std::vector<std::string>>::with<submit_report>,
  caf::replies_to<end_submit_atom, bool>::with<submit_counts>,
  // -- commands (the run's status, requeue, cancel) -----------------------
  // the last run, its limits and budget period only (counts, spending,
  // circuits and batches left empty: no scan of every task)
  caf::replies_to<status_atom, run_atom>::with<status_report>,
  // (ids, all quarantined, event for each)
  caf::replies_to<requeue_atom, std::vector<std::string>, bool,
                  audit_event>::with<std::vector<std::string>>,
  // (ids, all, from state, event for each)
  caf::replies_to<requeue_atom, std::vector<std::string>, bool, std::string,
                  audit_event>::with<std::vector<std::string>>,
  // (ids, event for each)
  caf::replies_to<cancel_atom, std::vector<std::string>, audit_event>::with<
    std::vector<std::string>>,
  // -- the audit outbox (auditor) ------------------------------------------
  caf::reacts_to<audit_atom, audit_event>,
  caf::reacts_to<audit_atom, std::vector<audit_event>>,
  // (after seq, limit)
  caf::replies_to<catch_up_atom, uint64_t, uint32_t>::with<
    std::vector<committed_event>>,
  caf::replies_to<flush_atom>::with<flush_atom>,
  // a file of a store of several: send the auditor its floor (now, or
  // with the open group's commit)
  caf::reacts_to<floor_atom>,
  // the keeper to settle reservations with
  caf::reacts_to<attach_atom, budget_keeper_actor>,
  // its own note: commit the open group
  caf::reacts_to<commit_group_atom>,
  // (provider/model, when it opened; "": closed) for status
  caf::reacts_to<circuit_atom, std::string, std::string>,
  // (schedule) -> its last firing, "" if none; (schedule, firing) stored
  caf::replies_to<schedule_atom, std::string>::with<std::string>,
  caf::replies_to<schedule_atom, std::string, std::string>::with<bool>>::
  // the queue's fetch, status, counts and results:
  // messages/store_reader_actor.hpp (a run's checkpointer delegates them to
  // its reader)
  extend_with<store_reader_actor>;

} // namespace bgagent
