// The response cache's fingerprints, in memory, for a quick "surely not
// cached" (DESIGN.md section 13).
//
// Contract: may_contain(fp) is false only when no answer was ever put in
// the cache under fp by this process's store or was there when the store
// filled the filter; true means "ask the store" (a hash collision, or a put
// rolled back, only costs that question). Thread-safe: the store adds from
// the checkpointer's thread while node gateways ask from scheduler threads.
// Most lookups miss, so each miss saves a round trip to the store's single
// writer thread and a query.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_set>

namespace bgagent {

class cache_filter {
public:
  void add(const std::string& fingerprint);
  bool may_contain(const std::string& fingerprint) const;

private:
  static size_t hash_of(const std::string& fingerprint);
  mutable std::mutex mutex_;
  std::unordered_set<size_t> hashes_;
};

} // namespace bgagent
