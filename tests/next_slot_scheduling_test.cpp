// The scheduling policy on stand-ins for CAF's coordinator and worker:
// which job a thread runs next, and where jobs go, without threads of CAF.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>
#include <vector>

#include "app/next_slot_scheduling.hpp"

using bgagent::next_slot_scheduling;

namespace {

struct job : caf::resumable {
  explicit job(int n) : id(n) {}
  resume_result resume(caf::execution_unit*, size_t) override { return done; }
  void intrusive_ptr_add_ref_impl() override {}
  void intrusive_ptr_release_impl() override {}
  int id;
};

struct fake_coordinator {
  next_slot_scheduling::coordinator_data data_{nullptr};
  next_slot_scheduling::coordinator_data& data() { return data_; }
};

struct fake_worker {
  fake_coordinator* parent_;
  next_slot_scheduling::worker_data data_{nullptr};
  fake_coordinator* parent() { return parent_; }
  next_slot_scheduling::worker_data& data() { return data_; }
};

struct fixture {
  next_slot_scheduling policy;
  fake_coordinator coord;
  fake_worker worker{&coord};
  std::vector<job> jobs;
  fixture() {
    for (int i = 0; i < 40; ++i)
      jobs.emplace_back(i);
    // The worker's thread (this one) takes ownership at its first dequeue.
    policy.central_enqueue(&coord, &jobs[39]);
    next();
  }
  int next() { return static_cast<job*>(policy.dequeue(&worker))->id; }
};

} // namespace

TEST_CASE("an actor woken on a worker's thread runs next on it",
          "[unit][scheduling]") {
  fixture f;
  f.policy.central_enqueue(&f.coord, &f.jobs[0]); // shared queue
  f.policy.internal_enqueue(&f.worker, &f.jobs[1]); // the slot
  CHECK(f.next() == 1);
  CHECK(f.next() == 0);
}

TEST_CASE("a newer wake-up takes the slot and the older job joins the queue",
          "[unit][scheduling]") {
  fixture f;
  f.policy.internal_enqueue(&f.worker, &f.jobs[1]);
  f.policy.internal_enqueue(&f.worker, &f.jobs[2]);
  CHECK(f.next() == 2);
  CHECK(f.next() == 1);
  CHECK(f.coord.data_.queue.empty());
}

TEST_CASE("a wake-up from another thread goes to the shared queue",
          "[unit][scheduling]") {
  fixture f;
  std::thread other(
    [&] { f.policy.internal_enqueue(&f.worker, &f.jobs[3]); });
  other.join();
  CHECK(f.worker.data_.next == nullptr);
  REQUIRE(f.coord.data_.queue.size() == 1);
  CHECK(f.next() == 3);
}

TEST_CASE("after a streak of slot jobs the shared queue gets its turn",
          "[unit][scheduling]") {
  fixture f;
  f.policy.central_enqueue(&f.coord, &f.jobs[0]);
  // Two actors waking each other: each run puts the other in the slot.
  std::vector<int> ran;
  for (int i = 0; i < next_slot_scheduling::max_streak + 1; ++i) {
    f.policy.internal_enqueue(&f.worker, &f.jobs[1 + i % 2]);
    ran.push_back(f.next());
  }
  // The first max_streak runs came from the slot; then the queue's head.
  CHECK(ran.back() == 0);
  CHECK(std::count(ran.begin(), ran.end(), 0) == 1);
  // The slot's job was not lost: it waits at the back of the queue.
  CHECK(f.next() == 1 + next_slot_scheduling::max_streak % 2);
}

TEST_CASE("at shutdown the slot and the queue are both handed over",
          "[unit][scheduling]") {
  fixture f;
  f.policy.central_enqueue(&f.coord, &f.jobs[5]);
  f.policy.internal_enqueue(&f.worker, &f.jobs[6]);
  std::vector<int> seen;
  auto take = [&](caf::resumable* r) {
    int id = static_cast<job*>(r)->id;
    seen.push_back(id);
    // Cleaning job 5 up enqueues another (a pending request bounced):
    // no deadlock on the queue's lock, and that one is handed over too.
    if (id == 5)
      f.policy.central_enqueue(&f.coord, &f.jobs[7]);
  };
  f.policy.foreach_resumable(&f.worker, take);
  f.policy.foreach_central_resumable(&f.coord, take);
  CHECK(seen == std::vector<int>{6, 5, 7});
}
