// The budget_keeper's typed interface (semantics: actors/budget_keeper.hpp).
//
// Contract: the only handle to the budget_keeper is this type, so the
// compiler checks every message sent to it; it never leaves the head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"

namespace bgagent {

using budget_keeper_actor = caf::typed_actor<
  // (task id, worst-case tokens, worst-case dollars)
  caf::replies_to<reserve_atom, std::string, uint64_t, double>::with<
    reservation>,
  // (task ids, worst-case tokens, worst-case dollars, force): in order,
  // up to and including the first denial; force (a batch's tasks held
  // again after a restart) grants each whatever the budget says
  caf::replies_to<reserve_atom, std::vector<std::string>,
                  std::vector<uint64_t>, std::vector<double>, bool>::with<
    std::vector<reservation>>,
  // (reservation id, actual usage): false when the id is not held
  caf::replies_to<commit_atom, uint64_t, usage>::with<bool>,
  // The settlements of one commit of the store, in one message.
  caf::reacts_to<commit_atom, std::vector<settlement>>,
  caf::replies_to<release_atom, uint64_t>::with<bool>,
  caf::replies_to<set_budget_atom, budget_change>::with<budget_snapshot>,
  caf::replies_to<budget_atom>::with<budget_snapshot>>;

} // namespace bgagent
