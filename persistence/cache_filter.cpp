#include "persistence/cache_filter.hpp"

#include <functional>

namespace bgagent {

size_t cache_filter::hash_of(const std::string& fingerprint) {
  return std::hash<std::string>{}(fingerprint);
}

void cache_filter::add(const std::string& fingerprint) {
  auto h = hash_of(fingerprint);
  std::lock_guard<std::mutex> guard(mutex_);
  hashes_.insert(h);
}

bool cache_filter::may_contain(const std::string& fingerprint) const {
  auto h = hash_of(fingerprint);
  std::lock_guard<std::mutex> guard(mutex_);
  return hashes_.count(h) > 0;
}

} // namespace bgagent
