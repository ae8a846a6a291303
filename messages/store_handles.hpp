// The writers of a store's files, as the head's actors address them
// (docs/plans/sharded-store.md §3): one checkpointer per file, file 0 (the
// main file) first.
//
// Contract:
// - main() gets what lives in the main file: runs, limits, batches,
//   circuits, schedules, submissions, status, and events that name no task.
// - of(id) gets everything about task `id` (running, complete, usage,
//   retry, quarantine, give back, its events): the writer of the file that
//   holds it, shard_of(id, size()). With one file that is main(), and no
//   hash is computed.
// - holds(sender) says whether a message came from one of these writers
//   (a gateway takes store answers from them only).
// Converts from one checkpointer (a store of one file), so a handle struct
// that held a checkpointer is built as before.
#pragma once

#include <string_view>
#include <vector>

#include <caf/actor_cast.hpp>

#include "messages/checkpointer_actor.hpp"
#include "persistence/shard_map.hpp"

namespace bgagent {

struct store_handles {
  std::vector<checkpointer_actor> files;

  store_handles() = default;
  store_handles(checkpointer_actor one) { // NOLINT: one file is the usual
    files.push_back(std::move(one));
  }
  explicit store_handles(std::vector<checkpointer_actor> all)
    : files(std::move(all)) {}

  size_t size() const { return files.size(); }
  explicit operator bool() const { return !files.empty() && files.front(); }

  const checkpointer_actor& main() const { return files.front(); }

  const checkpointer_actor& of(std::string_view id) const {
    if (files.size() == 1)
      return files.front();
    return files[shard_of(id, static_cast<uint32_t>(files.size()))];
  }

  bool holds(const caf::strong_actor_ptr& sender) const {
    for (auto& f : files)
      if (sender == caf::actor_cast<caf::strong_actor_ptr>(f))
        return true;
    return false;
  }
};

} // namespace bgagent
