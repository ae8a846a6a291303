// The supervisor's policies as plain units, without an actor system: the
// retry policy, the restart window and the one mapping from how a run
// stopped to its exit code and state.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>

#include "messages/call_outcome.hpp"
#include "policy/restart_window.hpp"
#include "policy/retry_policy.hpp"
#include "policy/run_end.hpp"

using namespace bgagent;

namespace {

call_outcome failure(error_kind k, int64_t retry_after_ms = -1) {
  auto out = make_failure(k, "HTTP 503: busy", 503);
  out.retry_after_ms = retry_after_ms;
  return out;
}

retry_policy policy() {
  return retry_policy{retry_settings{3, 1, 2, 60, 600}};
}

} // namespace

TEST_CASE("retry policy: 402 stops the run, permanent errors quarantine at "
          "once",
          "[unit][policy]") {
  std::mt19937_64 rng{1};
  auto stop = policy().decide(failure(error_kind::out_of_credits), 1, rng);
  CHECK(stop.what == retry_decision::action::stop_run);
  auto perm = policy().decide(failure(error_kind::permanent), 1, rng);
  CHECK(perm.what == retry_decision::action::quarantine);
  CHECK(perm.error == "HTTP 503: busy");
}

TEST_CASE("retry policy: retryable failures back off with equal jitter, then "
          "quarantine after max_retries",
          "[unit][policy]") {
  std::mt19937_64 rng{42};
  auto p = policy();
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    INFO("attempt " << attempt);
    auto d = p.decide(failure(error_kind::retryable), attempt, rng);
    REQUIRE(d.what == retry_decision::action::retry);
    CHECK_FALSE(d.from_retry_after);
    double full = 1.0 * (1 << (attempt - 1)); // 1, 2, 4 s
    CHECK(d.delay_seconds >= full / 2);
    CHECK(d.delay_seconds <= full);
  }
  auto last = p.decide(failure(error_kind::retryable), 4, rng);
  CHECK(last.what == retry_decision::action::quarantine);
  CHECK(last.error == "HTTP 503: busy (after 4 attempts)");

  // The cap bounds the backoff; the same seed gives the same delays.
  std::mt19937_64 a{7}, b{7};
  auto many = retry_policy{retry_settings{20, 1, 2, 60, 600}};
  for (uint32_t attempt = 1; attempt <= 12; ++attempt) {
    auto x = many.decide(failure(error_kind::retryable), attempt, a);
    auto y = many.decide(failure(error_kind::retryable), attempt, b);
    CHECK(x.delay_seconds == y.delay_seconds);
    CHECK(x.delay_seconds <= 60);
    if (attempt >= 8) // 2^7 > 60: capped
      CHECK(x.delay_seconds >= 30);
  }
}

TEST_CASE("retry policy: the provider's Retry-After is used, capped",
          "[unit][policy]") {
  std::mt19937_64 rng{1};
  auto d = policy().decide(failure(error_kind::retryable, 2500), 1, rng);
  CHECK(d.what == retry_decision::action::retry);
  CHECK(d.from_retry_after);
  CHECK(d.delay_seconds == Approx(2.5));
  auto huge = policy().decide(failure(error_kind::retryable, 1000000000), 2,
                              rng);
  CHECK(huge.delay_seconds == 600);
  // Retries used up: quarantine even with a Retry-After.
  auto spent = policy().decide(failure(error_kind::retryable, 10), 4, rng);
  CHECK(spent.what == retry_decision::action::quarantine);
}

TEST_CASE("restart window: more than max restarts within the window, and "
          "only within it",
          "[unit][policy]") {
  using namespace std::chrono;
  restart_window w{2, 10};
  auto t0 = steady_clock::time_point{} + hours(1);
  CHECK_FALSE(w.record(t0));
  CHECK_FALSE(w.record(t0 + seconds(1)));
  CHECK(w.record(t0 + seconds(2))); // the third within 10 s
  CHECK(w.in_window() == 3);
  CHECK(w.record(t0 + seconds(9)));  // still four within 10 s
  CHECK_FALSE(w.record(t0 + seconds(30))); // the old ones slid out
  CHECK(w.in_window() == 1);
}

TEST_CASE("run end: one mapping from the stop to the exit code and the run's "
          "state",
          "[unit][policy]") {
  struct row {
    run_stop stop;
    bool work_left;
    int code;
    const char* state;
    const char* text;
  };
  const row rows[] = {
    {run_stop{}, false, 0, "finished", ""},
    {run_stop{}, true, 4, "interrupted", ""},
    {run_stop{stop_reason::drain}, true, 4, "interrupted", "drain"},
    {run_stop{stop_reason::drain}, false, 0, "finished", "drain"},
    {run_stop{stop_reason::shutdown}, true, 4, "interrupted", "shutdown"},
    {run_stop{stop_reason::budget}, true, 3, "stopped_budget", "budget"},
    {run_stop{stop_reason::out_of_credits}, true, 3, "stopped_budget",
     "out_of_credits"},
    {run_stop{stop_reason::signal, 15}, true, 143, "interrupted",
     "signal:15"},
    {run_stop{stop_reason::signal, 2}, false, 130, "interrupted", "signal:2"},
    {run_stop{stop_reason::restart_intensity}, true, 1, "failed",
     "restart_intensity"},
    {run_stop{stop_reason::internal, 0, "checkpointer died"}, true, 1,
     "failed", "internal: checkpointer died"},
  };
  for (auto& r : rows) {
    INFO(r.text << " work_left " << r.work_left);
    auto code = exit_code_for(r.stop, r.work_left);
    CHECK(code == r.code);
    CHECK(std::string(run_state_for(code)) == r.state);
    CHECK(r.stop.text() == r.text);
  }
}
