// The counters every attempt bumps without a message: calls in flight,
// their latencies (a histogram) and completed attempts; and the
// rate_keeper's figures: calls waiting for their turn, circuits open.
//
// Contract: one instance per run, shared by the head's node gateways,
// supervisor and rate_keeper (writers) and its monitor (reader:
// metrics_atom, failure escalation); never sent to a node. Relaxed atomics: figures for people
// and Prometheus, not synchronisation. Three messages per attempt to the
// monitor cost more than the figures are worth.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "messages/run.hpp"

namespace bgagent {

// Upper bounds (seconds) of the provider latency histogram buckets.
const std::vector<double>& latency_bucket_bounds();

class call_counters {
public:
  static constexpr size_t bucket_count = 15; // latency_bucket_bounds()

  void call_started();
  // A call ended after `latency_seconds` (its answer is being handled).
  void call_ended(double latency_seconds);
  void completed();
  uint64_t completed_count() const;
  // Calls waiting at the rate_keeper (rate limits, holds, open circuits).
  void set_rate_waiting(int64_t n);
  // The last called provider model's limit and use, requests per minute
  // (0, 0: no limit known).
  void set_rate_use(uint64_t limit_rpm, uint64_t used_rpm);
  // Circuits open, and when the oldest opened (steady_clock).
  void set_circuits(int64_t open,
                    std::chrono::steady_clock::time_point oldest);
  // Provider batches not ended and the tasks in them, with one line of
  // their progress for the live line (the batch_runner's).
  void set_batches(uint64_t open, uint64_t tasks, std::string progress);
  // A task completed from the response cache.
  void cached();
  // Writes in_flight, completed and the latency figures into `m`.
  void fill(metrics_snapshot& m) const;

private:
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_us_{0};
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
  std::atomic<int64_t> rate_waiting_{0};
  std::atomic<int64_t> circuits_open_{0};
  std::atomic<uint64_t> rate_limit_rpm_{0};
  std::atomic<uint64_t> rate_used_rpm_{0};
  std::atomic<uint64_t> batches_open_{0};
  std::atomic<uint64_t> batch_tasks_{0};
  std::atomic<uint64_t> cached_{0};
  mutable std::mutex progress_mtx_;
  std::string batch_progress_;
  // steady_clock nanoseconds when the oldest open circuit opened
  std::atomic<int64_t> oldest_open_ns_{0};
};

} // namespace bgagent
