// recent_value: a value fetched at most once per max_age, shared by
// concurrent callers (the --metrics endpoint's store counts).
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "app/recent_value.hpp"

using namespace bgagent;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand.
struct manual_clock {
  recent_value<int>::clock::time_point t{};
  std::function<recent_value<int>::clock::time_point()> fn() {
    return [this] { return t; };
  }
};

} // namespace

TEST_CASE("recent_value: fetched once per max_age, again after it",
          "[unit][metrics]") {
  manual_clock c;
  recent_value<int> v(1s, c.fn());
  int fetches = 0;
  auto fetch = [&] { return ++fetches * 10; };
  CHECK(v.get(fetch) == 10);
  c.t += 999ms;
  CHECK(v.get(fetch) == 10); // younger than a second: the kept value
  CHECK(fetches == 1);
  c.t += 1ms;
  CHECK(v.get(fetch) == 20); // a second old: read again
  CHECK(fetches == 2);
}

TEST_CASE("recent_value: a fetch that throws is shared for max_age after "
          "it failed, then fetched again",
          "[unit][metrics]") {
  manual_clock c;
  recent_value<int> v(1s, c.fn());
  CHECK(v.get([] { return 1; }) == 1);
  c.t += 2s;
  int fetches = 0;
  auto failing = [&]() -> int {
    ++fetches;
    c.t += 10s; // a read that waited for its timeout
    throw std::runtime_error("down");
  };
  CHECK_THROWS_WITH(v.get(failing), "down");
  // A caller that waited for that read gets its failure without a read of
  // its own (nor the stale value).
  c.t += 500ms;
  CHECK_THROWS_WITH(v.get(failing), "down");
  CHECK(fetches == 1);
  c.t += 500ms;
  CHECK(v.get([&] { return ++fetches * 10; }) == 20);
  CHECK(fetches == 2);
}

TEST_CASE("recent_value: callers that arrive during a fetch share it",
          "[unit][metrics]") {
  manual_clock c;
  recent_value<int> v(1s, c.fn());
  std::atomic<int> fetches{0};
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  auto slow = [&] {
    ++fetches;
    while (!release.load())
      std::this_thread::yield();
    return 7;
  };
  std::vector<int> got(8, 0);
  std::vector<std::thread> callers;
  for (size_t i = 0; i < got.size(); ++i)
    callers.emplace_back([&, i] {
      ++started;
      got[i] = v.get(slow);
    });
  // Every caller is inside get() or about to enter it before the one fetch
  // ends; the clock does not move, so none of them fetches again.
  while (started.load() < static_cast<int>(got.size()))
    std::this_thread::yield();
  release = true;
  for (auto& t : callers)
    t.join();
  CHECK(fetches.load() == 1);
  for (auto g : got)
    CHECK(g == 7);
}
