#include "policy/event_merge.hpp"

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

namespace bgagent {

event_merge::event_merge(size_t shards, uint64_t floor)
  : shards_(std::max<size_t>(shards, 1)) {
  for (auto& s : shards_)
    s.floor = floor;
}

bool event_merge::add(size_t shard, std::vector<committed_event> events,
                      uint64_t floor) {
  if (shard >= shards_.size())
    return false;
  auto& s = shards_[shard];
  // Checked whole before anything is taken.
  uint64_t prev = s.last;
  for (auto& e : events) {
    if (e.seq < s.floor || e.seq <= prev || e.seq >= floor)
      return false;
    prev = e.seq;
  }
  s.last = prev;
  s.floor = std::max(s.floor, floor);
  waiting_ += events.size();
  for (auto& e : events)
    s.events.push_back(std::move(e));
  return true;
}

uint64_t event_merge::watermark() const {
  uint64_t w = shards_.front().floor;
  for (auto& s : shards_)
    w = std::min(w, s.floor);
  return w;
}

std::vector<committed_event> event_merge::take_ready() {
  std::vector<committed_event> out;
  uint64_t w = watermark();
  // A k-way merge of the queues' ready fronts: (seq, shard), least first.
  using front = std::pair<uint64_t, size_t>;
  std::priority_queue<front, std::vector<front>, std::greater<front>> heads;
  for (size_t k = 0; k < shards_.size(); ++k)
    if (!shards_[k].events.empty() && shards_[k].events.front().seq < w)
      heads.emplace(shards_[k].events.front().seq, k);
  while (!heads.empty()) {
    size_t k = heads.top().second;
    heads.pop();
    auto& q = shards_[k].events;
    if (q.front().seq <= last_written_)
      ++breaches_;
    last_written_ = std::max(last_written_, q.front().seq);
    out.push_back(std::move(q.front()));
    q.pop_front();
    if (!q.empty() && q.front().seq < w)
      heads.emplace(q.front().seq, k);
  }
  waiting_ -= out.size();
  return out;
}

std::vector<size_t> event_merge::holding_back() const {
  std::vector<size_t> out;
  bool any = false;
  uint64_t first = 0;
  for (auto& s : shards_)
    if (!s.events.empty() && (!any || s.events.front().seq < first)) {
      first = s.events.front().seq;
      any = true;
    }
  if (!any)
    return out;
  for (size_t k = 0; k < shards_.size(); ++k)
    if (shards_[k].floor <= first)
      out.push_back(k);
  return out;
}

} // namespace bgagent
