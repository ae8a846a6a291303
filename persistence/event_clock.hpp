// One numbering of audit events across the files of a sharded store
// (docs/plans/sharded-store.md §2c): every shard's writer takes its events'
// seqs from the one clock its process holds, so seqs are unique and
// increasing across files without any file being read for max(seq) + 1.
//
// Contract (safe from any thread):
// - take() returns a seq greater than every seq it returned before and
//   every seq passed to raise();
// - next() is a floor: every later take() returns at least next(). A writer
//   that has handed over every event it committed, and has no transaction
//   open, vouches with next() that the auditor has every event of its below
//   that floor: it sends its events and the floor it read after them in one
//   message (what the auditor's merge waits on);
// - raise(seq) makes every later take() return more than seq (the events
//   already in the files and the audit log, at open).
// A seq taken by a transaction that rolls back is never written: a hole,
// which the audit log allows (its seqs are strictly increasing, not dense).
#pragma once

#include <atomic>
#include <cstdint>

namespace bgagent {

class event_clock {
public:
  uint64_t take() { return next_.fetch_add(1, std::memory_order_relaxed); }

  uint64_t next() const { return next_.load(std::memory_order_relaxed); }

  void raise(uint64_t seq) {
    uint64_t cur = next_.load(std::memory_order_relaxed);
    while (cur <= seq &&
           !next_.compare_exchange_weak(cur, seq + 1,
                                        std::memory_order_relaxed)) {
    }
  }

private:
  std::atomic<uint64_t> next_{1}; // seqs start at 1
};

} // namespace bgagent
