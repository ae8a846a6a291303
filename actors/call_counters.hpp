// The counters every attempt bumps without a message: calls in flight,
// their latencies (a histogram) and completed attempts.
//
// Contract: one instance per run, shared by the head's node gateways and
// supervisor (writers) and its monitor (reader: metrics_atom, failure
// escalation); never sent to a node. Relaxed atomics: figures for people
// and Prometheus, not synchronisation. Three messages per attempt to the
// monitor cost more than the figures are worth.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
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
  // Writes in_flight, completed and the latency figures into `m`.
  void fill(metrics_snapshot& m) const;

private:
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_us_{0};
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
};

} // namespace bgagent
