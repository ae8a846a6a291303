// The supervisor's policies as plain units, without an actor system: the
// retry policy, the restart window, the worker pool and the one mapping
// from how a run stopped to its exit code and state.
#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <random>

#include "messages/call_outcome.hpp"
#include "policy/budget_period.hpp"
#include "policy/circuit_breaker.hpp"
#include "policy/rate_window.hpp"
#include "policy/restart_window.hpp"
#include "policy/retry_policy.hpp"
#include "policy/run_end.hpp"
#include "policy/schedule.hpp"
#include "policy/worker_pool.hpp"

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

TEST_CASE("retry policy: attempts not counted (429s up to a cap, the "
          "provider's faults), and a refusal moves to the next model",
          "[unit][policy]") {
  std::mt19937_64 rng{1};
  auto p = retry_policy{retry_settings{1, 1, 2, 60, 600, 3}};
  auto limited = make_failure(error_kind::retryable, "HTTP 429: slow down",
                              429);
  // One retry allowed; attempt 4 with three not counted counts as 1.
  CHECK(p.decide(limited, 4, rng, 3).what == retry_decision::action::retry);
  // Attempt 5 with three not counted: 2 counted, the end.
  auto other = failure(error_kind::retryable);
  auto last = p.decide(other, 5, rng, 3);
  CHECK(last.what == retry_decision::action::quarantine);
  CHECK(last.error == "HTTP 503: busy (after 5 attempts)");
  // With no retries at all, a free failure still goes again; a counted one
  // does not.
  auto none = retry_policy{retry_settings{0, 1, 2, 60, 600, 3}};
  CHECK(none.decide(limited, 1, rng, 1).what ==
        retry_decision::action::retry);
  CHECK(none.decide(other, 2, rng, 1).what ==
        retry_decision::action::quarantine);
  // The cap: a run's first three 429s of a task are free, then they count.
  CHECK(p.rate_limit_is_free(3));
  CHECK_FALSE(p.rate_limit_is_free(4));
  // The provider's fault without Retry-After: again at once; with one, it
  // is honoured.
  auto down = failure(error_kind::retryable);
  down.provider_fault = true;
  auto now = p.decide(down, 2, rng, 1);
  CHECK(now.what == retry_decision::action::retry);
  CHECK(now.delay_seconds == 0);
  down.retry_after_ms = 2000;
  CHECK(p.decide(down, 2, rng, 1).delay_seconds == 2);
  // A model that refused the request: the next model at once, if any.
  auto refused = make_failure(error_kind::permanent,
                              "HTTP 400: maximum context length", 400);
  refused.model_refused = true;
  auto next = p.decide(refused, 1, rng, 0, true);
  CHECK(next.what == retry_decision::action::retry);
  CHECK(next.next_model);
  CHECK(next.delay_seconds == 0);
  CHECK(p.decide(refused, 1, rng, 0, false).what ==
        retry_decision::action::quarantine);
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

TEST_CASE("rate window: calls per window, as a sliding window counts them",
          "[unit][policy]") {
  using namespace std::chrono;
  rate_window w{3, 0, 10, 0.5}; // 3 calls per 10 s (+0.5 s margin)
  auto t0 = steady_clock::time_point{} + hours(1);
  for (int i = 0; i < 3; ++i) {
    CHECK(w.wait(t0 + seconds(i), 1).count() == 0);
    w.admit(t0 + seconds(i), 1);
  }
  // The fourth waits for the first to leave the window: t0 + 10.5 s.
  CHECK(w.wait(t0 + seconds(3), 1) == milliseconds(7500));
  CHECK(w.wait(t0 + milliseconds(10500), 1).count() == 0);
  w.admit(t0 + milliseconds(10500), 1);
  // Then the second call's turn: t0 + 11.5 s.
  CHECK(w.wait(t0 + seconds(11), 1) == milliseconds(500));
  CHECK(w.calls_in_window() == 3);
}

TEST_CASE("rate window: tokens per window at the worst case, refunded to "
          "the actual",
          "[unit][policy]") {
  using namespace std::chrono;
  rate_window w{0, 1000, 60, 0}; // 1,000 tokens per minute, no call limit
  auto t0 = steady_clock::time_point{} + hours(1);
  auto a = w.admit(t0, 600);
  CHECK(w.wait(t0, 300).count() == 0);
  auto b = w.admit(t0 + seconds(10), 300);
  // 900 held: 200 more must wait for the first call (600) to leave.
  CHECK(w.wait(t0 + seconds(20), 200) == seconds(40));
  // The first call used 100 of its 600: now 400 are held, 200 fit.
  w.settle(a, 100);
  CHECK(w.tokens_in_window() == 400);
  CHECK(w.wait(t0 + seconds(20), 200).count() == 0);
  // 700 fit once the first leaves (t0 + 60 s); 800 once both have left
  // (the second at t0 + 70 s).
  CHECK(w.wait(t0 + seconds(20), 700) == seconds(40));
  CHECK(w.wait(t0 + seconds(20), 800) == seconds(50));
  // A call larger than the whole limit goes once the window is empty,
  // counted as the limit.
  CHECK(w.wait(t0 + seconds(20), 5000) == seconds(50));
  CHECK(w.wait(t0 + seconds(70), 5000).count() == 0);
  auto c = w.admit(t0 + seconds(70), 5000);
  CHECK(w.tokens_in_window() == 1000);
  // A settle after its call left the window changes nothing.
  w.settle(b, 1);
  CHECK(w.tokens_in_window() == 1000);
  w.settle(c, UINT64_MAX); // saturates at the limit, never wraps
  CHECK(w.tokens_in_window() == 1000);
}

TEST_CASE("rate window: a hold stops every call until it ends, and only "
          "extends",
          "[unit][policy]") {
  using namespace std::chrono;
  rate_window w{0, 0};
  auto t0 = steady_clock::time_point{} + hours(1);
  CHECK(w.wait(t0, 1).count() == 0);
  w.hold_until(t0 + seconds(5));
  w.hold_until(t0 + seconds(2)); // shorter: the longer stays
  CHECK(w.wait(t0 + seconds(1), 1) == seconds(4));
  CHECK(w.wait(t0 + seconds(5), 1).count() == 0);
}

TEST_CASE("circuit breaker: opens after down answers in a row, probes on "
          "time, closes on any answer",
          "[unit][policy]") {
  using namespace std::chrono;
  using gate = circuit_breaker::gate;
  using change = circuit_breaker::change;
  circuit_breaker c{3, seconds(30)};
  auto t0 = steady_clock::time_point{} + hours(1);
  // Two down answers, then one that is not: the count starts again.
  CHECK(c.answered(true, false, t0) == change::none);
  CHECK(c.answered(true, false, t0) == change::none);
  CHECK(c.answered(false, false, t0) == change::none);
  CHECK(c.answered(true, false, t0) == change::none);
  CHECK(c.answered(true, false, t0) == change::none);
  CHECK(c.ask(t0) == gate::go);
  CHECK(c.answered(true, false, t0 + seconds(1)) == change::opened);
  CHECK(c.is_open());
  CHECK(c.opened_at() == t0 + seconds(1));
  // Open: nothing goes until the first probe is due, 30 s later.
  CHECK(c.ask(t0 + seconds(2)) == gate::wait);
  CHECK(c.wait_until() == t0 + seconds(31));
  CHECK(c.wait(t0 + seconds(2)) == seconds(29));
  // Calls sent before it opened come back down: it stays open.
  CHECK(c.answered(true, false, t0 + seconds(3)) == change::none);
  CHECK(c.ask(t0 + seconds(31)) == gate::probe);
  CHECK(c.ask(t0 + seconds(31)) == gate::wait); // one probe at a time
  CHECK(c.wait(t0 + seconds(31)) == seconds(30));
  // The probe fails: the next one 30 s after its answer.
  CHECK(c.answered(true, true, t0 + seconds(40)) == change::none);
  CHECK(c.ask(t0 + seconds(69)) == gate::wait);
  CHECK(c.ask(t0 + seconds(70)) == gate::probe);
  // A probe that was never sent lets the next call probe at once.
  c.probe_lost(t0 + seconds(71));
  CHECK(c.ask(t0 + seconds(71)) == gate::probe);
  // It answers: closed, everything goes.
  CHECK(c.answered(false, true, t0 + seconds(72)) == change::closed);
  CHECK_FALSE(c.is_open());
  CHECK(c.ask(t0 + seconds(72)) == gate::go);
  // Closed again, three more down answers open it again.
  for (int i = 0; i < 2; ++i)
    CHECK(c.answered(true, false, t0 + seconds(80)) == change::none);
  CHECK(c.answered(true, false, t0 + seconds(80)) == change::opened);
  // A call let go before it opened answers (a 4xx, a 200): closed.
  CHECK(c.answered(false, false, t0 + seconds(81)) == change::closed);
  // One request failing again and again counts once: it never opens it.
  for (int i = 0; i < 10; ++i)
    CHECK(c.answered(true, false, t0 + seconds(90), i > 0) == change::none);
  CHECK(c.down_in_a_row() == 1);
  CHECK(c.answered(true, false, t0 + seconds(91)) == change::none);
  CHECK(c.down_in_a_row() == 2);
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
    {run_stop{stop_reason::outage}, true, 7, "interrupted", "outage"},
    {run_stop{stop_reason::outage, 0, "openai/gpt-4o"}, true, 7,
     "interrupted", "outage: openai/gpt-4o"},
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

namespace {

// Keys, handles and gateways as plain values: the pool needs no actors.
using test_pool = worker_pool<std::string, std::string, std::string>;

test_pool::slot worker(const std::string& name, const std::string& node,
                       bool remote = false) {
  test_pool::slot s;
  s.handle = "handle-" + name;
  s.gateway = "gw-" + node;
  s.name = name;
  s.node = node;
  s.remote = remote;
  return s;
}

task task_with(const std::string& id, uint32_t attempts = 0) {
  task t;
  t.id = id;
  t.attempts = attempts;
  return t;
}

} // namespace

TEST_CASE("worker pool: assign takes the last idled worker, counts it busy "
          "and a stale release frees nothing",
          "[policy][worker_pool]") {
  test_pool pool;
  auto now = std::chrono::steady_clock::time_point{};
  REQUIRE(pool.add("w1", worker("w1", "head")));
  REQUIRE(pool.add("w2", worker("w2", "head")));
  CHECK_FALSE(pool.add("w1", worker("w1", "head"))); // known already
  CHECK(pool.size() == 2);
  CHECK(pool.idle() == 2);

  auto* a = pool.assign(task_with("t1", 2), now);
  REQUIRE(a);
  CHECK(a->first == "w2"); // LIFO
  CHECK(a->second.busy);
  CHECK(a->second.attempt == 3);
  CHECK(a->second.current.id == "t1");
  auto* b = pool.assign(task_with("t2"), now);
  REQUIRE(b);
  CHECK(b->first == "w1");
  CHECK(pool.assign(task_with("t3"), now) == nullptr); // none idle
  CHECK(pool.busy() == 2);
  CHECK_FALSE(pool.has_idle());

  CHECK(pool.busy_with("w2", "t1", 3) != nullptr);
  CHECK(pool.busy_with("w2", "t1", 2) == nullptr); // an older attempt
  CHECK(pool.busy_with("w1", "t1", 3) == nullptr); // another worker's task
  REQUIRE(pool.release("w2"));
  CHECK_FALSE(pool.release("w2")); // stale: idle already
  CHECK_FALSE(pool.release("nobody"));
  CHECK(pool.busy() == 1);
  CHECK(pool.idle() == 1);
  CHECK(pool.busy_with("w2", "t1", 3) == nullptr); // no longer holds it
}

TEST_CASE("worker pool: a freed attempt waits in storing until settled by "
          "the same attempt, or dropped with its gateway",
          "[policy][worker_pool]") {
  test_pool pool;
  auto now = std::chrono::steady_clock::time_point{};
  pool.add("w1", worker("w1", "head"));
  pool.add("r1", worker("r1", "node-a", true));
  auto* r = pool.assign(task_with("t1"), now); // r1
  auto* w = pool.assign(task_with("t2"), now); // w1
  REQUIRE(r);
  REQUIRE(w);
  REQUIRE(r->first == "r1");

  CHECK_FALSE(pool.freed("r1", "t1", 2, "gw-node-a")); // not its attempt
  REQUIRE(pool.freed("r1", "t1", 1, "gw-node-a"));
  REQUIRE(pool.freed("w1", "t2", 1, "gw-head"));
  CHECK(pool.busy() == 0);
  CHECK(pool.idle() == 2);
  CHECK(pool.storing() == 2);
  CHECK_FALSE(pool.freed("r1", "t1", 1, "gw-node-a")); // idle now

  // The worker takes the task's next attempt while the first is stored.
  auto* again = pool.assign(task_with("t2", 1), now);
  REQUIRE(again);
  CHECK_FALSE(pool.settle("t2", 2, "gw-head")); // the stored one is 1
  CHECK_FALSE(pool.settle("t2", 1, "gw-node-a")); // not its gateway
  CHECK(pool.settle("t2", 1, "gw-head"));
  CHECK_FALSE(pool.settle("t2", 1, "gw-head")); // once
  CHECK(pool.storing() == 1);

  // node-a's gateway ends: what it was storing is not waited for.
  CHECK(pool.drop_storing_of("gw-head").empty());
  auto dropped = pool.drop_storing_of("gw-node-a");
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0] == "t1");
  CHECK(pool.storing() == 0);
}

TEST_CASE("worker pool: removing a worker keeps the counts exact, idle or "
          "busy, and nodes and remote workers are counted",
          "[policy][worker_pool]") {
  test_pool pool;
  auto now = std::chrono::steady_clock::time_point{};
  pool.add("w1", worker("w1", "head"));
  pool.add("r1", worker("r1", "node-a", true));
  pool.add("r2", worker("r2", "node-a", true));
  CHECK(pool.remote_count() == 2);
  CHECK(pool.has_node("node-a"));

  auto* busy = pool.assign(task_with("t1"), now); // r2
  REQUIRE(busy);
  REQUIRE(busy->first == "r2");
  auto slot = pool.remove("r2");
  REQUIRE(slot);
  CHECK(slot->busy);
  CHECK(slot->current.id == "t1");
  CHECK(pool.busy() == 0);
  CHECK_FALSE(pool.remove("r2")); // once

  auto idle = pool.remove("r1");
  REQUIRE(idle);
  CHECK_FALSE(idle->busy);
  CHECK(pool.idle() == 1); // only w1 is left to assign
  CHECK_FALSE(pool.has_node("node-a"));
  CHECK(pool.remote_count() == 0);
  auto* next = pool.assign(task_with("t2"), now);
  REQUIRE(next);
  CHECK(next->first == "w1");
  CHECK(pool.keys_where([](auto& s) { return s.busy; }) ==
        std::vector<std::string>{"w1"});
}

TEST_CASE("worker pool: a removed idle worker is never assigned, also when "
          "its key comes back, and 10000 removals keep the counts",
          "[policy][worker_pool]") {
  test_pool pool;
  auto now = std::chrono::steady_clock::time_point{};
  pool.add("w1", worker("w1", "head"));
  pool.add("w2", worker("w2", "head"));
  REQUIRE(pool.remove("w2")); // idle, on top of the stack
  CHECK(pool.idle() == 1);
  auto* a = pool.assign(task_with("t1"), now);
  REQUIRE(a);
  CHECK(a->first == "w1");
  CHECK_FALSE(pool.has_idle());
  CHECK(pool.assign(task_with("t2"), now) == nullptr);

  // The same key added again while its old entry is still in the stack:
  // assigned once, and its old entry is not a second idle worker.
  pool.add("w3", worker("w3", "head"));
  REQUIRE(pool.remove("w3"));
  pool.add("w3", worker("w3", "head"));
  CHECK(pool.idle() == 1);
  auto* b = pool.assign(task_with("t3"), now);
  REQUIRE(b);
  CHECK(b->first == "w3");
  CHECK(pool.idle() == 0);
  CHECK(pool.assign(task_with("t4"), now) == nullptr);
  REQUIRE(pool.release("w3"));
  CHECK(pool.idle() == 1);

  for (int i = 0; i < 10000; ++i)
    pool.add("x" + std::to_string(i), worker("x", "head"));
  for (int i = 0; i < 10000; i += 2)
    REQUIRE(pool.remove("x" + std::to_string(i)));
  CHECK(pool.idle() == 5001);
  int assigned = 0;
  while (auto* s = pool.assign(task_with("t"), now)) {
    CHECK(s->first != "w1");
    ++assigned;
  }
  CHECK(assigned == 5001);
  CHECK(pool.idle() == 0);
  CHECK(pool.busy() == 5002); // with w1
}

TEST_CASE("worker pool: workers that come and go below idle ones leave no "
          "entries behind, and the last idled is still the next assigned",
          "[policy][worker_pool]") {
  test_pool pool;
  auto now = std::chrono::steady_clock::time_point{};
  pool.add("keep", worker("keep", "head")); // idle at the bottom for ever
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 50; ++i)
      pool.add("n" + std::to_string(i), worker("n", "node"));
    for (int i = 0; i < 50; ++i)
      REQUIRE(pool.remove("n" + std::to_string(i)));
    CHECK(pool.idle() == 1);
    CHECK(pool.idle_entries() <= 2 * pool.idle() + 64);
  }
  pool.add("top", worker("top", "head"));
  auto* a = pool.assign(task_with("t1"), now);
  REQUIRE(a);
  CHECK(a->first == "top");
  auto* b = pool.assign(task_with("t2"), now);
  REQUIRE(b);
  CHECK(b->first == "keep");
  CHECK(pool.assign(task_with("t3"), now) == nullptr);
  CHECK(pool.idle() == 0);
}

TEST_CASE("worker pool: a worker's last sign of life is its dispatch or its "
          "later heartbeat",
          "[policy][worker_pool]") {
  using clock = std::chrono::steady_clock;
  test_pool pool;
  auto s = worker("w1", "head");
  s.alive = std::make_shared<std::atomic<int64_t>>(0);
  auto alive = s.alive;
  pool.add("w1", s);
  auto t0 = clock::time_point{} + std::chrono::seconds(100);
  auto* w = pool.assign(task_with("t1"), t0);
  REQUIRE(w);
  // No beat since the dispatch: the dispatch counts.
  CHECK(test_pool::last_sign_of_life(w->second) == t0);
  auto limit = std::chrono::seconds(10);
  CHECK(test_pool::silent_for(w->second, t0 + std::chrono::seconds(11),
                              limit));
  auto beat = t0 + std::chrono::seconds(30);
  alive->store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                 beat.time_since_epoch())
                 .count());
  CHECK(test_pool::last_sign_of_life(w->second) == beat);
  CHECK_FALSE(test_pool::silent_for(w->second, beat + std::chrono::seconds(9),
                                    limit));
  CHECK(test_pool::silent_for(w->second, beat + std::chrono::seconds(11),
                              limit));
  // Its call is over: what it waits for (the store) is not its own.
  alive->store(-1);
  CHECK_FALSE(test_pool::last_sign_of_life(w->second));
  CHECK_FALSE(test_pool::silent_for(w->second, beat + std::chrono::hours(1),
                                    limit));
  // The next dispatch clears the mark.
  REQUIRE(pool.release("w1"));
  auto* again = pool.assign(task_with("t3"), beat);
  REQUIRE(again);
  CHECK(alive->load() == 0);
  CHECK(test_pool::last_sign_of_life(again->second) == beat);
  // A remote worker has no such clock: its dispatch only.
  auto r = worker("r1", "node-a", true);
  pool.add("r1", r);
  auto* rw = pool.assign(task_with("t2"), t0);
  REQUIRE(rw);
  CHECK(test_pool::last_sign_of_life(rw->second) == t0);
}

TEST_CASE("budget period: calendar periods in UTC, known boundaries",
          "[unit][policy]") {
  // 2026-11-27T12:34:56Z
  const int64_t t = 1795782896;
  CHECK(rfc3339_utc(t) == "2026-11-27T12:34:56.000Z");
  CHECK(rfc3339_utc(period_start(budget_period::hour, t)) ==
        "2026-11-27T12:00:00.000Z");
  CHECK(rfc3339_utc(next_period_start(budget_period::hour, t)) ==
        "2026-11-27T13:00:00.000Z");
  CHECK(rfc3339_utc(period_start(budget_period::day, t)) ==
        "2026-11-27T00:00:00.000Z");
  CHECK(rfc3339_utc(next_period_start(budget_period::day, t)) ==
        "2026-11-28T00:00:00.000Z");
  CHECK(rfc3339_utc(period_start(budget_period::month, t)) ==
        "2026-11-01T00:00:00.000Z");
  CHECK(rfc3339_utc(next_period_start(budget_period::month, t)) ==
        "2026-12-01T00:00:00.000Z");
  // December rolls into January of the next year; February of a leap year.
  const int64_t dec = 1797945000; // 2026-12-22T13:10:00Z
  CHECK(rfc3339_utc(next_period_start(budget_period::month, dec)) ==
        "2027-01-01T00:00:00.000Z");
  const int64_t feb = 1835483400; // 2028-03-01T00:30:00Z
  CHECK(rfc3339_utc(period_start(budget_period::month, feb)) ==
        "2028-03-01T00:00:00.000Z");
  CHECK(next_period_start(budget_period::month, feb - 3600) -
          period_start(budget_period::month, feb - 3600) ==
        29 * 86400);
  // The first second of a period is in it; the last of the one before is not.
  auto day = period_start(budget_period::day, t);
  CHECK(period_start(budget_period::day, day) == day);
  CHECK(period_start(budget_period::day, day - 1) == day - 86400);
  CHECK(period_start(budget_period::run, t) == 0);
  CHECK(next_period_start(budget_period::run, t) ==
        std::numeric_limits<int64_t>::max());
  CHECK(parse_budget_period("day") == budget_period::day);
  CHECK_FALSE(parse_budget_period("week"));
  CHECK(std::string(to_string(budget_period::month)) == "month");
}

TEST_CASE("schedule: cron next and latest firings against a known table, "
          "@every on multiples since the epoch, bad specs named",
          "[unit][policy]") {
  const int64_t t0 = 1795782896; // Friday 2026-11-27T12:34:56Z
  struct row {
    const char* when;
    const char* next;
    const char* latest;
  };
  // Made by brute force, minute by minute, with Vixie cron's rules.
  const row table[] = {
    {"*/15 * * * *", "2026-11-27T12:45:00", "2026-11-27T12:30:00"},
    {"0 9 * * 1-5", "2026-11-30T09:00:00", "2026-11-27T09:00:00"},
    {"30 2 1 * *", "2026-12-01T02:30:00", "2026-11-01T02:30:00"},
    {"0 0 29 2 *", "2028-02-29T00:00:00", "2024-02-29T00:00:00"},
    // Both day fields restricted: either one fires.
    {"0 12 13 * fri", "2026-12-04T12:00:00", "2026-11-27T12:00:00"},
    {"5 4 * * sun", "2026-11-29T04:05:00", "2026-11-22T04:05:00"},
    {"5 4 * * 7", "2026-11-29T04:05:00", "2026-11-22T04:05:00"},
    {"0 0 1 jan,jul *", "2027-01-01T00:00:00", "2026-07-01T00:00:00"},
    {"0-10/5 8-9 * * *", "2026-11-28T08:00:00", "2026-11-27T09:10:00"},
    // A day field starting with '*' is not a restriction (Vixie cron):
    // odd days that are weekdays, not every weekday and every odd day.
    {"0 9 */2 * 1-5", "2026-12-01T09:00:00", "2026-11-27T09:00:00"},
  };
  for (auto& r : table) {
    INFO(r.when);
    auto s = schedule::parse(std::string(r.when) + " tasks/nightly.jsonl");
    CHECK(s.when() == r.when);
    CHECK(s.file() == "tasks/nightly.jsonl");
    CHECK(rfc3339_utc(s.next_after(t0)) == std::string(r.next) + ".000Z");
    auto latest = s.latest_at_or_before(t0);
    REQUIRE(latest);
    CHECK(rfc3339_utc(*latest) == std::string(r.latest) + ".000Z");
    // A firing is not after itself; the one before a firing is earlier.
    CHECK(s.next_after(s.next_after(t0)) > s.next_after(t0));
    CHECK(*s.latest_at_or_before(*latest) == *latest);
  }
  auto every = schedule::parse("@every 1h30m my tasks.jsonl");
  CHECK(every.file() == "my tasks.jsonl");
  CHECK(every.next_after(t0) % 5400 == 0);
  CHECK(every.next_after(t0) > t0);
  CHECK(every.next_after(t0) - t0 <= 5400);
  CHECK(*every.latest_at_or_before(t0) == every.next_after(t0) - 5400);
  CHECK(schedule::parse("@every 30s f").next_after(1800000000) == 1800000030);

  auto fails = [](const std::string& spec, const std::string& why) {
    INFO(spec);
    try {
      schedule::parse(spec);
      FAIL("accepted " + spec);
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(why) != std::string::npos);
    }
  };
  fails("60 * * * * f", "minute field: 60 is outside 0-59");
  fails("* 24 * * * f", "hour field");
  fails("* * 0 * * f", "day-of-month field");
  fails("* * * 13 * f", "month field");
  fails("* * * * 8 f", "day-of-week field");
  fails("* * * * mon-x f", "day-of-week field: \"x\" is not a number");
  fails("5-1 * * * * f", "runs backwards");
  fails("* * * * *", "five cron fields");
  fails("@every 10 f", "not like 30s");
  fails("@every 0s f", "from 1 s");
  fails("@every 30s", "a duration and a file");
  fails("0 0 30 2 * f", "never fires");
  CHECK(schedule::parse("0 0 29 2 * f").next_after(t0) > t0); // leap days
}
