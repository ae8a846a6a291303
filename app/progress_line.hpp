// The live progress line of `bgagent run`.
//
// Contract: on a terminal, show() redraws one line in place (done/total,
// rate, in flight, tokens, dollars, ETA) and finish() clears it; elsewhere
// show() logs a plain line at most every `log_every_seconds`.
#pragma once

#include <chrono>
#include <string>

namespace bgagent {

struct metrics_snapshot;

std::string format_progress(const metrics_snapshot& m);

class progress_line {
public:
  explicit progress_line(bool terminal, double log_every_seconds = 10);
  void show(const metrics_snapshot& m);
  void finish();
  bool terminal() const { return terminal_; }

private:
  bool terminal_;
  double log_every_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_log_;
};

} // namespace bgagent
