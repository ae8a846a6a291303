// The budget_keeper through its messages: grants only what fits, commit and
// release, alarms once each, snapshots. With a checkpointer its events go
// into the checkpointer's transaction, as (audit_atom, audit_event).
#include <catch2/catch.hpp>

#include <cmath>
#include <atomic>
#include <cstdint>
#include <memory>

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
  probe_handle audit_probe = spawn_probe(sys, audit);
  probe_handle mon_probe = spawn_probe(sys, mon);
  probe_handle cp_probe = spawn_probe(sys, cp);
  budget_keeper_actor keeper;
  explicit keeper_env(budget_settings s) {
    keeper = spawn_budget_keeper(sys, s,
                                 checkpointer_actor{cp_probe}, audit_probe,
                                 mon_probe);
  }
  ~keeper_env() {
    exit_all(self, keeper, audit_probe, mon_probe, cp_probe);
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
    REQUIRE(ask_for<flush_atom>(self, cp_probe, flush_atom::value));
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

  // Every denial is audited; a task's ordinary grant is written by the
  // gateway in its task_started, not here.
  e.settle();
  CHECK(e.cp->events("budget_granted").empty());
  CHECK(e.cp->events("budget_denied").size() == 2);
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

TEST_CASE("budget_keeper: alarms at 50, 80 and 100 percent spent fire once "
          "each and in order",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000, 1.0));
  auto spend = [&](uint64_t n) {
    auto r = e.reserve(n);
    REQUIRE(r.granted);
    CHECK(e.commit(r.id, n, 0));
  };
  // A large reservation alone raises nothing: only spending counts.
  auto big = e.reserve(900);
  REQUIRE(big.granted);
  CHECK(e.commit(big.id, 400, 0)); // 400 spent
  spend(100); // 500: 50 %
  spend(10);
  spend(300); // 810: 80 %
  spend(50);  // 860
  // Denials say the budget is exhausted (once) without claiming 100 %.
  CHECK_FALSE(e.reserve(500).granted);
  CHECK_FALSE(e.reserve(500).granted);
  e.settle();
  CHECK(e.cp->events("budget_alarm").size() == 2);
  auto exhausted = e.mon->alerts("budget_exhausted");
  REQUIRE(exhausted.size() == 1);
  CHECK(exhausted[0].level == severity::critical);
  CHECK(exhausted[0].message ==
        "budget exhausted, no new calls start: token budget: 860 spent + 0 "
        "reserved + 500 needed > 1000");
  spend(140); // 1000: 100 %
  e.settle();
  auto alarms = e.cp->events("budget_alarm");
  REQUIRE(alarms.size() == 3);
  CHECK(alarms[0].detail == "token budget 50% used (500 of 1000 tokens)");
  CHECK(alarms[1].detail == "token budget 80% used (810 of 1000 tokens)");
  CHECK(alarms[2].detail == "token budget 100% used (1000 of 1000 tokens)");
  auto alerts = e.mon->alerts("budget_alarm");
  REQUIRE(alerts.size() == 3);
  CHECK(alerts[0].level == severity::warning);
  CHECK(alerts[1].level == severity::warning);
  CHECK(alerts[2].level == severity::critical);
  // The monitor is kept informed of the figures.
  auto figures = e.mon->with_atom<budget_atom>();
  REQUIRE_FALSE(figures.empty());
  CHECK(figures.back().get_as<budget_snapshot>(1).tokens_used == 1000);
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
  // 50 % and 80 % were raised by the earlier process; only the denial's
  // alert is new.
  CHECK(e.cp->events("budget_alarm").empty());
  CHECK(e.mon->alerts("budget_exhausted").size() == 1);

  // Raising the limit re-arms the alarms relative to it and is persisted.
  auto nb = ask_for<budget_snapshot>(e.self, e.keeper, set_budget_atom::value,
                                     budget_change{true, 10000, true, 2.0});
  REQUIRE(nb);
  CHECK(nb->tokens_limit == 10000);
  CHECK(nb->cost_limit == Approx(2.0));
  REQUIRE(e.cp->wait_atom<limits_atom>());
  auto lim = e.cp->with_atom<limits_atom>()[0];
  CHECK(lim.get_as<uint64_t>(1) == 10000);
  CHECK(e.reserve(5000).granted);
}

TEST_CASE("budget_keeper: a run that already stopped on its budget does not "
          "raise budget_exhausted again",
          "[unit][budget_keeper]") {
  auto s = limits(1000, 1.0);
  s.tokens_spent = 950;
  s.exhausted = true;
  keeper_env e(s);
  CHECK_FALSE(e.reserve(100).granted);
  e.settle();
  CHECK(e.cp->events("budget_alarm").empty());
  CHECK(e.mon->alerts("budget_exhausted").empty());
  CHECK(e.cp->events("budget_denied").size() == 1);
}

TEST_CASE("budget_keeper: usage over the reservation raises a critical "
          "alert and scales later reservations up",
          "[unit][budget_keeper]") {
  keeper_env e(limits(100000, 10.0));
  auto a = ask_for<reservation>(e.self, e.keeper, reserve_atom::value,
                                std::string("t-over"), uint64_t{1000}, 0.01);
  REQUIRE(a);
  REQUIRE(a->granted);
  // Within the reservation: no alert, no scaling.
  auto ok = e.reserve(1000, 0.01);
  CHECK(e.commit(ok.id, 700, 300, 0.01));
  // 1,500 tokens against 1,000 reserved (x1.5); cost within.
  CHECK(e.commit(a->id, 1200, 300, 0.005));
  auto s = e.snapshot();
  CHECK(s.tokens_used == 2500); // the actual usage counts, all of it
  CHECK(s.cost_used == Approx(0.015));
  CHECK(s.tokens_reserved == 0);
  e.settle();
  auto alerts = e.mon->alerts("usage_over_reservation");
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].level == severity::critical);
  CHECK(alerts[0].task_id == "t-over");
  auto& m = alerts[0].message;
  CHECK(m.find("used 1500 tokens, $0.005000") != std::string::npos);
  CHECK(m.find("held 1000 tokens, $0.010000") != std::string::npos);
  CHECK(m.find("tokens over") != std::string::npos);
  CHECK(m.find("x1.50") != std::string::npos);
  auto audited = e.cp->events("usage_over_reservation");
  REQUIRE(audited.size() == 1);
  CHECK(audited[0].task_id == "t-over");
  CHECK(audited[0].detail == m);

  // Later reservations hold tokens x1.5 and cost x1.5.
  auto b = e.reserve(1000, 0.02);
  REQUIRE(b.granted);
  s = e.snapshot();
  CHECK(s.tokens_reserved == 1500);
  CHECK(s.cost_reserved == Approx(0.03));
  e.settle();
  auto grants = e.cp->events("budget_granted");
  CHECK(grants.back().detail.find("reserved 1500 tokens") == 0);
  CHECK(grants.back().detail.find("x1.50") != std::string::npos);
  // Within what it held (1,500): no alert although above the 1,000 asked.
  CHECK(e.commit(b.id, 1400, 0, 0.02));
  // Grants only if spent + reserved + tokens x factor fits: 3,900 spent.
  CHECK(e.snapshot().tokens_used == 3900);
  auto big = e.reserve(65000); // x1.5 = 97,500 > 100,000 - 3,900
  CHECK_FALSE(big.granted);
  CHECK(big.reason.find("97500 needed") != std::string::npos);
  CHECK(big.reason.find("x1.50") != std::string::npos);
  CHECK(e.reserve(63000).granted); // x1.5 = 94,500 fits

  // The cost over its reservation raises the factor by the cost ratio.
  auto c = e.reserve(100, 0.001); // holds 150 tokens, $0.0015
  REQUIRE(c.granted);
  CHECK(e.commit(c.id, 10, 10, 0.004)); // x4 of the $0.001 asked
  e.settle();
  alerts = e.mon->alerts("usage_over_reservation");
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[1].message.find("cost over") != std::string::npos);
  CHECK(alerts[1].message.find("x4.00") != std::string::npos);
  // A smaller overrun later never lowers the factor; 10 is the cap.
  auto d = e.reserve(10, 0); // holds 40 tokens
  REQUIRE(d.granted);
  CHECK(e.commit(d.id, 1000, 0)); // x100 asked: capped at x10
  auto f = e.reserve(10, 0);
  REQUIRE(f.granted);
  CHECK(e.commit(f.id, 101, 0)); // over the 100 held: x10.1, capped at 10
  e.settle();
  alerts = e.mon->alerts("usage_over_reservation");
  REQUIRE(alerts.size() == 4);
  CHECK(alerts[2].message.find("x10.00") != std::string::npos);
  CHECK(alerts[3].message.find("x10.00 (unchanged)") != std::string::npos);
  auto before = e.snapshot();
  auto g = e.reserve(7, 0.5);
  REQUIRE(g.granted);
  CHECK(e.snapshot().tokens_reserved == before.tokens_reserved + 70);
  CHECK(e.snapshot().cost_reserved == Approx(before.cost_reserved + 5.0));
}

TEST_CASE("budget_keeper: a commit for an unknown or settled reservation "
          "adds nothing",
          "[unit][budget_keeper]") {
  keeper_env e(limits(10000, 1.0));
  auto a = e.reserve(100, 0.1);
  REQUIRE(a.granted);
  CHECK(e.commit(a.id, 50, 50, 0.05));
  CHECK_FALSE(e.commit(a.id, 50, 50, 0.05));       // committed already
  CHECK_FALSE(e.commit(9999, 5000, 5000, 0.5));    // never granted
  CHECK_FALSE(e.commit(0, 1, 1, 0.01));            // no reservation
  auto b = e.reserve(100, 0.1);
  REQUIRE(b.granted);
  CHECK(*ask_for<bool>(e.self, e.keeper, release_atom::value, b.id));
  CHECK_FALSE(e.commit(b.id, 100, 0, 0.1));        // released
  auto s = e.snapshot();
  CHECK(s.tokens_used == 100);
  CHECK(s.cost_used == Approx(0.05));
  CHECK(s.tokens_reserved == 0);
  e.settle();
  CHECK(e.mon->alerts("usage_over_reservation").empty());
}

TEST_CASE("budget_keeper: the settlements of one store commit in one "
          "message count each once, and its alarms fire in order",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000, 1.0));
  auto a = e.reserve(400), b = e.reserve(300), c = e.reserve(200);
  REQUIRE((a.granted && b.granted && c.granted));
  e.self->send(e.keeper, commit_atom::value,
               std::vector<settlement>{{a.id, usage{300, 100, 0.1}},
                                       {b.id, usage{250, 50, 0.1}},
                                       {a.id, usage{300, 100, 0.1}}, // again
                                       {9999, usage{500, 0, 0.5}}}); // never
  auto s = e.snapshot();
  CHECK(s.tokens_used == 700);
  CHECK(s.cost_used == Approx(0.2));
  CHECK(s.tokens_reserved == 200);
  e.settle();
  auto alarms = e.cp->events("budget_alarm");
  REQUIRE(alarms.size() == 1); // 70 %: the 50 % alarm only
  CHECK(alarms[0].detail == "token budget 50% used (700 of 1000 tokens)");
  CHECK(e.mon->with_atom<budget_atom>().back().get_as<budget_snapshot>(1)
          .tokens_used == 700);
  CHECK(e.commit(c.id, 100, 0));
  CHECK(e.snapshot().tokens_used == 800);
}

TEST_CASE("budget_keeper: a calendar period that ends starts the spending "
          "again at 0, re-arms the alarms and the exhausted alert, and "
          "keeps reservations held",
          "[unit][budget_keeper]") {
  auto now = std::make_shared<std::atomic<int64_t>>(1795782896); // 12:34:56
  budget_settings s = limits(1000, 1.0);
  s.period = budget_period::day;
  s.tokens_spent = 700; // spent earlier today, by an earlier run
  s.clock = [now] { return now->load(); };
  keeper_env e(s);
  CHECK(e.snapshot().tokens_used == 700);
  auto held = e.reserve(250);
  REQUIRE(held.granted);
  CHECK_FALSE(e.reserve(100).granted); // 700 + 250 + 100 > 1000
  *now = 1795824000 - 1; // 23:59:59: still today
  CHECK_FALSE(e.reserve(100).granted);
  *now = 1795824000; // 2026-11-28T00:00:00Z
  // The call in flight ends after midnight: its usage is the new day's (as
  // the ledger's time says), the first message of the day rolls it over.
  CHECK(e.commit(held.id, 200, 50));
  auto b = e.snapshot();
  CHECK(b.tokens_used == 250);
  CHECK(b.tokens_reserved == 0);
  CHECK(e.reserve(700).granted);
  CHECK_FALSE(e.reserve(100).granted); // 250 + 700 + 100 > 1000
  e.settle();
  auto started = e.cp->events("budget_period_started");
  REQUIRE(started.size() == 1);
  CHECK(started[0].detail ==
        "a new day from 2026-11-28T00:00:00.000Z: spending starts again at "
        "0 (the last spent 700 tokens, $0.000000)");
  // One exhausted alert per period: the day before's, and today's.
  CHECK(e.mon->alerts("budget_exhausted").size() == 2);
}

TEST_CASE("budget_keeper: a cost that is no amount counts as the "
          "reservation's, and huge figures saturate",
          "[unit][budget_keeper]") {
  keeper_env e(limits(10000, 1.0));
  auto a = e.reserve(100, 0.2);
  REQUIRE(a.granted);
  CHECK(e.commit(a.id, 10, 10, std::nan("")));
  CHECK(e.snapshot().cost_used == Approx(0.2));
  auto b = e.reserve(100, 0.1);
  REQUIRE(b.granted);
  CHECK(e.commit(b.id, 10, 10, -5.0));
  CHECK(e.snapshot().cost_used == Approx(0.3));
  // A worst case that is no amount fits nothing.
  CHECK_FALSE(e.reserve(10, std::nan("")).granted);
  // No wrap-around: a reservation of 2^64-1 tokens is simply denied.
  CHECK_FALSE(e.reserve(UINT64_MAX).granted);
  auto c = e.reserve(100);
  REQUIRE(c.granted);
  CHECK(e.commit(c.id, UINT64_MAX, UINT64_MAX, 0));
  CHECK(e.snapshot().tokens_used == UINT64_MAX);
  CHECK_FALSE(e.reserve(1).granted);
}

TEST_CASE("budget_keeper: a change of one limit keeps the other and re-arms "
          "only its own alerts",
          "[unit][budget_keeper]") {
  keeper_env e(limits(1000, 1.0));
  CHECK_FALSE(e.reserve(2000).granted); // the token budget is exhausted
  auto nb = ask_for<budget_snapshot>(e.self, e.keeper, set_budget_atom::value,
                                     budget_change{false, 0, true, 2.0});
  REQUIRE(nb);
  CHECK(nb->tokens_limit == 1000);
  CHECK(nb->cost_limit == Approx(2.0));
  CHECK_FALSE(e.reserve(2000).granted); // the token alert is not raised again
  // A cost that is no amount changes nothing.
  auto nan = ask_for<budget_snapshot>(
    e.self, e.keeper, set_budget_atom::value,
    budget_change{false, 0, true, std::nan("")});
  REQUIRE(nan);
  CHECK(nan->cost_limit == Approx(2.0));
  auto more = ask_for<budget_snapshot>(e.self, e.keeper,
                                       set_budget_atom::value,
                                       budget_change{true, 5000, false, 0});
  REQUIRE(more);
  CHECK(more->tokens_limit == 5000);
  CHECK(more->cost_limit == Approx(2.0));
  CHECK(e.reserve(2000).granted);
  CHECK_FALSE(e.reserve(4000).granted); // re-armed: raised once more
  e.settle();
  CHECK(e.mon->alerts("budget_exhausted").size() == 2);
}
