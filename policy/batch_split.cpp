#include "policy/batch_split.hpp"

namespace bgagent {

std::vector<std::pair<size_t, size_t>>
split_batches(const std::vector<size_t>& line_bytes, const batch_limits& l) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < line_bytes.size(); ++i) {
    bool full = i > begin && (i - begin >= l.max_requests ||
                              bytes + line_bytes[i] > l.max_bytes);
    if (full) {
      out.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += line_bytes[i];
  }
  if (begin < line_bytes.size())
    out.emplace_back(begin, line_bytes.size());
  return out;
}

} // namespace bgagent
