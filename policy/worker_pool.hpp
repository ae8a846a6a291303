// The supervisor's registry of workers: who exists, who is idle, who is
// busy with which attempt, and which finished attempts are still being
// stored after their worker went on to the next one.
//
// Contract:
// - A worker is added once (by its key) and is idle until assign() gives it
//   a task; assign() takes the most recently idled worker (LIFO keeps a few
//   workers and their connections warm) and counts it busy.
// - release() idles a busy worker and refuses (false) one that is idle
//   already: a stale report can never free a worker twice.
// - busy_with(key, id, attempt) finds the worker only while it holds that
//   exact attempt.
// - freed(): the worker's answer is being stored; the worker is idled and
//   the attempt is kept in `storing` (with the key of the gateway storing
//   it) until settle() with the same attempt from that gateway, or until
//   that gateway ends (drop_storing_of()).
// - remove() takes a worker out (busy or idle) and keeps every count exact.
// - busy(), idle(), storing() and remove() are O(1); nothing here scans all
//   workers except the listing helpers.
// Pure: no actor system, no clock of its own (times come from the caller),
// so it is tested as a plain unit; Key must be hashable (and a key passed
// in must be a real one: CAF's null actor_addr cannot be hashed).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "messages/task.hpp"

namespace bgagent {

template <class Key, class Handle, class Gateway>
class worker_pool {
public:
  using time_point = std::chrono::steady_clock::time_point;

  struct slot {
    Handle handle;
    Gateway gateway; // the head's half of its attempts (its node's gateway)
    std::string name;
    std::string node;
    bool remote = false;
    bool busy = false;
    task current;
    uint32_t attempt = 0;
    time_point dispatched;
    // The worker's last sign of life (steady clock, ns since its epoch),
    // which it sets itself while busy, or a negative value once its call
    // is over (its report is on its way through the store); null when it
    // has no such clock (remote workers). assign() resets it.
    std::shared_ptr<std::atomic<int64_t>> alive;
  };

  // When the worker last showed it was not hung: dispatched, or later;
  // nullopt when its call is over (whatever it waits for is not its own).
  static std::optional<time_point> last_sign_of_life(const slot& s) {
    if (!s.alive)
      return s.dispatched;
    auto ns = s.alive->load(std::memory_order_relaxed);
    if (ns < 0)
      return std::nullopt;
    auto beat = time_point(std::chrono::duration_cast<time_point::duration>(
      std::chrono::nanoseconds(ns)));
    return std::max(s.dispatched, beat);
  }

  // A busy worker with no sign of life for longer than `limit`.
  template <class Duration>
  static bool silent_for(const slot& s, time_point now, Duration limit) {
    if (!s.busy)
      return false;
    auto last = last_sign_of_life(s);
    return last && now - *last > limit;
  }

  // A finished attempt whose answer is being stored.
  struct stored_attempt {
    uint32_t attempt = 0;
    Key gateway;
  };

  // False (and nothing changes) when `key` is known already.
  bool add(const Key& key, slot s) {
    s.busy = false;
    if (!slots_.emplace(key, std::move(s)).second)
      return false;
    idle_.push_back(key);
    return true;
  }

  slot* find(const Key& key) {
    auto i = slots_.find(key);
    return i == slots_.end() ? nullptr : &i->second;
  }

  bool has_idle() const { return idle() > 0; }

  // An idle worker takes `t` (its next attempt: t.attempts + 1); null when
  // none is idle. The key of the worker is the first of the pair.
  std::pair<const Key, slot>* assign(task t, time_point now) {
    auto i = slots_.end();
    while (i == slots_.end()) {
      if (idle_.empty())
        return nullptr;
      i = slots_.find(idle_.back());
      idle_.pop_back();
      if (i == slots_.end() || i->second.busy) { // left by remove()
        --removed_idle_;
        i = slots_.end();
      }
    }
    auto& s = i->second;
    s.busy = true;
    ++busy_;
    if (s.alive) // its last call's mark, if any, is stale now
      s.alive->store(0, std::memory_order_relaxed);
    s.attempt = t.attempts + 1;
    s.dispatched = now;
    s.current = std::move(t);
    return &*i;
  }

  // Idles a busy worker; false for one that is idle already.
  bool release(const Key& key) {
    auto* s = find(key);
    if (!s || !s->busy)
      return false;
    s->busy = false;
    --busy_;
    idle_.push_back(key);
    return true;
  }

  // The worker `key` if it is busy with exactly this attempt.
  slot* busy_with(const Key& key, const std::string& id, uint32_t attempt) {
    auto* s = find(key);
    if (!s || !s->busy || s->current.id != id || s->attempt != attempt)
      return nullptr;
    return s;
  }

  // The worker's answer for its attempt is being stored by `gateway`: the
  // worker is idle again and the attempt waits in `storing`. False (nothing
  // changes) unless the worker is busy with exactly that attempt.
  bool freed(const Key& key, const std::string& id, uint32_t attempt,
             const Key& gateway) {
    if (!busy_with(key, id, attempt))
      return false;
    storing_[id] = stored_attempt{attempt, gateway};
    release(key);
    return true;
  }

  // The stored attempt's end: true when `id`'s stored attempt is `attempt`
  // and `gateway` is storing it (a late report of an older attempt, or one
  // from another gateway, leaves it alone).
  bool settle(const std::string& id, uint32_t attempt, const Key& gateway) {
    auto i = storing_.find(id);
    if (i == storing_.end() || i->second.attempt != attempt ||
        !(i->second.gateway == gateway))
      return false;
    storing_.erase(i);
    return true;
  }

  // `gateway` ended: the answers it was storing will not be reported.
  // Returns their task ids.
  std::vector<std::string> drop_storing_of(const Key& gateway) {
    std::vector<std::string> dropped;
    for (auto i = storing_.begin(); i != storing_.end();) {
      if (i->second.gateway == gateway) {
        dropped.push_back(i->first);
        i = storing_.erase(i);
      } else {
        ++i;
      }
    }
    return dropped;
  }

  // Takes the worker out (idle or busy); its slot is the caller's.
  std::optional<slot> remove(const Key& key) {
    auto i = slots_.find(key);
    if (i == slots_.end())
      return std::nullopt;
    slot s = std::move(i->second);
    slots_.erase(i);
    if (s.busy)
      --busy_;
    else if (++removed_idle_ > 64 && removed_idle_ * 2 > idle_.size())
      drop_removed_idle(); // else its entry is skipped by assign()
    return s;
  }

  size_t size() const { return slots_.size(); }
  uint32_t busy() const { return busy_; }
  size_t idle() const { return idle_.size() - removed_idle_; }
  // Entries in the idle stack, stale ones included: at most about twice
  // idle() + 64 (tested).
  size_t idle_entries() const { return idle_.size(); }
  size_t storing() const { return storing_.size(); }

  // Whether any worker of `node` is left.
  bool has_node(const std::string& node) const {
    return std::any_of(slots_.begin(), slots_.end(),
                       [&](auto& kv) { return kv.second.node == node; });
  }

  size_t remote_count() const {
    size_t n = 0;
    for (auto& kv : slots_)
      n += kv.second.remote;
    return n;
  }

  // The keys of the workers for which `pred(slot)` holds.
  template <class Pred>
  std::vector<Key> keys_where(Pred pred) const {
    std::vector<Key> out;
    for (auto& kv : slots_)
      if (pred(kv.second))
        out.push_back(kv.first);
    return out;
  }

  auto begin() { return slots_.begin(); }
  auto end() { return slots_.end(); }
  auto begin() const { return slots_.begin(); }
  auto end() const { return slots_.end(); }

private:
  std::unordered_map<Key, slot> slots_;
  std::vector<Key> idle_; // a stack: the last idled is the next assigned
  // Entries of idle_ whose worker was removed (or, added again, is busy):
  // remove() leaves them for assign() to skip, as erasing each would scan
  // the stack (10,000 workers ending: 10^8 compares).
  size_t removed_idle_ = 0;

  // Rebuilds idle_ without the entries of removed (or busy) workers, each
  // idle worker once at its topmost place: amortized O(1) per remove(),
  // and a long `serve` whose nodes come and go keeps no dead entries.
  void drop_removed_idle() {
    std::vector<Key> kept;
    std::unordered_set<Key> seen;
    for (auto i = idle_.rbegin(); i != idle_.rend(); ++i) {
      auto s = slots_.find(*i);
      if (s != slots_.end() && !s->second.busy && seen.insert(*i).second)
        kept.push_back(*i);
    }
    idle_.assign(kept.rbegin(), kept.rend());
    removed_idle_ = 0;
  }
  uint32_t busy_ = 0;     // slots with busy set, kept in step
  std::unordered_map<std::string, stored_attempt> storing_;
};

} // namespace bgagent
