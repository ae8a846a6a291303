// An admin endpoint's typed interface (semantics:
// actors/admin_endpoint.hpp): what an admin node may ask after its hello.
//
// Contract: remote peers are not bound by this type; the endpoint refuses
// and audits whatever does not come from its own admin node.
#pragma once

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/admin_status.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"

namespace bgagent {

using admin_endpoint_actor = caf::typed_actor<
  caf::replies_to<status_atom>::with<admin_status>,
  caf::replies_to<pause_atom>::with<bool>,
  caf::replies_to<resume_atom>::with<bool>,
  caf::replies_to<drain_atom>::with<bool>,
  caf::replies_to<shutdown_atom>::with<bool>,
  caf::replies_to<set_budget_atom, budget_change>::with<budget_snapshot>,
  // (ids, all quarantined) -> requeued
  caf::replies_to<requeue_atom, std::vector<std::string>, bool>::with<
    std::vector<std::string>>,
  // (ids) -> cancelled
  caf::replies_to<cancel_atom, std::vector<std::string>>::with<
    std::vector<std::string>>,
  caf::replies_to<workers_atom>::with<std::vector<std::string>>,
  // (local or provider batch id) -> "" when the cancel was asked of the
  // provider, else why not
  caf::replies_to<cancel_atom, batch_atom, std::string>::with<std::string>,
  // its own idle timer
  caf::reacts_to<timeout_atom>>;

} // namespace bgagent
