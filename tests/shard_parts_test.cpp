// The sharded store's pure parts (docs/plans/sharded-store.md, step 1),
// without files or actors: which file holds a task, the event clock shared
// by the files' writers, the supervisor's merged run order over the files'
// feeds and the auditor's merged event order.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "persistence/event_clock.hpp"
#include "persistence/shard_map.hpp"
#include "policy/event_merge.hpp"
#include "policy/shard_merge.hpp"

using namespace bgagent;

namespace {

struct item {
  int64_t priority = 0;
  int64_t seq = 0;
  std::string id;
};

// A task at (priority, seq), with the id "priority/seq".
item it(int64_t priority, int64_t seq) {
  return item{priority, seq,
              std::to_string(priority) + "/" + std::to_string(seq)};
}

committed_event ev(uint64_t seq) {
  committed_event e;
  e.seq = seq;
  e.event.event = "e" + std::to_string(seq);
  return e;
}

std::vector<committed_event> evs(std::initializer_list<uint64_t> seqs) {
  std::vector<committed_event> out;
  for (auto s : seqs)
    out.push_back(ev(s));
  return out;
}

std::vector<uint64_t> seqs_of(const std::vector<committed_event>& events) {
  std::vector<uint64_t> out;
  for (auto& e : events)
    out.push_back(e.seq);
  return out;
}

// Every item next() gives now, as "priority/seq".
std::vector<std::string> drain(shard_merge<item>& m) {
  std::vector<std::string> out;
  while (auto t = m.next())
    out.push_back(std::to_string(t->priority) + "/" + std::to_string(t->seq));
  return out;
}

} // namespace

TEST_CASE("shard_of is the id's mixed FNV-1a modulo the shard count, fixed "
          "for good", "[shard]") {
  // Stored tasks are found by these values: they must never change.
  CHECK(fnv1a("gen-000001") == 8520032460624259579ull);
  CHECK(shard_of("gen-000001", 4) == 1);
  CHECK(shard_of("gen-000001", 64) == 37);
  CHECK(shard_of("t-0123456789abcdef", 8) == 5);
  CHECK(shard_of("t-0123456789abcdef", 64) == 61);
  CHECK(shard_of("task-1", 8) == 7);
  CHECK(shard_of("", 8) == 6);
  CHECK(shard_of("\xc3\xa9", 64) == 59); // é: bytes, not characters
  // One file: everything is in the main file.
  CHECK(shard_of("gen-000001", 1) == 0);
  CHECK(shard_of("gen-000001", 0) == 0);
  CHECK(shard_file("/d/bgagent.db", 0) == "/d/bgagent.db");
  CHECK(shard_file("/d/bgagent.db", 3) == "/d/bgagent.db.shard3");
  // Spread: 64,000 generated ids over 8 shards, each within 5 % of even.
  std::vector<int> per(8);
  for (int i = 0; i < 64000; ++i)
    ++per[shard_of("gen-" + std::to_string(i), 8)];
  for (int n : per) {
    CHECK(n > 7600);
    CHECK(n < 8400);
  }
  // Ids whose bytes differ only in their high bits, or only in order: FNV-1a
  // alone modulo 2, 4 or 8 would put each family in one shard.
  for (uint32_t shards : {2u, 4u, 8u}) {
    INFO(shards << " shards");
    std::set<uint32_t> doubled, cased, anagrams;
    for (char d = '1'; d <= '9'; ++d)
      doubled.insert(shard_of(std::string("task-") + d + d, shards));
    for (auto id : {"alpha", "Alpha", "ALPHA", "aLpHa", "alphA", "ALpha",
                    "alPHA", "AlPhA", "alpHa", "aLPHA"})
      cased.insert(shard_of(id, shards));
    for (auto id : {"abcde", "edcba", "badce", "cabed", "ecdab", "dbcae",
                    "acebd", "bdeac", "ceabd", "eabdc"})
      anagrams.insert(shard_of(id, shards));
    CHECK(doubled.size() > 1);
    CHECK(cased.size() > 1);
    CHECK(anagrams.size() > 1);
  }
}

TEST_CASE("the event clock gives unique increasing seqs across threads and "
          "honours its floor", "[shard]") {
  event_clock c;
  CHECK(c.next() == 1);
  CHECK(c.take() == 1);
  CHECK(c.take() == 2);
  c.raise(100);
  CHECK(c.next() == 101);
  CHECK(c.take() == 101);
  c.raise(50); // never lowers
  CHECK(c.take() == 102);
  uint64_t floor = c.next();

  // Four writers at once: no seq twice, each writer's own seqs increase,
  // and none is below the floor read before they began.
  std::vector<std::vector<uint64_t>> taken(4);
  std::vector<std::thread> writers;
  for (auto& mine : taken)
    writers.emplace_back([&c, &mine] {
      for (int i = 0; i < 20000; ++i)
        mine.push_back(c.take());
    });
  for (auto& w : writers)
    w.join();
  std::set<uint64_t> all;
  for (auto& mine : taken) {
    CHECK(std::is_sorted(mine.begin(), mine.end()));
    CHECK(mine.front() >= floor);
    all.insert(mine.begin(), mine.end());
  }
  CHECK(all.size() == 80000);
  CHECK(*all.rbegin() == floor + 80000 - 1);
}

TEST_CASE("the merged run order over shard feeds is exactly one file's order",
          "[shard]") {
  shard_merge<item> m(3);
  CHECK(m.to_fetch() == std::vector<size_t>{0, 1, 2});
  auto t0 = m.fetching(0), t1 = m.fetching(1), t2 = m.fetching(2);
  CHECK(m.to_fetch().empty());

  // Feed 0 answers first. Its head (priority 5, seq 4) must wait: feeds 1
  // and 2 have not answered, and either may hold a task that goes first.
  CHECK(m.fetched(0, t0, {it(5, 4), it(0, 1), it(0, 6)}, false));
  CHECK(drain(m).empty());
  // Feed 1 brings a higher priority; feed 2 still holds both back.
  CHECK(m.fetched(1, t1, {it(9, 7), it(5, 2), it(0, 3)}, true));
  CHECK(drain(m).empty());
  CHECK(m.fetched(2, t2, {it(5, 3), it(0, 2)}, false));
  // Now the order is known down to where a feed that is not exhausted runs
  // dry: feed 2's cursor is at (0, 2), and feed 0's at (0, 6).
  CHECK(drain(m) == std::vector<std::string>{"9/7", "5/2", "5/3", "5/4",
                                             "0/1", "0/2"});
  // Feed 2 is empty and may bring (0, 3)'s predecessors: (0, 3) waits.
  CHECK(m.to_fetch() == std::vector<size_t>{2});
  CHECK(m.cursor(2).priority == 0);
  CHECK(m.cursor(2).seq == 2);
  auto t2b = m.fetching(2);
  CHECK(drain(m).empty());
  CHECK(m.fetched(2, t2b, {it(0, 5)}, true));
  CHECK(drain(m) == std::vector<std::string>{"0/3", "0/5", "0/6"});
  // Feed 0 is empty and not exhausted: not drained until it says so.
  CHECK_FALSE(m.drained());
  auto t0b = m.fetching(0);
  CHECK(m.fetched(0, t0b, {}, true));
  CHECK(m.drained());
  CHECK(m.next() == std::nullopt);
}

TEST_CASE("a feed whose cursor is past the head does not hold it back",
          "[shard]") {
  shard_merge<item> m(2);
  auto a = m.fetching(0), b = m.fetching(1);
  CHECK(m.fetched(1, b, {it(0, 10)}, false)); // feed 1's cursor: (0, 10)
  CHECK(m.fetched(0, a, {it(0, 3), it(0, 12)}, false));
  // (0, 3) and (0, 10) go: feed 1 can only bring tasks after (0, 10), and
  // feed 0 still has (0, 12) buffered.
  CHECK(drain(m) == std::vector<std::string>{"0/3", "0/10"});
  CHECK(m.buffered() == 1);
  // Feed 1 ran dry before (0, 12): (0, 12) waits for it.
  CHECK(m.to_fetch() == std::vector<size_t>{1});
}

TEST_CASE("tasks let go are dropped from the feeds, and a reset ignores "
          "answers asked before it", "[shard]") {
  shard_merge<item> m(2);
  auto a = m.fetching(0);
  auto b = m.fetching(1);
  m.let_go("0/2"); // completed while both fetches were out
  CHECK(m.fetched(0, a, {it(0, 1), it(0, 2)}, true));
  CHECK(m.fetched(1, b, {it(0, 3)}, true));
  CHECK(drain(m) == std::vector<std::string>{"0/1", "0/3"});
  CHECK(m.drained());
  // A let-go with no fetch out touches no later answer.
  m.let_go("0/4");
  m.reset();
  {
    auto x = m.fetching(0), y = m.fetching(1);
    CHECK(m.fetched(0, x, {it(0, 4), it(0, 5)}, true));
    CHECK(m.fetched(1, y, {}, true));
    CHECK(m.buffered() == 2);
    // A buffered task let go (cancelled before it was taken) is dropped.
    m.let_go("0/5");
    CHECK(m.buffered() == 1);
    CHECK(drain(m) == std::vector<std::string>{"0/4"});
  }
  m.reset();
  CHECK(m.cursor(0).seq == 0);
  auto stale = m.fetching(0);
  m.reset(); // a rescan while that fetch was out
  auto fresh = m.fetching(0);
  CHECK_FALSE(m.fetched(0, stale, {it(0, 9)}, true));
  auto fresh1 = m.fetching(1);
  CHECK(m.fetched(0, fresh, {it(0, 4)}, true));
  CHECK(m.fetched(1, fresh1, {}, true));
  CHECK(drain(m) == std::vector<std::string>{"0/4"});
  // Items an answer should not hold (not after the cursor) are dropped.
  m.reset();
  auto c = m.fetching(0), d = m.fetching(1);
  CHECK(m.fetched(0, c, {it(0, 5), it(0, 5), it(0, 4), it(0, 6)}, true));
  CHECK(m.fetched(1, d, {}, true));
  CHECK(drain(m) == std::vector<std::string>{"0/5", "0/6"});
  // One feed keeps no index: a buffered task let go is found all the same.
  shard_merge<item> one(1);
  auto o = one.fetching(0);
  CHECK(one.fetched(0, o, {it(0, 1), it(0, 2), it(0, 3)}, true));
  one.let_go("0/2");
  one.let_go("0/9"); // not buffered: nothing happens
  CHECK(drain(one) == std::vector<std::string>{"0/1", "0/3"});
  // A low water of 0 still fetches an empty feed.
  shard_merge<item> zero(1, 0);
  CHECK(zero.to_fetch() == std::vector<size_t>{0});
}

TEST_CASE("merged feeds of random shards give one file's order", "[shard]") {
  // 3,000 tasks over 5 shards, priorities 0-3, fetched 7 at a time in a
  // random order of answers: next() yields them in (priority desc, seq).
  std::mt19937 rng(7);
  const size_t shards = 5, limit = 7;
  std::vector<std::vector<item>> files(shards);
  std::vector<item> all;
  for (int64_t s = 1; s <= 3000; ++s) {
    item t{static_cast<int64_t>(rng() % 4), s, "t" + std::to_string(s)};
    files[shard_of(t.id, shards)].push_back(t);
    all.push_back(t);
  }
  auto order = [](const item& a, const item& b) {
    return runs_before(a.priority, a.seq, b.priority, b.seq);
  };
  for (auto& f : files)
    std::sort(f.begin(), f.end(), order);
  std::sort(all.begin(), all.end(), order);

  shard_merge<item> m(shards, 3);
  std::vector<std::pair<size_t, uint64_t>> out_fetches;
  std::vector<int64_t> got;
  for (int round = 0; round < 100000 && !m.drained(); ++round) {
    for (auto k : m.to_fetch())
      out_fetches.emplace_back(k, m.fetching(k));
    if (!out_fetches.empty()) {
      // One answer, chosen at random among those out.
      size_t pick = rng() % out_fetches.size();
      auto [k, ticket] = out_fetches[pick];
      out_fetches.erase(out_fetches.begin() + static_cast<long>(pick));
      std::vector<item> answer;
      for (auto& t : files[k])
        if (runs_before(m.cursor(k).priority, m.cursor(k).seq, t.priority,
                        t.seq) &&
            answer.size() < limit)
          answer.push_back(t);
      bool short_answer = answer.size() < limit;
      REQUIRE(m.fetched(k, ticket, std::move(answer), short_answer));
    }
    while (auto t = m.next())
      got.push_back(t->seq);
  }
  REQUIRE(m.drained());
  REQUIRE(got.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i)
    REQUIRE(got[i] == all[i].seq);
}

TEST_CASE("the audit merge writes events in seq order once no shard can "
          "send one below them", "[shard]") {
  event_merge m(3, 1); // every shard vouched for seq 1 and up
  CHECK(m.watermark() == 1);
  CHECK(m.add(0, evs({1, 4, 5}), 7));
  CHECK(m.add(1, evs({2, 6}), 8));
  // Shard 2 has said nothing since the start: nothing is ready, and it is
  // the one to ask.
  CHECK(m.take_ready().empty());
  CHECK(m.holding_back() == std::vector<size_t>{2});
  CHECK(m.waiting() == 5);
  // Shard 2 was idle: a newer floor and no events. Seq 3 was taken by a
  // transaction that rolled back: a hole.
  CHECK(m.add(2, {}, 9));
  CHECK(m.watermark() == 7);
  CHECK(seqs_of(m.take_ready()) == std::vector<uint64_t>{1, 2, 4, 5, 6});
  CHECK(m.waiting() == 0);
  CHECK(m.holding_back().empty());
  // Later events from shard 2, then shard 0 catches up.
  CHECK(m.add(2, evs({9, 11}), 12));
  CHECK(m.take_ready().empty()); // watermark 7: shard 0 may still send 7, 8
  CHECK(m.holding_back() == std::vector<size_t>{0, 1});
  CHECK(m.add(0, evs({7, 10}), 13));
  CHECK(m.add(1, evs({12}), 14));
  // Watermark 12: shard 2 vouched only for 12 and up, so 12 waits for it.
  CHECK(seqs_of(m.take_ready()) == std::vector<uint64_t>{7, 9, 10, 11});
  CHECK(m.holding_back() == std::vector<size_t>{2});
  CHECK(m.add(2, {}, 15));
  CHECK(seqs_of(m.take_ready()) == std::vector<uint64_t>{12});
}

TEST_CASE("the audit merge refuses a writer's events out of its contract",
          "[shard]") {
  event_merge m(2, 10);
  CHECK_FALSE(m.add(0, evs({9}), 20));      // below the floor vouched for
  CHECK_FALSE(m.add(0, evs({12, 11}), 20)); // not increasing
  CHECK_FALSE(m.add(0, evs({12}), 12));     // floor not above its events
  CHECK_FALSE(m.add(5, evs({12}), 20));     // no such shard
  CHECK(m.waiting() == 0);                  // nothing taken
  CHECK(m.add(0, evs({12}), 20));
  CHECK_FALSE(m.add(0, evs({12}), 25)); // the same seq again
  CHECK_FALSE(m.add(0, evs({15}), 25)); // below the floor of 20 it gave
  CHECK(m.add(0, {}, 15));              // a lower floor changes nothing
  CHECK(m.floor_of(0) == 20);
  CHECK(m.add(1, {}, 30));
  CHECK(seqs_of(m.take_ready()) == std::vector<uint64_t>{12});
  CHECK(m.breaches() == 0);
  // Two shards sending one seq (a writer numbering without the clock): both
  // are written, never dropped, and the breach is counted.
  CHECK(m.add(0, evs({21, 31}), 40));
  CHECK(m.add(1, evs({31}), 40));
  auto out = seqs_of(m.take_ready());
  CHECK(out == std::vector<uint64_t>{21, 31, 31});
  CHECK(m.breaches() == 1);
}

TEST_CASE("the audit merge of four writers on one clock is strictly "
          "increasing and complete", "[shard]") {
  // Four writers take seqs from one clock into open transactions of their
  // own, interleaved: one writer reads its floor while another still holds
  // lower seqs uncommitted. A commit hands over its events with the floor
  // read after them; one transaction in five rolls back. The reports reach
  // the merge in a random interleaving (each writer's own in order, as CAF
  // keeps one sender's).
  std::mt19937 rng(11);
  event_clock clock;
  const size_t writers = 4;
  event_merge m(writers, clock.next());
  struct report {
    std::vector<committed_event> events;
    uint64_t floor;
  };
  std::vector<std::deque<report>> pending(writers);
  std::vector<std::vector<committed_event>> open(writers);
  std::set<uint64_t> committed;
  for (int step = 0; step < 20000; ++step) {
    size_t k = rng() % writers;
    switch (rng() % 4) {
    case 0:
    case 1: // an event in k's open transaction
      open[k].push_back(ev(clock.take()));
      break;
    case 2: // k commits (an empty commit is an idle floor)
      for (auto& e : open[k])
        committed.insert(e.seq);
      pending[k].push_back(report{std::move(open[k]), clock.next()});
      open[k].clear();
      break;
    default: // k rolls back, once in a while: its seqs are holes
      if (rng() % 5 == 0)
        open[k].clear();
    }
    // Deliver one report now and then, from a random writer.
    if (rng() % 2 == 0) {
      size_t j = rng() % writers;
      if (!pending[j].empty()) {
        auto r = std::move(pending[j].front());
        pending[j].pop_front();
        REQUIRE(m.add(j, std::move(r.events), r.floor));
      }
    }
  }
  for (size_t k = 0; k < writers; ++k) { // the last commits
    for (auto& e : open[k])
      committed.insert(e.seq);
    pending[k].push_back(report{std::move(open[k]), clock.next()});
  }
  std::vector<uint64_t> written;
  auto take = [&] {
    for (auto& e : m.take_ready())
      written.push_back(e.seq);
  };
  for (;;) {
    std::vector<size_t> ready;
    for (size_t k = 0; k < writers; ++k)
      if (!pending[k].empty())
        ready.push_back(k);
    if (ready.empty())
      break;
    size_t k = ready[rng() % ready.size()];
    auto r = std::move(pending[k].front());
    pending[k].pop_front();
    REQUIRE(m.add(k, std::move(r.events), r.floor));
    take();
  }
  // The writers holding the watermark back answer pings with the clock's
  // floor: one round clears every event waiting.
  for (auto k : m.holding_back())
    REQUIRE(m.add(k, {}, clock.next()));
  take();
  CHECK(m.waiting() == 0);
  CHECK(m.breaches() == 0);
  CHECK(written.size() > 5000);
  CHECK(std::adjacent_find(written.begin(), written.end(),
                           std::greater_equal<uint64_t>()) == written.end());
  CHECK(std::set<uint64_t>(written.begin(), written.end()) == committed);
}
