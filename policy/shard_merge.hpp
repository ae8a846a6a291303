// The supervisor's run order over a sharded store (docs/plans/
// sharded-store.md §2b): one feed per store file, each read from its own
// cursor by its own reader, merged into one order, priority first (higher
// first), then seq (lower first). Seqs are global, so that order is
// exactly the one a single file gives.
//
// Contract:
// - next() returns the first item in run order among the buffered ones, and
//   only when no feed could still bring one that goes before it: a feed that
//   is not exhausted, has nothing buffered and whose cursor is before that
//   item holds it back until its fetch answers. So the order is exact, and
//   next() waits only when the order needs it.
// - to_fetch() names the feeds to ask now (not exhausted, no fetch out, fewer
//   than low_water items buffered); the caller asks each for the items after
//   cursor(k) and calls fetching(k), whose ticket goes with the answer.
// - fetched() takes an answer: items in run order after the cursor (others
//   are dropped), less those let go while it was out. A short answer
//   (`exhausted`) ends that feed until reset(). An answer whose ticket
//   predates a reset() is ignored.
// - let_go(id): the task is no longer to be run (completed, cancelled): it
//   is dropped if buffered and left out of any answer now out.
// - reset() starts every feed again from the top (tasks were put back
//   behind the cursors) and forgets what is buffered. Feeds then bring
//   again tasks the caller already holds: it must skip those itself.
// T has `int64_t priority`, `int64_t seq` and `std::string id` (a task).
// Pure: no actor system, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "messages/run.hpp"

namespace bgagent {

// Whether (priority, seq) `a` runs before `b`.
inline bool runs_before(int64_t a_priority, int64_t a_seq, int64_t b_priority,
                        int64_t b_seq) {
  return a_priority != b_priority ? a_priority > b_priority : a_seq < b_seq;
}

template <class T>
class shard_merge {
public:
  explicit shard_merge(size_t feeds, size_t low_water = 1)
    : feeds_(feeds == 0 ? 1 : feeds),
      low_water_(low_water == 0 ? 1 : low_water) {}

  std::vector<size_t> to_fetch() const {
    std::vector<size_t> out;
    for (size_t k = 0; k < feeds_.size(); ++k) {
      auto& f = feeds_[k];
      if (!f.exhausted && !f.fetching && f.items.size() < low_water_)
        out.push_back(k);
    }
    return out;
  }

  uint64_t fetching(size_t k) {
    feeds_[k].fetching = true;
    return generation_;
  }

  const fetch_cursor& cursor(size_t k) const { return feeds_[k].cursor; }

  bool fetched(size_t k, uint64_t ticket, std::vector<T> items,
               bool exhausted) {
    if (ticket != generation_)
      return false; // asked before a reset: its cursor is gone
    auto& f = feeds_[k];
    f.fetching = false;
    auto gone = std::move(f.let_go);
    f.let_go.clear();
    for (auto& t : items) {
      if (!runs_before(f.cursor.priority, f.cursor.seq, t.priority, t.seq))
        continue; // not after the cursor: not this answer's to give
      f.cursor = fetch_cursor{t.priority, t.seq};
      if (gone.count(t.id))
        continue;
      if (feeds_.size() > 1 && !buffered_ids_.insert(t.id).second)
        continue; // already buffered: an id has one place
      f.items.push_back(std::move(t));
    }
    if (exhausted)
      f.exhausted = true;
    return true;
  }

  void let_go(const std::string& id) {
    // Rare: a task let go is most often one already taken. One feed is
    // searched only when it holds any (its caller takes all it can at
    // each answer); several keep an index.
    bool buffered = feeds_.size() == 1 ? !feeds_[0].items.empty()
                                       : buffered_ids_.erase(id) > 0;
    for (auto& f : feeds_) {
      if (f.fetching)
        f.let_go.insert(id);
      if (buffered)
        for (auto i = f.items.begin(); i != f.items.end(); ++i)
          if (i->id == id) {
            f.items.erase(i);
            break;
          }
    }
  }

  std::optional<T> next() {
    size_t best = feeds_.size();
    for (size_t k = 0; k < feeds_.size(); ++k) {
      auto& f = feeds_[k];
      if (f.items.empty())
        continue;
      auto& t = f.items.front();
      if (best == feeds_.size() ||
          runs_before(t.priority, t.seq, feeds_[best].items.front().priority,
                      feeds_[best].items.front().seq))
        best = k;
    }
    if (best == feeds_.size())
      return std::nullopt;
    auto& head = feeds_[best].items.front();
    for (auto& f : feeds_)
      if (f.items.empty() && !f.exhausted &&
          runs_before(f.cursor.priority, f.cursor.seq, head.priority,
                      head.seq))
        return std::nullopt; // it may yet bring one that goes first
    if (feeds_.size() > 1)
      buffered_ids_.erase(head.id);
    std::optional<T> out(std::move(head));
    feeds_[best].items.pop_front();
    return out;
  }

  bool drained() const {
    for (auto& f : feeds_)
      if (!f.items.empty() || !f.exhausted)
        return false;
    return true;
  }

  size_t buffered() const {
    size_t n = 0;
    for (auto& f : feeds_)
      n += f.items.size();
    return n;
  }

  void reset() {
    ++generation_;
    buffered_ids_.clear();
    for (auto& f : feeds_)
      f = feed{};
  }

private:
  struct feed {
    fetch_cursor cursor;
    std::deque<T> items;
    bool fetching = false;
    bool exhausted = false;
    std::unordered_set<std::string> let_go; // while a fetch is out
  };
  std::vector<feed> feeds_;
  // The ids in some feed's items, kept with more than one feed.
  std::unordered_set<std::string> buffered_ids_;
  size_t low_water_;
  uint64_t generation_ = 0;
};

} // namespace bgagent
