// How pending tasks become provider batches: grouped by model, each group
// cut into consecutive batches within the provider's limits.
//
// Contract: split_batches() takes the request lines' sizes in bytes (with
// their newline) in queue order and returns [begin, end) ranges, each at
// most `max_requests` lines and `max_bytes` bytes; a single line larger
// than max_bytes gets a batch of its own (the provider will refuse it,
// and that task alone fails).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace bgagent {

struct batch_limits {
  size_t max_requests = 50000;
  size_t max_bytes = size_t{200} << 20;
};

std::vector<std::pair<size_t, size_t>>
split_batches(const std::vector<size_t>& line_bytes, const batch_limits& l);

} // namespace bgagent
