// How a run ends: why it stopped, and the one mapping from that to the exit
// code (DESIGN.md section 8) and to the state recorded for the run.
//
// Contract: exit_code_for() is the only place that turns a stop into an
// exit code: budget and out_of_credits 3; outage 7; a signal N drains and exits
// 128 + N; restart_intensity and internal 1; anything else 4 while work is
// left (resumable) and 0 when none is. text() is the stop as the run
// summary and the `run_finished` audit line show it ("budget",
// "signal:15", "internal: <why>", "outage: <provider/model>"; "" when the run simply ran out of work).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace bgagent {

// The exit codes of DESIGN.md section 8 (and of worker and admin).
namespace exit_code {
constexpr int ok = 0;
constexpr int internal = 1;
constexpr int usage = 2;
constexpr int budget = 3;
constexpr int stopped = 4; // drained or shut down with work left (resumable)
constexpr int unreachable = 5; // the head cannot be reached, or was lost
constexpr int refused = 6;     // the head refused the hello (wrong secret)
// the provider was down past BG_AGENT_OUTAGE_MAX (resumable)
constexpr int outage = 7;
} // namespace exit_code

enum class stop_reason : uint8_t {
  none,              // ran out of work
  drain,             // admin drain: calls in flight finish, nothing new
  shutdown,          // admin shutdown: calls in flight abandoned
  signal,            // SIGINT / SIGTERM: drained
  budget,            // the budget_keeper denied a reservation
  out_of_credits,    // the provider refused for lack of credits (402)
  restart_intensity, // too many worker restarts in the window
  outage,            // a provider's circuit open past BG_AGENT_OUTAGE_MAX
  internal,          // an actor of the head failed
};

const char* to_string(stop_reason r);

struct run_stop {
  run_stop() = default;
  explicit run_stop(stop_reason r, int sig = 0, std::string why = {})
    : reason(r), signal(sig), detail(std::move(why)) {}

  stop_reason reason = stop_reason::none;
  int signal = 0;     // for stop_reason::signal
  std::string detail; // internal: what failed; outage: which model

  std::string text() const;
};

int exit_code_for(const run_stop& stop, bool work_left);

// The run's state in the store for an exit code: finished, stopped_budget,
// failed or interrupted.
const char* run_state_for(int exit_code);

} // namespace bgagent
