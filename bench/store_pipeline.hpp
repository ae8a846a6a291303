// The store side of a run over S store files, without actors
// (docs/plans/sharded-store.md, step 1): what a sharded store would allow
// before any contract changes. Threads stand where the actors would:
// - one reader per file answers fetches from its cursor (bg.reader{k});
// - one supervisor merges the S feeds into run order (policy/shard_merge)
//   and hands each task to its file's writer, at most `window` at a time
//   (the workers' calls in flight);
// - one writer per file marks G tasks running in one transaction, then
//   completed in the next (bg.checkpoint{k}), numbering events from one
//   shared clock (persistence/event_clock), and reports its events with
//   its floor;
// - one auditor merges the writers' events (policy/event_merge) and writes
//   them as audit lines to a file, in strictly increasing seq.
// Tasks are placed by shard_of(id). S = 1 runs the same threads on one
// file numbered by max + 1, as today's store.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "persistence/store.hpp"

namespace bgagent::bench {

struct pipeline_figures {
  // The submission of the tasks (store_set's protocol across the files,
  // parts of 2,048, with task_submitted events; a thread a file).
  double submit_per_s = 0;
  double submit_cpu_us_per_task = 0;
  double tasks_per_s = 0;
  double cpu_us_per_task = 0;
  // Every thread's name and CPU per task of the whole run, busiest first.
  std::vector<std::pair<std::string, double>> threads_us_per_task;
};

pipeline_figures run_store_pipeline(size_t tasks, size_t group,
                                    store::sync_mode sync, size_t shards,
                                    size_t window);

} // namespace bgagent::bench
