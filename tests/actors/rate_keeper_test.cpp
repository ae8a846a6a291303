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
    self->send(keeper, pace_atom::value, key, uint64_t{100});
  }
  std::optional<uint64_t> answered_now() {
    // Another key: answered at once.
    auto other = ask_for<uint64_t>(self, keeper, pace_atom::value,
                                   std::string("other/model"), uint64_t{1});
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
  auto keeper = spawn_rate_keeper(env.sys, rate_settings{});
  auto pace = [&] {
    return ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                             uint64_t{100});
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
                                 uint64_t{100});
  REQUIRE(first);
  CHECK(*first > 0);
  pending_pace second(env.sys, keeper);
  CHECK_FALSE(second.answered_now());
  env.self->send(keeper, drain_atom::value);
  auto slot = second.take(std::chrono::seconds(10));
  REQUIRE(slot);
  CHECK(*slot == 0);
  auto later = ask_for<uint64_t>(env.self, keeper, pace_atom::value, key,
                                 uint64_t{100});
  REQUIRE(later);
  CHECK(*later == 0);
  exit_all(env.self, keeper);
}
