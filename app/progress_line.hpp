// The live progress line of `bgagent run`.
//
// Contract: format_progress() renders done/total (counting what earlier runs
// finished), quarantined, rate, in flight, tokens, dollars and ETA in at
// most `width` columns, leaving out the least useful parts first (in
// flight, then tokens, then the rate...) rather than wrapping. On a terminal,
// show() redraws the line under the log (see live_terminal.hpp) and finish()
// clears it; elsewhere show() logs a plain line at most every
// `log_every_seconds`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace bgagent {

struct metrics_snapshot;

// What the store held when the run started (or, with --follow, lately): the
// line counts this run's completions on top of them.
struct progress_baseline {
  uint64_t total = 0;       // tasks in the store, cancelled ones aside
  uint64_t completed = 0;   // completed before this run
  uint64_t quarantined = 0; // quarantined before this run
};

std::string format_progress(const metrics_snapshot& m,
                            const progress_baseline& base,
                            size_t width = SIZE_MAX);

class progress_line {
public:
  explicit progress_line(bool terminal, double log_every_seconds = 10);
  void set_baseline(const progress_baseline& b) { base_ = b; }
  void show(const metrics_snapshot& m);
  void finish();
  bool terminal() const { return terminal_; }

private:
  bool terminal_;
  double log_every_;
  bool drawn_ = false;
  progress_baseline base_;
  std::chrono::steady_clock::time_point last_log_;
};

} // namespace bgagent
