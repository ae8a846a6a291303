// The auditor's order over a sharded store (docs/plans/sharded-store.md
// §2c): each shard's writer sends the events it committed, in seq order,
// with a floor it vouches for: every event of its below the floor is in
// this message or an earlier one (the event_clock's next(), read after it
// took these events from the store and with no transaction open). A
// writer's events must be whole: a transaction's events trimmed in memory
// would look like other shards' seqs (store::use_event_clock keeps them
// whole). The audit log must
// be strictly increasing in seq, so an event is written only once no shard
// can still send one below it: below the watermark, the least floor.
//
// Contract:
// - add(k, events, floor) queues shard k's events. They must be strictly
//   increasing, above k's last event, at least k's previous floor, and below
//   `floor`; otherwise add() returns false and takes nothing (a writer's
//   bug, for the caller to report). A floor lower than k's last is ignored.
// - take_ready() takes out every queued event below watermark(), in seq
//   order, merged across shards. A seq below the watermark that never came
//   was rolled back: a hole, which the log allows.
// - holding_back() names the shards whose floor alone keeps the first
//   waiting event back (an idle shard's floor is old): the ones to ask for a
//   newer floor.
// - Two shards sending one seq (a writer without the clock) breach the
//   contract where add() cannot see it: take_ready() still returns both
//   (an event is never dropped) and breaches() counts them for the caller
//   to report.
// Pure: no actor system, no clock, no files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "messages/events.hpp"

namespace bgagent {

class event_merge {
public:
  // `floor`: what every shard vouches for at the start (the clock's next()
  // before any writer began).
  explicit event_merge(size_t shards, uint64_t floor = 0);

  bool add(size_t shard, std::vector<committed_event> events, uint64_t floor);
  std::vector<committed_event> take_ready();

  uint64_t watermark() const;
  std::vector<size_t> holding_back() const;
  size_t waiting() const { return waiting_; }
  size_t breaches() const { return breaches_; }
  uint64_t floor_of(size_t shard) const { return shards_[shard].floor; }

private:
  struct shard_queue {
    std::deque<committed_event> events;
    uint64_t floor = 0;
    uint64_t last = 0; // the last seq it sent
  };
  std::vector<shard_queue> shards_;
  size_t waiting_ = 0;
  size_t breaches_ = 0;
  uint64_t last_written_ = 0;
};

} // namespace bgagent
