#include "bench/store_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "bench/task_generator.hpp"
#include "messages/json_codec.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/shard_map.hpp"
#include "persistence/store_set.hpp"
#include "policy/event_merge.hpp"
#include "policy/shard_merge.hpp"
#include "tests/temp_dir.hpp"

namespace bgagent::bench {

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double process_cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "bgagent-bench-store: %s\n", why.c_str());
  std::exit(1);
}

// A mailbox: what an actor's would be, for one receiving thread.
template <class T>
class channel {
public:
  void push(T x) {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(std::move(x));
    }
    cv_.notify_one();
  }
  void close() {
    {
      std::lock_guard<std::mutex> g(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // Up to `most` items; waits at most `wait` for the first. Empty: none
  // came in time, or closed (then `closed` is set).
  std::vector<T> take(size_t most, std::chrono::milliseconds wait,
                      bool& closed) {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait_for(g, wait, [&] { return !q_.empty() || closed_; });
    std::vector<T> out;
    while (!q_.empty() && out.size() < most) {
      out.push_back(std::move(q_.front()));
      q_.pop_front();
    }
    closed = closed_ && q_.empty();
    return out;
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> q_;
  bool closed_ = false;
};

struct fetch_request {
  fetch_cursor after;
  uint32_t limit;
  uint64_t ticket;
};
struct fetch_answer {
  size_t shard;
  uint64_t ticket;
  std::vector<task> tasks;
  bool exhausted;
};
struct tasks_done {
  size_t count;
};
using supervisor_mail = std::variant<fetch_answer, tasks_done>;
struct audit_report {
  size_t shard;
  std::vector<committed_event> events;
  uint64_t floor;
};

} // namespace

pipeline_figures run_store_pipeline(size_t n, size_t group,
                                    store::sync_mode sync, size_t shards,
                                    size_t window) {
  temp_dir dir;
  auto db = dir.path("bench.db");
  auto clock = std::make_shared<event_clock>();
  // The files of one store, its tasks numbered across them.
  store_set set(db, store::open_mode::create_if_missing,
                static_cast<uint32_t>(shards), sync);
  std::vector<store*> writers_db;
  for (size_t k = 0; k < shards; ++k) {
    writers_db.push_back(&set.at(static_cast<uint32_t>(k)));
    if (shards > 1)
      writers_db.back()->use_event_clock(clock);
  }
  pipeline_figures out;
  {
    auto tasks = generated_tasks(n, "gen");
    auto wall0 = std::chrono::steady_clock::now();
    auto cpu0 = process_cpu_seconds(); // the files' threads included
    set.begin_submission("bench", store::on_conflict::error);
    for (size_t i = 0; i < n; i += 2048) {
      std::vector<task> part(tasks.begin() + static_cast<long>(i),
                             tasks.begin() +
                               static_cast<long>(std::min(n, i + 2048)));
      if (auto rep = set.submit_part(part); !rep.error.empty())
        fail("submit: " + rep.error);
    }
    if (auto counts = set.end_submission(); !counts.error.empty())
      fail("submit: " + counts.error);
    double wall = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - wall0)
                    .count();
    out.submit_per_s = static_cast<double>(n) / wall;
    out.submit_cpu_us_per_task =
      (process_cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n);
  }
  std::vector<std::unique_ptr<store>> readers_db;
  for (auto& w : writers_db) {
    w->open_run(0, 0);
    w->take_committed_events(); // the submit's: written before the run
  }
  for (size_t k = 0; k < shards; ++k)
    readers_db.push_back(std::make_unique<store>(
      shard_file(db, static_cast<uint32_t>(k)), store::open_mode::read_only,
      sync, store::membership::in_set));
  // Where every file stands: each writer vouches for what follows.
  uint64_t start_floor = 1;
  for (auto& w : writers_db)
    start_floor = std::max(start_floor, w->last_event_seq() + 1);
  clock->raise(start_floor - 1);

  std::vector<channel<fetch_request>> to_reader(shards);
  std::vector<channel<task>> to_writer(shards);
  channel<supervisor_mail> to_supervisor;
  channel<audit_report> to_auditor;
  std::vector<std::pair<std::string, double>> busy; // name, CPU seconds
  std::mutex busy_m;
  auto note_busy = [&](std::string name, double cpu) {
    std::lock_guard<std::mutex> g(busy_m);
    busy.emplace_back(std::move(name), cpu);
  };
  const uint32_t limit = static_cast<uint32_t>(
    std::min<size_t>(2048, std::max<size_t>(window / shards, 64)));
  size_t lines_written = 0;

  auto wall0 = std::chrono::steady_clock::now();
  auto cpu0 = process_cpu_seconds();
  std::vector<std::thread> threads;
  for (size_t k = 0; k < shards; ++k) {
    threads.emplace_back([&, k] { // the reader of file k
      auto cpu = thread_cpu_seconds();
      bool closed = false;
      while (!closed)
        for (auto& r : to_reader[k].take(1, std::chrono::milliseconds(100),
                                         closed)) {
          auto got = readers_db[k]->fetch_runnable(r.after, r.limit);
          bool exhausted = got.size() < r.limit;
          to_supervisor.push(
            fetch_answer{k, r.ticket, std::move(got), exhausted});
        }
      note_busy("bg.reader" + std::to_string(k), thread_cpu_seconds() - cpu);
    });
    threads.emplace_back([&, k] { // the writer of file k
      auto cpu = thread_cpu_seconds();
      auto& db = *writers_db[k];
      call_outcome out;
      out.ok = true;
      out.result = R"({"summary":"A sentence of about the length of a )"
                   R"(summary the offline provider writes for a task."})";
      out.provider = "offline";
      out.model = "offline";
      usage spent{120, 40, 0};
      // One file: this writer alone numbers its events (max + 1), so the
      // seq after its last is its floor.
      uint64_t own_floor = start_floor;
      auto report = [&] {
        auto events = db.take_committed_events();
        if (!events.empty())
          own_floor = events.back().seq + 1;
        uint64_t floor = shards > 1 ? clock->next() : own_floor;
        to_auditor.push(audit_report{k, std::move(events), floor});
      };
      bool closed = false;
      uint64_t reservation = 0;
      while (!closed) {
        // At most 4,096 a group: a store without a clock keeps only the
        // last 4,096 events of a transaction in memory.
        auto batch = to_writer[k].take(std::min<size_t>(group, 4096),
                                       std::chrono::milliseconds(5), closed);
        if (batch.empty()) {
          report(); // idle: a fresh floor, so the auditor is not held back
          continue;
        }
        uint64_t first_reservation = reservation + 1;
        db.begin();
        for (auto& t : batch)
          db.mark_running(t.id, 1,
                          held_reservation{++reservation, 500, 0},
                          make_event("task_started", t.id, 1, "bench"),
                          t.seq);
        db.commit();
        report();
        db.begin();
        for (size_t i = 0; i < batch.size(); ++i)
          db.mark_completed(
            batch[i].id, 1, out, spent,
            make_event("task_completed", batch[i].id, 1,
                       "prompt_tokens=120 completion_tokens=40"),
            first_reservation + i, batch[i].seq);
        db.commit();
        report();
        db.take_settlements();
        to_supervisor.push(tasks_done{batch.size()});
      }
      report(); // the last floor
      note_busy("bg.checkpoint" + std::to_string(k),
                thread_cpu_seconds() - cpu);
    });
  }
  threads.emplace_back([&] { // the auditor
    auto cpu = thread_cpu_seconds();
    event_merge merge(shards, start_floor);
    jsonl_writer log(dir.path("audit.jsonl"));
    uint64_t last = 0;
    bool closed = false;
    while (!closed) {
      for (auto& r : to_auditor.take(256, std::chrono::milliseconds(100),
                                     closed))
        if (!merge.add(r.shard, std::move(r.events), r.floor))
          fail("shard " + std::to_string(r.shard) +
               " reported events out of its contract");
      for (auto& e : merge.take_ready()) {
        if (e.seq <= last)
          fail("audit seq " + std::to_string(e.seq) + " after " +
               std::to_string(last));
        last = e.seq;
        log.append(audit_line(e.event, e.seq, e.ts));
        ++lines_written;
      }
      log.flush();
    }
    if (merge.waiting() != 0)
      fail(std::to_string(merge.waiting()) + " audit events never written");
    note_busy("bg.auditor", thread_cpu_seconds() - cpu);
  });
  { // the supervisor, on this thread
    auto cpu = thread_cpu_seconds();
    shard_merge<task> merge(shards, limit / 2);
    size_t in_flight = 0, dispatched = 0, done = 0;
    while (done < n) {
      for (auto k : merge.to_fetch())
        to_reader[k].push(
          fetch_request{merge.cursor(k), limit, merge.fetching(k)});
      while (in_flight < window)
        if (auto t = merge.next()) {
          auto k = shard_of(t->id, static_cast<uint32_t>(shards));
          to_writer[k].push(std::move(*t));
          ++in_flight;
          ++dispatched;
        } else {
          break;
        }
      if (merge.drained() && dispatched < n)
        fail("fetched " + std::to_string(dispatched) + " of " +
             std::to_string(n) + " tasks");
      bool closed = false;
      for (auto& mail : to_supervisor.take(
             1024, std::chrono::milliseconds(100), closed)) {
        if (auto* a = std::get_if<fetch_answer>(&mail)) {
          merge.fetched(a->shard, a->ticket, std::move(a->tasks),
                        a->exhausted);
        } else {
          auto count = std::get<tasks_done>(mail).count;
          in_flight -= count;
          done += count;
        }
      }
    }
    note_busy("supervisor", thread_cpu_seconds() - cpu);
  }
  for (auto& c : to_reader)
    c.close();
  for (auto& c : to_writer)
    c.close();
  // The writers send their last floors before they end; then the auditor.
  for (size_t i = 0; i < 2 * shards; ++i)
    threads[i].join();
  to_auditor.close();
  threads.back().join();
  double wall = std::chrono::duration<double>(
                  std::chrono::steady_clock::now() - wall0)
                  .count();
  double cpu = process_cpu_seconds() - cpu0;
  // Two lines a task (started, completed), every one written once.
  if (lines_written != 2 * n)
    fail("wrote " + std::to_string(lines_written) + " audit lines for " +
         std::to_string(n) + " tasks");
  out.tasks_per_s = n / wall;
  out.cpu_us_per_task = cpu * 1e6 / n;
  for (auto& [name, secs] : busy)
    out.threads_us_per_task.emplace_back(name, secs * 1e6 / n);
  std::sort(out.threads_us_per_task.begin(), out.threads_us_per_task.end(),
            [](auto& a, auto& b) { return a.second > b.second; });
  return out;
}

} // namespace bgagent::bench
