// bgagent-bench-store: the store alone, without actors: how many tasks per
// second SQLite takes through the statements of one attempt (fetched,
// marked running with its task_started event, then completed with its
// ledger row and task_completed event), in groups of G attempts per
// transaction as the checkpointer groups what its mailbox holds. The
// checkpointer's rate in a run cannot exceed this; the gap between the two
// is the actors' share.
//
// With --shards S (one or more counts), a second table: the store side of a
// run over S store files (bench/store_pipeline.hpp): a reader and a writer
// per file, the supervisor's merged fetch, one event clock and the
// auditor's merged, strictly increasing audit log, each on its own thread,
// with at most --window tasks in flight (default 1024). "busiest us/t" is
// the CPU time of the busiest of those threads per task of the whole run,
// and its ceiling the rate that thread alone would allow with a core of its
// own: what sharding the store could reach before actors are counted.
// Each row first times the submission of the tasks (store_set's protocol
// across the files, in parts of 2,048, each file's slice on a thread of its
// own: "submit/s", with the CPU of all its threads per task).
//
// Usage: bgagent-bench-store [--tasks 100000] [--groups 16,64,256]
//                            [--sync full,normal] [--shards 1,2,4,8]
//                            [--window 1024]
// Prints figures; never passes or fails on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "bench/store_pipeline.hpp"
#include "bench/task_generator.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/task.hpp"
#include "persistence/shard_map.hpp"
#include "persistence/store.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(item);
  return out;
}

double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

struct figures {
  double tasks_per_s = 0;
  double cpu_us_per_task = 0;
  double busiest_us_per_task = 0; // per task of the whole run
};

// n generated tasks (ids from `prefix`), submitted to `db`.
void submit_generated(store& db, size_t n, const std::string& prefix) {
  db.submit(bench::generated_tasks(n, prefix));
}

// Works the n tasks of `db` as the checkpointer does, G attempts per
// transaction; returns this thread's CPU seconds.
double work_through(store& db, size_t n, size_t group) {
  auto cpu0 = thread_cpu_seconds();
  db.open_run(0, 0);
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"A sentence of about the length of a summary )"
               R"(the offline provider writes for a generated task."})";
  out.provider = "offline";
  out.model = "offline";
  usage spent{120, 40, 0};
  // Each group: G tasks fetched as the supervisor fetches them, their
  // attempts marked running in one transaction, then completed in the next
  // (a worker waits for its mark before its call).
  fetch_cursor cursor;
  for (size_t b = 0; b < n; b += group) {
    size_t e = std::min(n, b + group);
    auto fetched = db.fetch_runnable(cursor, static_cast<uint32_t>(e - b));
    if (fetched.size() != e - b) {
      std::fprintf(stderr, "bgagent-bench-store: fetched %zu of %zu\n",
                   fetched.size(), e - b);
      std::exit(1);
    }
    cursor = fetch_cursor{fetched.back().priority, fetched.back().seq};
    db.begin();
    for (size_t i = b; i < e; ++i)
      db.mark_running(fetched[i - b].id, 1, held_reservation{i + 1, 500, 0},
                      make_event("task_started", fetched[i - b].id, 1,
                                 "bench"),
                      fetched[i - b].seq);
    db.commit();
    db.take_committed_events();
    db.begin();
    for (size_t i = b; i < e; ++i)
      db.mark_completed(fetched[i - b].id, 1, out, spent,
                        make_event("task_completed", fetched[i - b].id, 1,
                                   "prompt_tokens=120 completion_tokens=40"),
                        i + 1, fetched[i - b].seq);
    db.commit();
    db.take_committed_events();
    db.take_settlements();
  }
  return thread_cpu_seconds() - cpu0;
}

figures measure(size_t n, size_t group, store::sync_mode sync) {
  temp_dir dir;
  store db(dir.path("bench.db"), store::open_mode::create_if_missing, sync);
  submit_generated(db, n, "gen");
  auto wall0 = std::chrono::steady_clock::now();
  auto cpu0 = cpu_seconds();
  double busy = work_through(db, n, group);
  double wall = std::chrono::duration<double>(
                  std::chrono::steady_clock::now() - wall0)
                  .count();
  double cpu = cpu_seconds() - cpu0;
  return {n / wall, cpu * 1e6 / n, busy * 1e6 / n};
}

} // namespace

int main(int argc, char** argv) {
  size_t n = 100000, window = 1024;
  std::string groups = "16,64,256", syncs = "full,normal", shard_counts;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tasks")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--groups")
      groups = argv[i + 1];
    else if (a == "--sync")
      syncs = argv[i + 1];
    else if (a == "--shards")
      shard_counts = argv[i + 1];
    else if (a == "--window")
      window = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: bgagent-bench-store [--tasks N] "
                           "[--groups G,...] [--sync full,normal] "
                           "[--shards S,...] [--window W]\n");
      return 2;
    }
  }
  if (n == 0 || window == 0) {
    std::fprintf(stderr,
                 "bgagent-bench-store: --tasks and --window must be positive\n");
    return 2;
  }
  auto sync_of = [](const std::string& name) {
    return name == "normal" ? store::sync_mode::normal : store::sync_mode::full;
  };
  std::printf("bgagent store alone: %zu attempts (running, then completed)\n",
              n);
  std::printf("%-7s %6s | %10s %10s %11s %10s\n", "sync", "group", "tasks/s",
              "CPU us/t", "busiest us/t", "ceiling/s");
  for (auto& sync : split(syncs))
    for (auto& g : split(groups)) {
      size_t group =
        std::max<size_t>(1, std::strtoull(g.c_str(), nullptr, 10));
      auto f = measure(n, group, sync_of(sync));
      std::printf("%-7s %6zu | %10.0f %10.1f %11.1f %10.0f\n", sync.c_str(),
                  group, f.tasks_per_s, f.cpu_us_per_task,
                  f.busiest_us_per_task, 1e6 / f.busiest_us_per_task);
    }
  if (shard_counts.empty())
    return 0;
  std::printf("\nstore side of a run over S files (readers, merged fetch, "
              "writers, one event clock, merged audit log), window %zu\n",
              window);
  std::printf("%-7s %6s %6s | %10s %10s | %10s %10s %11s %-15s %10s\n",
              "sync", "group", "shards", "submit/s", "CPU us/t", "tasks/s",
              "CPU us/t", "busiest us/t", "(thread)", "ceiling/s");
  for (auto& sync : split(syncs))
    for (auto& g : split(groups))
      for (auto& sh : split(shard_counts)) {
        size_t group =
          std::max<size_t>(1, std::strtoull(g.c_str(), nullptr, 10));
        size_t shards = std::max<size_t>(
          1, std::min<size_t>(max_store_shards,
                              std::strtoull(sh.c_str(), nullptr, 10)));
        auto f = bench::run_store_pipeline(n, group, sync_of(sync), shards,
                                           window);
        auto& [busiest, busiest_us] = f.threads_us_per_task.front();
        std::printf("%-7s %6zu %6zu | %10.0f %10.1f | %10.0f %10.1f %11.1f "
                    "%-15s %10.0f\n",
                    sync.c_str(), group, shards, f.submit_per_s,
                    f.submit_cpu_us_per_task, f.tasks_per_s,
                    f.cpu_us_per_task, busiest_us, busiest.c_str(),
                    1e6 / busiest_us);
        // The next busiest: where the ceiling goes once that one is split.
        std::printf("    threads us/t:");
        for (size_t i = 0; i < f.threads_us_per_task.size() && i < 4; ++i)
          std::printf("%s %s %.1f", i ? "," : "",
                      f.threads_us_per_task[i].first.c_str(),
                      f.threads_us_per_task[i].second);
        std::printf("\n");
      }
  return 0;
}
