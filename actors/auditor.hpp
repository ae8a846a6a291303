// The auditor: the only writer of the JSON Lines audit log.
//
// The log is derived from the store: every event is first committed to the
// store's `events` table (by the checkpointer, which numbers it) and only
// then written here, with the store's seq and ts. So after a crash the next
// start appends exactly what the file lacks: every event once, none lost.
//
// Contract (messages/auditor_actor.hpp):
//   audit_event            (no reply) any actor's event: forwarded to the
//       checkpointer, the events received in one batch together as
//       (audit_atom, vector<audit_event>) (one alone: (audit_atom,
//       audit_event)), which inserts them in its current transaction. Before a checkpointer is attached (or without
//       one: tests, tools) the auditor numbers and writes it itself.
//   (attach_atom, checkpointer)  (no reply) attaches the checkpointer
//       (spawn_checkpointer with an auditor sends it): the auditor asks it
//       for every committed event after the log's last seq, which also
//       tells the store the seq floor.
//   vector<committed_event>  (no reply) committed events, in seq order, from
//       the checkpointer after each commit: appended with their seq and ts.
//   (flush_atom)           -> flush_atom once every event received before
//       it is committed and on disk.
// Lines reach the file in seq order, in batches (one write per batch, when
// the mailbox has drained), under an exclusive lock on the file: several
// processes (a `run` and a `submit`) may share one log. An event already in
// the file (seq at or below its last line's) is not written again; a gap
// before an event (events another process committed but has not written
// yet) is filled from the store first (catch-up request to the
// checkpointer: (catch_up_atom, uint64 after_seq, uint32 limit)). A write
// failure kills the auditor (the supervisor of the run treats that as an
// internal failure); its events stay in the store for the next start.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "messages/auditor_actor.hpp"

namespace bgagent {

// Opens the log (throws std::runtime_error naming it) and spawns the auditor.
auditor_actor spawn_auditor(caf::actor_system& sys, const std::string& path);

} // namespace bgagent
