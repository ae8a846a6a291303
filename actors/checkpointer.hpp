// The checkpointer: the sole writer of the SQLite store, and the audit
// outbox (every audit event is committed to the store's `events` table
// before the auditor writes it to the log).
//
// Contract (messages/checkpointer_actor.hpp, request -> reply):
//   (submit_atom, vector<task>)                 -> submit_report
//   (submit_atom, vector<task>, string source)  -> submit_report
//       also inserts task_submitted (detail: source) / task_duplicate per
//       task, in one transaction (tasks of the built-in types they name)
//   (begin_submit_atom, string source, string on_conflict)   -> bool
//       on_conflict: "error" (default for anything else), "skip" or
//       "replace" (store.hpp); the parts' types not yet stored are stored
//   (submit_part_atom, vector<task>, vector<type_definition>,
//    vector<string> content_hashes)                         -> submit_report
//   (end_submit_atom, bool keep)                             -> submit_counts
//       one submission streamed in parts (store::begin_submission): one
//       transaction from begin to end, all or nothing; a part's report
//       carries only a refusal (error, failed_index from the first task);
//       keep false rolls it back (the file had a fault further on).
//       Between begin and end nothing else is handled (it waits).
//   (open_run_atom, uint64 tokens, double cost) -> run_info
//       tasks found running are charged their stored reservation (ledger +
//       budget_charged) and audited task_interrupted, back to pending, in
//       one transaction; the ledger totals returned include those charges
//   (finish_run_atom, int64 run, string state)  -> bool
//   (limits_atom, uint64 tokens, double cost)   -> bool   (current run)
//   (fetch_atom, int64 after_priority, int64 after_seq, uint32 limit)
//                                               -> vector<task>
//       runnable tasks after that cursor, in run order (priority
//       descending, then seq), with their requests resolved (store.hpp)
//   (running_atom, string id, uint32 attempt, uint64 reservation_id,
//    uint64 reserved_tokens, double reserved_cost, audit_event started,
//    int64 seq (the task's, found by it, its id still checked; 0: by id))
//                                               -> marks (below; written
//       false: skip it, nothing written) marks running with the
//       reservation stored and inserts `started`, one transaction
//   (complete_atom, string id, uint32 attempt, call_outcome, usage,
//    audit_event completed, uint64 reservation_id (0: look it up),
//    int64 seq (as for running))
//                                               -> marks (written false:
//                                                  stale)
//       completes, ledgers the usage, clears the reservation, inserts
//       `completed`, one transaction; after the commit the budget keeper
//       gets (commit_atom, reservation_id, usage). Stale: nothing of the
//       task changes, but the call was billed: its usage is charged
//       (budget_charged), beyond what was charged when the attempt was
//       abandoned
//   marks: running and complete are answered, once their group commit is
//       durable, by one (marks_atom, vector<mark_answer>) to each sender
//       with all its answers of that commit (messages/mark_answer.hpp);
//       if this actor ends first, none comes (the supervisor ends the run)
//   (usage_atom, string id, uint32 attempt, usage, string provider,
//    string model, audit_event failed, string raw_answer,
//    string answer_error)                       -> bool   (false: stale)
//       a failed attempt: ledger row (none for zero usage), reservation
//       cleared, `failed` inserted, one transaction; then the keeper gets
//       (commit_atom, reservation_id, usage). Stale as for complete
//   (retry_atom, string id, uint32 attempt, string error,
//    audit_event scheduled)                     -> bool
//   (quarantine_atom, string id, uint32 attempt, string error,
//    audit_event quarantined)                   -> bool
//   (give_back_atom, string id, uint32 attempt) -> bool   (back to pending)
//       leaving `running` this way with a reservation still stored means
//       the call was abandoned: the reservation is charged at its worst
//       case (ledger + budget_charged) in the same transaction, and the
//       keeper gets (commit_atom, reservation_id, that usage) after it
//   (status_atom)                               -> status_report
//   (status_atom, run_atom)                     -> status_report
//       the last run, its limits and budget period only (counts,
//       spending, circuits and batches left empty: no scan of every task;
//       what a run's start needs)
//   (status_atom, tags_atom)                    -> vector<tag_totals>
//   (status_atom, provider_atom)                -> vector<string>
//       the providers whose answers completed tasks
//   (results_atom, string state)                -> vector<task_record>
//   (results_atom, string state, string tag, vector<string> ids,
//    int64 limit)                               -> vector<task_record>
//       "" and no ids filter nothing; limit -1: all
//   (requeue_atom, vector<string> ids, bool all_quarantined,
//    audit_event each)                          -> vector<string>
//   (requeue_atom, vector<string> ids, bool all, string from_state,
//    audit_event each)                          -> vector<string>
//       from_state: quarantined or completed; all or nothing: when an
//       id is not in from_state nothing changes and the ids that are are
//       returned
//   (cancel_atom, vector<string> ids, audit_event each)
//                                               -> vector<string>
//       `each` is inserted once per task requeued / cancelled (its task_id
//       set), in the same transaction
//   (audit_atom, audit_event)                   (no reply) from the auditor:
//   (audit_atom, vector<audit_event>)           inserted in the current
//       group transaction, in order
//   (catch_up_atom, uint64 after_seq, uint32 limit)
//                                               -> vector<committed_event>
//       committed events with seq > after_seq, at most `limit`, in seq
//       order (the open group is committed first). Raises the events' seq
//       floor to after_seq: an audit log may hold seqs the table never had
//   (flush_atom)                                -> flush_atom
//       commits the open group (its events sent to the auditor first)
//   (attach_atom, budget_keeper_actor keeper)   (no reply) the budget
//       keeper to settle reservations with (spawned after the checkpointer)
//
// Writes are grouped: the first write after a commit opens a transaction and
// queues a flush behind everything already in the mailbox; replies to writes
// are sent only after that commit. So "completed" is never reported before
// it is durable, and a burst of N changes costs one commit. After each
// commit, in this order: the events it committed go to the auditor as one
// vector<committed_event> (seq order), the keeper gets its settlements, and
// the held replies are delivered.
//
// With an auditor (spawn_checkpointer's third argument), spawn_checkpointer
// sends the auditor (attach_atom, checkpointer) before it returns (so events
// the caller sends the auditor afterwards go through the store), and the
// checkpointer handles nothing but the catch-up request until the auditor's
// first (catch_up_atom, after_seq, limit): until then it does not know the
// log's last seq, below which no event may be numbered. (A test may stand
// in for the auditor by sending that request itself.)
//
// With a reader (spawn_checkpointer's fourth argument: a second connection
// to the same file), the queue's fetch (read by the writer itself while a
// status scan holds the reader) and the reads that scan every task (status
// but the run's, counts, results) are delegated to a store reader on its
// own thread (actors/store_reader.hpp) once the open group has committed (a read
// waits for that commit, never forces it, so reads never split a group;
// status requests that arrive together share one scan, at most one in
// flight): a read sees every change asked for before it, and the thread
// that commits attempts never scans. Without one (the short-lived
// commands), it reads itself.
//
// A storage error kills the checkpointer with the error logged: the run
// then ends with exit code 1 rather than continuing without a checkpoint.
// The reader is linked to it: either ending ends the other. Whatever it
// still holds when it ends (replies waiting for a commit, status requests
// waiting for a scan) is answered with sec::request_receiver_down, never
// left unanswered.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "messages/auditor_actor.hpp"
#include "messages/checkpointer_actor.hpp"

namespace bgagent {

class event_clock;
class store;
class store_set;

checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db);
checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      const auditor_actor& auditor,
                                      std::unique_ptr<store> reader = {});

// The writer of one file of a store of several files
// (docs/plans/sharded-store.md; the run spawns one per file,
// app/store_spawn.hpp). Its differences from the above:
// - the files number their events from one `clock`; after each commit
//   that committed events, the auditor gets (commit_atom, index, events,
//   floor) instead of the events alone, `floor` being the clock's next()
//   read with no transaction open: every later event of this file is
//   numbered at or above it (the auditor's merge, policy/event_merge.hpp,
//   writes an event once every file's floor is past it);
// - (floor_atom) from the auditor: that message is sent even without
//   events, at once or with the open group's commit; a flush sends it
//   before its answer;
// - the caller sends the auditor (attach_atom, every file's writer);
// - its threads are bg.checkpoint<index> and bg.reader<index>; with
//   `scans` (main's), its reader answers status, counts and results over
//   every file.
struct store_file {
  uint32_t index = 0;
  std::shared_ptr<event_clock> clock;
  std::shared_ptr<store_set> scans;
  int64_t run_id = 0; // main's: the run opened on the files before
};
checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      const auditor_actor& auditor,
                                      std::unique_ptr<store> reader,
                                      store_file file);

} // namespace bgagent
