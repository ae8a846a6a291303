// The budget_keeper through its messages: grants only what fits, commit and
// release, alarms once each, snapshots.
#include <catch2/catch.hpp>

#include "actors/budget_keeper.hpp"
#include "messages/budget.hpp"
#include "tests/actors/actor_test_support.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

struct keeper_env : actor_env {
  recorder_ptr audit = std::make_shared<recorder>();
  recorder_ptr mon = std::make_shared<recorder>();
  recorder_ptr cp = std::make_shared<recorder>();
  caf::actor audit_probe = spawn_probe(sys, audit);
  caf::actor mon_probe = spawn_probe(sys, mon);
  caf::actor cp_probe = spawn_probe(sys, cp);
  caf::actor keeper;
  explicit keeper_env(budget_settings s) {
    keeper = spawn_budget_keeper(sys, s, cp_probe, audit_probe, mon_probe);
  }
  ~keeper_env() {
    for (auto* a : {&keeper, &audit_probe, &mon_probe, &cp_probe})
      self->send_exit(*a, caf::exit_reason::user_shutdown);
  }
  reservation reserve(uint64_t tokens, double cost = 0) {
    auto r = ask_for<reservation>(self, keeper, reserve_atom::value,
                                  std::string("t"), tokens, cost);
    REQUIRE(r);
    return *r;
  }
  bool commit(uint64_t id, uint64_t prompt, uint64_t completion,
              double cost = 0) {
    auto r = ask_for<bool>(self, keeper, commit_atom::value, id,
                           usage{prompt, completion, cost});
    REQUIRE(r);
    return *r;
  }
  // Everything the keeper sent so far has reached the probes: its sends are
  // enqueued before its reply, and our flush is enqueued after that.
  void settle() {
    snapshot();
    REQUIRE(ask_for<flush_atom>(self, audit_probe, flush_atom::value));
    REQUIRE(ask_for<flush_atom>(self, mon_probe, flush_atom::value));
  }
  budget_snapshot snapshot() {
    auto b = ask_for<budget_snapshot>(self, keeper, budget_atom::value);
    REQUIRE(b);
    return *b;
  }
};

budget_settings limits(uint64_t tokens, double cost) {
  budget_settings s;
  s.token_limit = tokens;
  s.cost_limit = cost;
  return s;
}

} // namespace

TEST_CASE("budget_keeper: grants only if spent + reserved + worst case fits",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000, 1.0));
  auto a = e.reserve(600);
  CHECK(a.granted);
  auto b = e.reserve(401); // 600 reserved + 401 > 1000
  CHECK_FALSE(b.granted);
  CHECK(b.reason.find("token budget") != std::string::npos);
  auto c = e.reserve(400); // exactly fits
  CHECK(c.granted);
  CHECK(c.id != a.id);
  auto s = e.snapshot();
  CHECK(s.tokens_reserved == 1000);
  CHECK(s.tokens_used == 0);
  CHECK(s.grants == 2);
  CHECK(s.denials == 1);

  // Commit releases the reservation and adds the actual usage.
  CHECK(e.commit(a.id, 250, 50));
  s = e.snapshot();
  CHECK(s.tokens_used == 300);
  CHECK(s.tokens_reserved == 400);
  CHECK_FALSE(e.commit(a.id, 1, 1)); // unknown now: nothing counted twice
  CHECK(e.snapshot().tokens_used == 300);
  // Release gives a reservation back without spending.
  CHECK(*ask_for<bool>(e.self, e.keeper, release_atom::value, c.id));
  CHECK_FALSE(*ask_for<bool>(e.self, e.keeper, release_atom::value, c.id));
  s = e.snapshot();
  CHECK(s.tokens_reserved == 0);
  CHECK(s.tokens_used == 300);
  CHECK(e.reserve(700).granted); // 300 spent + 700 fits
  CHECK_FALSE(e.reserve(1).granted);

  // Every grant and denial is audited.
  e.settle();
  CHECK(e.audit->events("budget_granted").size() == 3);
  CHECK(e.audit->events("budget_denied").size() == 2);
}

TEST_CASE("budget_keeper: the cost budget is enforced the same way",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000000, 0.10));
  auto a = e.reserve(10, 0.06);
  REQUIRE(a.granted);
  auto b = e.reserve(10, 0.05);
  CHECK_FALSE(b.granted);
  CHECK(b.reason.find("cost budget") != std::string::npos);
  CHECK(e.commit(a.id, 5, 5, 0.01));
  CHECK(e.reserve(10, 0.09).granted); // 0.01 spent + 0.09 fits exactly
  auto s = e.snapshot();
  CHECK(s.cost_used == Approx(0.01));
  CHECK(s.cost_reserved == Approx(0.09));
}

TEST_CASE("budget_keeper: alarms at 50, 80 and 100 percent fire once each",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000, 1.0));
  auto spend = [&](uint64_t n) {
    auto r = e.reserve(n);
    REQUIRE(r.granted);
    CHECK(e.commit(r.id, n, 0));
  };
  spend(400);
  spend(100); // 500: 50 %
  spend(10);
  spend(300); // 810: 80 %
  spend(50);
  CHECK_FALSE(e.reserve(500).granted); // first denial counts as 100 %
  CHECK_FALSE(e.reserve(500).granted);
  spend(100); // 960
  e.settle();
  auto alarms = e.audit->events("budget_alarm");
  REQUIRE(alarms.size() == 3);
  CHECK(alarms[0].detail.find("token budget 50% used") == 0);
  CHECK(alarms[1].detail.find("token budget 80% used") == 0);
  CHECK(alarms[2].detail.find("token budget 100% used") == 0);
  auto alerts = e.mon->alerts("budget_alarm");
  REQUIRE(alerts.size() == 3);
  CHECK(alerts[0].severity == "warning");
  CHECK(alerts[2].severity == "critical");
  // The monitor is kept informed of the figures.
  auto figures = e.mon->with_atom<budget_atom>();
  REQUIRE_FALSE(figures.empty());
  CHECK(figures.back().get_as<budget_snapshot>(1).tokens_used == 960);
}

TEST_CASE("budget_keeper: a resumed run keeps its spending and its alarms",
          "[unit][budget_keeper]") {
  auto s = limits(1000, 1.0);
  s.tokens_spent = 850; // 50 % and 80 % passed in the earlier process
  s.cost_spent = 0.25;
  keeper_env e(s);
  auto snap = e.snapshot();
  CHECK(snap.tokens_used == 850);
  CHECK(snap.cost_used == Approx(0.25));
  CHECK_FALSE(e.reserve(151).granted);
  auto r = e.reserve(150);
  REQUIRE(r.granted);
  CHECK(e.commit(r.id, 100, 0));
  e.settle();
  auto alarms = e.audit->events("budget_alarm");
  // Only the 100 % alarm (the denial) is new.
  REQUIRE(alarms.size() == 1);
  CHECK(alarms[0].detail.find("token budget 100% used") == 0);

  // Raising the limit re-arms the alarms relative to it and is persisted.
  auto nb = ask_for<budget_snapshot>(e.self, e.keeper, set_budget_atom::value,
                                     uint64_t{10000}, 2.0);
  REQUIRE(nb);
  CHECK(nb->tokens_limit == 10000);
  CHECK(nb->cost_limit == Approx(2.0));
  REQUIRE(e.cp->wait_atom<limits_atom>());
  auto lim = e.cp->with_atom<limits_atom>()[0];
  CHECK(lim.get_as<uint64_t>(1) == 10000);
  CHECK(e.reserve(5000).granted);
}

TEST_CASE("budget_keeper: a run that already stopped on its budget does not "
          "raise the 100 percent alarm again",
          "[unit][budget_keeper]") {
  auto s = limits(1000, 1.0);
  s.tokens_spent = 950;
  s.exhausted = true;
  keeper_env e(s);
  CHECK_FALSE(e.reserve(100).granted);
  e.settle();
  CHECK(e.audit->events("budget_alarm").empty());
  CHECK(e.audit->events("budget_denied").size() == 1);
}
