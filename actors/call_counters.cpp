#include "actors/call_counters.hpp"

#include <algorithm>
#include <cmath>

namespace bgagent {

const std::vector<double>& latency_bucket_bounds() {
  static const std::vector<double> b{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,    2.5,   5,    10,  30,
                                     60,    120,  300};
  return b;
}

void call_counters::call_started() {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
}

void call_counters::call_ended(double latency_seconds) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  auto& bounds = latency_bucket_bounds();
  // Cumulative buckets: a call counts in every bucket at or above it.
  for (size_t i = 0; i < bucket_count && i < bounds.size(); ++i)
    if (latency_seconds <= bounds[i])
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
  auto us = std::max(0.0, std::round(latency_seconds * 1e6));
  latency_sum_us_.fetch_add(static_cast<uint64_t>(us),
                            std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
}

void call_counters::completed() {
  completed_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t call_counters::completed_count() const {
  return completed_.load(std::memory_order_relaxed);
}

void call_counters::set_rate_waiting(int64_t n) {
  rate_waiting_.store(n, std::memory_order_relaxed);
}

void call_counters::set_rate_use(uint64_t limit_rpm, uint64_t used_rpm) {
  rate_limit_rpm_.store(limit_rpm, std::memory_order_relaxed);
  rate_used_rpm_.store(used_rpm, std::memory_order_relaxed);
}

void call_counters::set_circuits(
  int64_t open, std::chrono::steady_clock::time_point oldest) {
  oldest_open_ns_.store(
    std::chrono::duration_cast<std::chrono::nanoseconds>(
      oldest.time_since_epoch())
      .count(),
    std::memory_order_relaxed);
  circuits_open_.store(open, std::memory_order_relaxed);
}

void call_counters::set_batches(uint64_t open, uint64_t tasks,
                                std::string progress) {
  batches_open_.store(open, std::memory_order_relaxed);
  batch_tasks_.store(tasks, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(progress_mtx_);
  batch_progress_ = std::move(progress);
}

void call_counters::cached() {
  cached_.fetch_add(1, std::memory_order_relaxed);
}

void call_counters::fill(metrics_snapshot& m) const {
  m.batches_open = batches_open_.load(std::memory_order_relaxed);
  m.batch_tasks = batch_tasks_.load(std::memory_order_relaxed);
  m.cached = cached_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(progress_mtx_);
    m.batch_progress = batch_progress_;
  }
  // A call's end may be counted before its start is seen: never below 0.
  m.in_flight = static_cast<uint64_t>(
    std::max<int64_t>(0, in_flight_.load(std::memory_order_relaxed)));
  m.completed = completed_count();
  m.latency_buckets.assign(bucket_count, 0);
  for (size_t i = 0; i < bucket_count; ++i)
    m.latency_buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  m.latency_count = latency_count_.load(std::memory_order_relaxed);
  m.rate_waiting = static_cast<uint64_t>(
    std::max<int64_t>(0, rate_waiting_.load(std::memory_order_relaxed)));
  m.rate_limit_rpm = rate_limit_rpm_.load(std::memory_order_relaxed);
  m.rate_used_rpm = rate_used_rpm_.load(std::memory_order_relaxed);
  auto open = circuits_open_.load(std::memory_order_relaxed);
  m.circuits_open = static_cast<uint64_t>(std::max<int64_t>(0, open));
  m.outage_seconds = 0;
  if (open > 0) {
    auto since = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(
        oldest_open_ns_.load(std::memory_order_relaxed)));
    m.outage_seconds = std::max(
      0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         since)
             .count());
  }
  m.latency_sum_seconds =
    static_cast<double>(latency_sum_us_.load(std::memory_order_relaxed)) /
    1e6;
}

} // namespace bgagent
