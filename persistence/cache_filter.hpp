// The response cache's fingerprints, in memory, for a quick "surely not
// cached" (DESIGN.md section 13).
//
// Contract: may_contain(fp) is false only when fp was neither in the cache
// when the store filled the filter nor add()ed since; true means "ask the
// store" (a hash collision, a rolled-back put, or an answer added before it
// committed only costs that question). Thread-safe: the store adds from the
// checkpointer's thread, node gateways ask and add (an answer they are
// about to store) from scheduler threads. Most lookups miss, so each miss
// saves a round trip to the store's single writer thread and a query.
// Memory: 8 bytes per fingerprint read from the store (a sorted array),
// about 40 per fingerprint added in this process.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace bgagent {

class cache_filter {
public:
  // The fingerprints already stored, in any order (the store's first read).
  explicit cache_filter(std::vector<std::string> stored = {});
  void add(const std::string& fingerprint);
  bool may_contain(const std::string& fingerprint) const;

private:
  static uint64_t hash_of(const std::string& fingerprint);
  std::vector<uint64_t> stored_; // sorted; never changes after construction
  mutable std::mutex mutex_;     // guards added_
  std::unordered_set<uint64_t> added_;
};

} // namespace bgagent
