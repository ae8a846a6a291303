// The checkpointer: the sole owner of the SQLite store.
//
// Contract (messages, request -> reply):
//   (submit_atom, vector<task>)                 -> submit_report
//   (open_run_atom, uint64 tokens, double cost) -> run_info
//   (finish_run_atom, int64 run, string state)  -> bool
//   (limits_atom, uint64 tokens, double cost)   -> bool   (current run)
//   (fetch_atom, int64 after_seq, uint32 limit) -> vector<task>
//   (running_atom, string id, uint32 attempt)   -> bool   (false: skip it)
//   (complete_atom, string id, uint32 attempt, call_outcome, usage)
//                                               -> bool   (false: stale)
//   (retry_atom, string id, uint32 attempt, string error)      -> bool
//   (quarantine_atom, string id, uint32 attempt, string error) -> bool
//   (release_atom, string id, uint32 attempt)   -> bool   (back to pending)
//   (usage_atom, string id, uint32 attempt, usage, string provider,
//    string model)                              -> bool   (ledger only)
//   (status_atom)                               -> status_report
//   (results_atom, string state)                -> vector<task_record>
//   (requeue_atom, vector<string> ids, bool all_quarantined)
//                                               -> vector<string>
//   (cancel_atom, vector<string> ids)           -> vector<string>
// Writes are grouped: the first write after a commit opens a transaction and
// queues a flush behind everything already in the mailbox; replies to writes
// are sent only after that commit. So "completed" is never reported before
// it is durable, and a burst of N changes costs one commit. A storage error
// kills the checkpointer with the error logged: the run then ends with exit
// code 1 rather than continuing without a checkpoint.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

namespace bgagent {

class store;

caf::actor spawn_checkpointer(caf::actor_system& sys,
                              std::unique_ptr<store> db);

} // namespace bgagent
