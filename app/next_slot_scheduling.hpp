// The scheduling policy of bgagent's CAF scheduler: CAF's work sharing (one
// queue for all scheduler threads) with a "next" slot per thread, as Go's
// and Tokio's schedulers have. Include only from .cpp files: it pulls in
// CAF's scheduler.
//
// Why: a task's life is a chain of messages (gateway -> worker -> gateway
// -> ...). Under plain work sharing each message that wakes an actor pushes
// it on the shared queue and wakes another sleeping thread, while the
// sending thread, its own actor done, finds the queue empty and sleeps: two
// threads take turns on one core with a context switch per message
// (perf sched showed 4 us runs alternating). Work stealing keeps the chain on
// one thread but its idle threads poll (more CPU per task on few cores).
//
// Contract (CAF 0.17's scheduler policy concept):
// - An actor woken by a message sent from a scheduler thread (an actor's
//   send() on it) goes to that thread's slot; the actor that held the slot
//   goes to the shared queue, where any thread may take it. The thread runs
//   its slot next, without a lock or a wake-up.
// - Every other job (sent from outside the scheduler: a detached actor, a
//   timer, the main thread; or an actor that yielded) goes to the shared
//   queue, FIFO, and wakes one sleeping thread.
// - After `max_streak` slot jobs in a row a thread moves its slot job to the
//   back of the shared queue and takes the queue's head: two actors that
//   keep waking each other cannot starve the queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace bgagent {

class next_slot_scheduling : public caf::policy::unprofiled {
public:
  static constexpr int max_streak = 16;

  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::deque<caf::resumable*> queue;
    std::mutex lock;
    std::condition_variable cv;
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    worker_data(const worker_data&) {}
    // Set by the worker's thread before it runs its first job. CAF may
    // call a worker's exec_later() from another thread (a response promise
    // delivered, or cleanup run, outside the actor's own run: the context
    // is then the worker that last ran it): that job goes to the shared
    // queue.
    std::atomic<std::thread::id> owner{};
    caf::resumable* next = nullptr; // touched by the owner only
    int streak = 0;
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    push_shared(self, job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    push_shared(self->parent(), job);
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    auto& w = d(self);
    if (w.owner.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      push_shared(self->parent(), job);
      return;
    }
    if (w.next != nullptr)
      push_shared(self->parent(), w.next);
    w.next = job;
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    push_shared(self->parent(), job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& w = d(self);
    if (w.owner.load(std::memory_order_relaxed) == std::thread::id{})
      w.owner.store(std::this_thread::get_id(), std::memory_order_relaxed);
    if (w.next != nullptr && w.streak < max_streak) {
      ++w.streak;
      auto job = w.next;
      w.next = nullptr;
      return job;
    }
    w.streak = 0;
    auto& c = d(self->parent());
    std::unique_lock<std::mutex> guard(c.lock);
    if (w.next != nullptr) { // the streak's end: the queue's turn
      c.queue.push_back(w.next);
      w.next = nullptr;
    }
    c.cv.wait(guard, [&] { return !c.queue.empty(); });
    auto job = c.queue.front();
    c.queue.pop_front();
    bool more = !c.queue.empty();
    guard.unlock();
    if (more) // (cheap insurance: a sleeping thread sees what is left)
      c.cv.notify_one();
    return job;
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    auto& w = d(self);
    if (w.next != nullptr) {
      auto job = w.next;
      w.next = nullptr;
      f(job);
    }
  }

  // Outside the lock: cleaning a job up may enqueue another (a pending
  // request bounced), which takes the lock.
  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator* self, UnaryFunction f) {
    auto& c = d(self);
    for (;;) {
      std::deque<caf::resumable*> jobs;
      {
        std::unique_lock<std::mutex> guard(c.lock);
        jobs.swap(c.queue);
      }
      if (jobs.empty())
        return;
      for (auto job : jobs)
        f(job);
    }
  }

private:
  template <class Coordinator>
  void push_shared(Coordinator* self, caf::resumable* job) {
    auto& c = d(self);
    {
      std::unique_lock<std::mutex> guard(c.lock);
      c.queue.push_back(job);
    }
    c.cv.notify_one();
  }
};

} // namespace bgagent
