// The auditor's typed interface (semantics: actors/auditor.hpp).
//
// Contract: the only handle to the auditor is this type, so the compiler
// checks every message sent to it; it never leaves the head.
#pragma once

#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/events.hpp"

namespace bgagent {

using auditor_actor = caf::typed_actor<
  // any actor's event (through the store's outbox once attached)
  caf::reacts_to<audit_event>,
  // the checkpointer whose committed events it writes
  caf::reacts_to<attach_atom, checkpointer_actor>,
  // a store of several files: every file's writer, main's first
  caf::reacts_to<attach_atom, std::vector<checkpointer_actor>>,
  // committed events, in seq order, after each commit
  caf::reacts_to<std::vector<committed_event>>,
  // from file k's writer of a store of several: (k, its committed events
  // in seq order, its floor)
  caf::reacts_to<commit_atom, uint32_t, std::vector<committed_event>,
                 uint64_t>,
  // answered once every event received before it is on disk
  caf::replies_to<flush_atom>::with<flush_atom>,
  // its own note: write what is pending
  caf::reacts_to<write_pending_atom>>;

} // namespace bgagent
