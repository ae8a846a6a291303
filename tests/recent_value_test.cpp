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

TEST_CASE("recent_value: a fetch that throws keeps nothing",
          "[unit][metrics]") {
  manual_clock c;
  recent_value<int> v(1s, c.fn());
  CHECK(v.get([] { return 1; }) == 1);
  c.t += 2s;
  CHECK_THROWS_AS(v.get([]() -> int { throw std::runtime_error("down"); }),
                  std::runtime_error);
  // The stale value is not served after a failed read: fetched again.
  int fetches = 0;
  CHECK(v.get([&] { return ++fetches + 1; }) == 2);
  CHECK(fetches == 1);
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
