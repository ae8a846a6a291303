// The batch_runner: sends pending tasks through a provider's Batch API
// and brings their results back (DESIGN.md section 13). One per head run,
// a blocking actor on a thread of its own (detached): every step is a
// remote call that may take seconds, made in order.
//
// Contract (messages/batch_runner_actor.hpp):
//   (run_atom) -> run_summary, when its work is over:
//     - at start it takes up every batch the store holds open (a crash, a
//       --detach, another run's); their tasks' reservations were held
//       again by the run before anything reserved (run_command);
//     - with `submit` (run --mode batch) it puts pending tasks into new
//       batches, one batch's worth a round: one model per batch, cut to
//       the limits, each task's worst case reserved at the batch price
//       first (a denial cuts the batch and stops new ones: exit 3 once the
//       submitted ones have ended); no new batch while one is not yet
//       created at the provider;
//     - each batch moves preparing -> uploaded -> submitted -> ... with
//       its row written after each remote call; a batch taken up in
//       `uploaded` first looks for a provider batch carrying its local id
//       and its file (created just before a crash), so no tasks are ever
//       sent twice;
//     - an ended batch's output and error files are applied: each line
//       ends its task as a live answer would (interpret_response, the
//       type's schema); lines in error, requests left undone and failed
//       batches send their tasks to the retry path (attempt counted;
//       quarantined past BG_AGENT_MAX_RETRIES or on a permanent error);
//     - an upload or create the provider refuses for good gives the
//       batch's tasks back uncounted (nothing was sent) and stops new
//       batches: alert batch_refused, exit 7 (3 out of credits); a batch
//       the provider has but that can no longer be followed is never
//       failed here: alert batch_unreachable, left open, not waited for
//       (exit 4);
//     - it ends when no batch is open and nothing is left to submit; with
//       `detach` as soon as what was pending has been submitted (exit 0,
//       the batches stay open for a later run); with `follow` (serve)
//       never, unless drained.
//   (drain_atom, int32 signal) -> true: nothing new; it ends at once.
//   (cancel_atom, string id) -> "" or why not: cancels an open batch (at
//       the provider when it is there), audited batch_cancelled; its
//       requests left undone go back to the queue when it has ended.
// It polls each open batch every poll_seconds, heartbeats to the monitor
// while it works (never while it only waits: a batch in progress is not
// silence), raises a critical `batch_overdue` alert once for a batch
// still open past its window + 1 h, and publishes the batches' progress
// in the run's call_counters (the live line, /metrics).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/call_counters.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/batch_runner_actor.hpp"
#include "messages/budget_keeper_actor.hpp"
#include "messages/checkpointer_actor.hpp"
#include "messages/monitor_actor.hpp"
#include "policy/batch_split.hpp"
#include "providers/batch_api.hpp"
#include "providers/provider.hpp"

namespace bgagent {

struct batch_runner_settings {
  bool submit = false; // --mode batch: pending tasks go into new batches
  bool detach = false; // end once submitted; a later run collects
  bool follow = false; // serve: never end on its own
  // BG_AGENT_BATCH_RETRY=live: failed tasks are left for the live run
  // that follows, not put into a new batch.
  bool retry_live = false;
  int64_t run_id = 0;
  batch_limits limits;
  double poll_seconds = 60;
  // The batch price where the price list has none: this share of the
  // live price.
  double discount = 0.5;
  uint32_t max_retries = 3;
  double window_seconds = 24 * 3600; // completion_window
  bool response_format = true;
  // The response cache: a task whose request has a cached answer is
  // completed from it instead of going into a batch; answers from
  // batches are kept in it.
  bool cache = false;
  std::string node = "head";
  std::string secret; // the API key: never in a message
  batch_api_settings api;
};

struct batch_runner_handles {
  checkpointer_actor checkpointer;
  budget_keeper_actor budget_keeper;
  auditor_actor auditor;
  monitor_actor monitor;
  std::shared_ptr<call_counters> counters; // never null
};

batch_runner_actor spawn_batch_runner(caf::actor_system& sys,
                                      batch_runner_settings s,
                                      batch_runner_handles h,
                                      provider_ptr p);

} // namespace bgagent
