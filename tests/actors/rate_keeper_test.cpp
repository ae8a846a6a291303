// The rate_keeper through its messages: a call that does not fit waits
// (answered later, never refused), a 429 without headers halves the calls
// in flight and an answer lets the next one go, and a stopping run lets
// nothing more go. No clock is waited on: every step is a message.
#include <catch2/catch.hpp>

#include "actors/rate_keeper.hpp"
#include "tests/actors/actor_test_support.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string key = "openai/gpt-4o-mini";

// A pace sent now (its answer comes as a message), and read later. Whether
// it was answered at once is known without waiting: a second request from
// the same actor is handled after it (mailboxes are FIFO per sender), so
// when that one is answered, any answer to the first is already here.
struct pending_pace {
  pending_pace(caf::actor_system& sys, const rate_keeper_actor& keeper)
    : self(sys), keeper(keeper) {
    self->send(keeper, pace_atom::value, key, uint64_t{100}, false);
  }
  std::optional<uint64_t> answered_now() {
    // A key never seen: its first call is answered at once.
    static int n = 0;
    auto other = ask_for<uint64_t>(self, keeper, pace_atom::value,
                                   "other/model-" + std::to_string(++n),
                                   uint64_t{1}, false);
    REQUIRE(other);
    return take(std::chrono::milliseconds(0));
  }
  std::optional<uint64_t> take(std::chrono::milliseconds wait) {
    std::optional<uint64_t> slot;
    self->receive([&](uint64_t s) { slot = s; },
                  caf::after(wait) >> [] {});
    return slot;
  }
  caf::scoped_actor self;
  rate_keeper_actor keeper;
};

} // namespace

TEST_CASE("rate keeper: a 429 without headers halves the calls in flight, "
          "and an answer lets the next call go",
          "[rates][actors]") {
  actor_env env;
  rate_settings s;
  s.slow_start = false;
  auto keeper = spawn_rate_keeper(env.sys, s);
  auto pace = [&] {
    return ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                             uint64_t{100}, false);
  };
  auto a = pace(), b = pace();
  REQUIRE(a);
  REQUIRE(b);
  // The first answered 429 without Retry-After: two in flight -> cap 1.
  env.self->send(keeper, refund_atom::value, key, *a, uint64_t{0},
                 int64_t{-1}, int64_t{-1}, int64_t{-1}, true);
  // One is still in flight: the next waits.
  pending_pace third(env.sys, keeper);
  CHECK_FALSE(third.answered_now());
  // The second's answer (no 429) ends it: the third goes.
  env.self->send(keeper, refund_atom::value, key, *b, uint64_t{50},
                 int64_t{-1}, int64_t{-1}, int64_t{-1}, false);
  auto slot = third.take(std::chrono::seconds(10));
  REQUIRE(slot);
  CHECK(*slot > *b);
  exit_all(env.self, keeper);
}

TEST_CASE("rate keeper: when the run stops, waiting calls and later ones "
          "get slot 0 and do not go",
          "[rates][actors]") {
  actor_env env;
  // One call per minute: the second waits a minute.
  auto keeper = spawn_rate_keeper(env.sys, rate_settings{1, 0, 60, 330});
  auto first = ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                                 uint64_t{100}, false);
  REQUIRE(first);
  CHECK(*first > 0);
  pending_pace second(env.sys, keeper);
  CHECK_FALSE(second.answered_now());
  env.self->send(keeper, drain_atom::value);
  auto slot = second.take(std::chrono::seconds(10));
  REQUIRE(slot);
  CHECK(*slot == 0);
  auto later = ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                                 uint64_t{100}, false);
  REQUIRE(later);
  CHECK(*later == 0);
  exit_all(env.self, keeper);
}

namespace {

rate_settings circuit_settings(uint32_t threshold, double probe_seconds) {
  rate_settings s;
  s.circuit_threshold = threshold;
  s.probe_seconds = probe_seconds;
  s.slow_start = false;
  return s;
}

// A failed call's refund: whether its model's circuit is open after it.
std::optional<bool> failed(actor_env& env, const rate_keeper_actor& keeper,
                           uint64_t slot, const std::string& down,
                           const std::string& task = "") {
  static int n = 0;
  return ask_for<bool>(env.self, keeper, refund_atom::value, key, slot,
                       uint64_t{0}, int64_t{-1}, int64_t{-1}, int64_t{-1},
                       false, down,
                       task.empty() ? "task-" + std::to_string(++n) : task,
                       true);
}

} // namespace

TEST_CASE("rate keeper: down answers in a row open the circuit, any answer "
          "closes it and lets the waiting calls go",
          "[rates][actors][circuit]") {
  actor_env env;
  auto counters = std::make_shared<call_counters>();
  // No probe within the test: only answers move the circuit.
  auto keeper = spawn_rate_keeper(env.sys, circuit_settings(2, 3600),
                                  rate_keeper_links{{}, {}, {}, counters});
  auto pace = [&] {
    return ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                             uint64_t{100}, false);
  };
  auto a = pace(), b = pace(), c = pace();
  REQUIRE((a && b && c));
  // A 5xx, then a refused connection: open after the second.
  CHECK(failed(env, keeper, *a, "HTTP 502: bad gateway") == false);
  CHECK(failed(env, keeper, *b, "request failed: connection refused") ==
        true);
  metrics_snapshot m;
  counters->fill(m);
  CHECK(m.circuits_open == 1);
  // Open: the next call waits (no probe is due for an hour).
  pending_pace d(env.sys, keeper);
  CHECK_FALSE(d.answered_now());
  counters->fill(m);
  CHECK(m.rate_waiting == 1);
  // A call sent before it opened comes back with a 400: the provider
  // answers, so the circuit closes and the waiting call goes.
  CHECK(failed(env, keeper, *c, "") == false);
  auto slot = d.take(std::chrono::seconds(10));
  REQUIRE(slot);
  CHECK(*slot > 0);
  counters->fill(m);
  CHECK(m.circuits_open == 0);
  CHECK(m.rate_waiting == 0);
  exit_all(env.self, keeper);
}

TEST_CASE("rate keeper: an open circuit lets one probe go at a time, and a "
          "probe never sent lets the next go at once",
          "[rates][actors][circuit]") {
  actor_env env;
  auto keeper = spawn_rate_keeper(env.sys, circuit_settings(1, 0.05));
  auto a = ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                             uint64_t{100}, false);
  REQUIRE(a);
  CHECK(failed(env, keeper, *a, "timed out") == true);
  // The first probe goes once due; the next call waits for its answer.
  pending_pace p1(env.sys, keeper);
  auto probe1 = p1.take(std::chrono::seconds(10));
  REQUIRE(probe1);
  pending_pace p2(env.sys, keeper);
  CHECK_FALSE(p2.answered_now());
  // The probe finds it down: still open (the attempt counts against no
  // task); the next probe goes a probe interval later.
  CHECK(failed(env, keeper, *probe1, "HTTP 503: overloaded") == true);
  auto probe2 = p2.take(std::chrono::seconds(10));
  REQUIRE(probe2);
  pending_pace p3(env.sys, keeper);
  CHECK_FALSE(p3.answered_now());
  // The second probe was never sent (its worker died): the next call is
  // the probe.
  env.self->send(keeper, refund_atom::value, key, *probe2, uint64_t{0});
  auto probe3 = p3.take(std::chrono::seconds(10));
  REQUIRE(probe3);
  // It answers: closed, every call goes at once.
  env.self->send(keeper, refund_atom::value, key, *probe3, uint64_t{10},
                 int64_t{-1}, int64_t{-1}, int64_t{-1}, false);
  pending_pace p4(env.sys, keeper);
  CHECK(p4.answered_now());
  exit_all(env.self, keeper);
}

TEST_CASE("rate keeper: one task failing again and again is its own fault "
          "and never opens the circuit, and two tasks in a row are the "
          "provider's",
          "[rates][actors][circuit]") {
  actor_env env;
  auto keeper = spawn_rate_keeper(env.sys, circuit_settings(3, 3600));
  auto pace = [&] {
    return *ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                              uint64_t{100}, false);
  };
  for (int i = 0; i < 6; ++i)
    CHECK(failed(env, keeper, pace(), "HTTP 500", "poison") == false);
  // Another task down right after: the provider's (two tasks in a row),
  // and a third opens it.
  CHECK(failed(env, keeper, pace(), "HTTP 500", "other-1") == true);
  pending_pace waiting(env.sys, keeper);
  CHECK(waiting.answered_now());
  CHECK(failed(env, keeper, pace(), "HTTP 500", "other-2") == true);
  pending_pace held(env.sys, keeper);
  CHECK_FALSE(held.answered_now());
  exit_all(env.self, keeper);
}

TEST_CASE("rate keeper: with no limits known, a key's first call goes alone "
          "and its answer's headers pace the rest",
          "[rates][actors]") {
  actor_env env;
  rate_settings s;
  s.window_seconds = 60;
  auto keeper = spawn_rate_keeper(env.sys, s);
  auto first = ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                                 uint64_t{100}, false);
  REQUIRE(first);
  pending_pace second(env.sys, keeper);
  CHECK_FALSE(second.answered_now());
  // The answer says: 2 requests per minute. The second goes; a third
  // waits for the window.
  env.self->send(keeper, refund_atom::value, key, *first, uint64_t{50},
                 int64_t{2}, int64_t{-1}, int64_t{-1}, false);
  REQUIRE(second.take(std::chrono::seconds(10)));
  pending_pace third(env.sys, keeper);
  CHECK_FALSE(third.answered_now());
  // Another key learns on its own: its first call goes at once.
  auto other = ask_for<uint64_t>(env.self, keeper, pace_atom::value,
                                 std::string("openai/other"), uint64_t{1},
                                 false);
  CHECK(other);
  exit_all(env.self, keeper);
}
