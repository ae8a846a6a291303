// The store reader's typed interface: the checkpointer's reads that scan
// every task (status, counts, results), with the same messages and replies
// (messages/checkpointer_actor.hpp extends this), so the checkpointer can
// delegate them as they came.
//
// Contract: only the checkpointer holds this handle; it delegates a read
// once its open group has committed, so a read sees every change asked for
// before it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"

namespace bgagent {

using store_reader_actor = caf::typed_actor<
  caf::replies_to<status_atom>::with<status_report>,
  caf::replies_to<status_atom, tags_atom>::with<std::vector<tag_totals>>,
  caf::replies_to<status_atom, provider_atom>::with<std::vector<std::string>>,
  caf::replies_to<status_atom, total_atom>::with<uint64_t>,
  caf::replies_to<status_atom, models_atom>::with<std::vector<std::string>>,
  // (after priority, after seq, limit): runnable tasks, as the checkpointer's
  caf::replies_to<fetch_atom, int64_t, int64_t, uint32_t>::with<
    std::vector<task>>,
  // (state)
  caf::replies_to<results_atom, std::string>::with<std::vector<task_record>>,
  // (state, tag, ids, limit)
  caf::replies_to<results_atom, std::string, std::string,
                  std::vector<std::string>, int64_t>::with<
    std::vector<task_record>>>;

} // namespace bgagent
