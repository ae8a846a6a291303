#include "app/suggest.hpp"

#include <algorithm>

namespace bgagent {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

} // namespace

std::string closest_name(const std::string& name,
                         const std::vector<std::string>& candidates) {
  size_t max_distance = std::max<size_t>(2, name.size() / 4);
  std::string best;
  size_t best_d = max_distance + 1;
  for (auto& c : candidates)
    if (auto d = edit_distance(name, c); d < best_d) {
      best_d = d;
      best = c;
    }
  return best;
}

} // namespace bgagent
