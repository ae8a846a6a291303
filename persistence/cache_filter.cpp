#include "persistence/cache_filter.hpp"

#include <algorithm>
#include <functional>

namespace bgagent {

uint64_t cache_filter::hash_of(const std::string& fingerprint) {
  return static_cast<uint64_t>(std::hash<std::string>{}(fingerprint));
}

cache_filter::cache_filter(std::vector<std::string> stored) {
  stored_.reserve(stored.size());
  for (auto& fp : stored)
    stored_.push_back(hash_of(fp));
  std::sort(stored_.begin(), stored_.end());
}

void cache_filter::add(const std::string& fingerprint) {
  auto h = hash_of(fingerprint);
  std::lock_guard<std::mutex> guard(mutex_);
  added_.insert(h);
}

bool cache_filter::may_contain(const std::string& fingerprint) const {
  auto h = hash_of(fingerprint);
  if (std::binary_search(stored_.begin(), stored_.end(), h))
    return true;
  std::lock_guard<std::mutex> guard(mutex_);
  return added_.count(h) > 0;
}

} // namespace bgagent
