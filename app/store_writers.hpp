// The writers of a run's store: one checkpointer (and its store reader)
// per file (docs/plans/sharded-store.md §3).
//
// Contract:
// - store_files_on_disk(): <db>.shard1, .shard2 ... counted while they
//   exist, at most 64; the store itself still checks them when opened.
// - open_reader(): a second connection to one file, for its reader, as
//   patient as the writer (a read kept waiting warns and goes on waiting,
//   never ends the run).
// - spawn_file_writers(): takes every file's connection out of `files` (a
//   store of several, opened and with the run opened) and spawns each
//   file's writer on it, numbering events from the files' one clock, file
//   0 (main) first; main's reader answers status, counts and results over
//   every file (a read-only set of its own). Then it attaches them all to
//   the auditor, which merges their events into the log in seq order.
//   Every connection is opened before any writer is spawned: a file that
//   cannot be opened throws with no actor left waiting. `run_id`: the run
//   opened on the files (main's writer records its limits).
//   What the files committed before (a submission, the run's opening)
//   reaches the log through the auditor's catch-up, not from memory.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/auditor_actor.hpp"
#include "messages/store_handles.hpp"
#include "persistence/store.hpp"

namespace bgagent {

class store_set;

// How many files the store at `db_path` has on disk (1 when it has no
// `<db>.shard1`, or does not exist): a cheap look, before anything is
// opened, at whether a command meets a store of several files.
uint32_t store_files_on_disk(const std::string& db_path);

std::unique_ptr<store> open_reader(const std::string& path,
                                   store::sync_mode sync, bool in_set);

store_handles spawn_file_writers(caf::actor_system& sys,
                                 std::unique_ptr<store_set> files,
                                 const std::string& db_path,
                                 store::sync_mode sync,
                                 const auditor_actor& auditor,
                                 int64_t run_id = 0);

} // namespace bgagent
