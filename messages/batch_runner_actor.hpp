// The batch_runner's typed interface (semantics: actors/batch_runner.hpp).
//
// Contract: the only handle to the batch_runner is this type, so the
// compiler checks every message sent to it; it never leaves the head.
#pragma once

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/run.hpp"

namespace bgagent {

using batch_runner_actor = caf::typed_actor<
  // answered when its work is over (see the header)
  caf::replies_to<run_atom>::with<run_summary>,
  // (signal number, 0: an admin drain): no new batch; it ends now, the
  // batches at the provider stay in the store for the next run
  caf::replies_to<drain_atom, int32_t>::with<bool>,
  // (local batch id) -> "" when asked of the provider, else why not
  caf::replies_to<cancel_atom, std::string>::with<std::string>>;

} // namespace bgagent
