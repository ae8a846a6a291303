// The auditor: the only writer of the JSON Lines audit log.
//
// Contract (messages):
//   audit_event            -> (no reply) appended with ts and the next seq
//   (flush_atom)           -> flush_atom once everything received is on disk
// Lines reach the file in the order received, in batches: the auditor
// flushes when its mailbox has drained, so a burst costs one write. `seq`
// continues from the last line of an existing log, so it increases strictly
// across runs. A write failure kills the auditor (the supervisor of the run
// treats that as an internal failure: no silent gaps in the audit trail).
#pragma once

#include <string>

#include <caf/fwd.hpp>

namespace bgagent {

// Opens the log (throws std::runtime_error naming it) and spawns the auditor.
caf::actor spawn_auditor(caf::actor_system& sys, const std::string& path);

} // namespace bgagent
