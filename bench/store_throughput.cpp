// bgagent-bench-store: the store alone, without actors: how many tasks per
// second SQLite takes through the statements of one attempt (fetched,
// marked running with its task_started event, then completed with its
// ledger row and task_completed event), in groups of G attempts per
// transaction as the checkpointer groups what its mailbox holds. The
// checkpointer's rate in a run cannot exceed this; the gap between the two
// is the actors' share.
//
// Usage: bgagent-bench-store [--tasks 100000] [--groups 16,64,256]
//                            [--sync full,normal]
// Prints figures; never passes or fails on time.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/task_generator.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/task.hpp"
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

struct figures {
  double tasks_per_s = 0;
  double cpu_us_per_task = 0;
};

figures measure(size_t n, size_t group, store::sync_mode sync) {
  temp_dir dir;
  store db(dir.path("bench.db"), store::open_mode::create_if_missing, sync);
  std::vector<task> tasks;
  tasks.reserve(n);
  std::stringstream lines;
  bench::write_generated_tasks(lines, n);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    task t;
    t.id = j["id"];
    t.type = j["type"];
    t.input = j["input"];
    t.idempotency_key = t.id;
    tasks.push_back(std::move(t));
  }
  db.submit(tasks);
  db.open_run(0, 0);
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"A sentence of about the length of a summary )"
               R"(the offline provider writes for a generated task."})";
  out.provider = "offline";
  out.model = "offline";
  usage spent{120, 40, 0};
  auto wall0 = std::chrono::steady_clock::now();
  auto cpu0 = cpu_seconds();
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
                                 "bench"));
    db.commit();
    db.take_committed_events();
    db.begin();
    for (size_t i = b; i < e; ++i)
      db.mark_completed(fetched[i - b].id, 1, out, spent,
                        make_event("task_completed", fetched[i - b].id, 1,
                                   "prompt_tokens=120 completion_tokens=40"),
                        i + 1);
    db.commit();
    db.take_committed_events();
    db.take_settlements();
  }
  double wall = std::chrono::duration<double>(
                  std::chrono::steady_clock::now() - wall0)
                  .count();
  double cpu = cpu_seconds() - cpu0;
  return {n / wall, cpu * 1e6 / n};
}

} // namespace

int main(int argc, char** argv) {
  size_t n = 100000;
  std::string groups = "16,64,256", syncs = "full,normal";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tasks")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--groups")
      groups = argv[i + 1];
    else if (a == "--sync")
      syncs = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: bgagent-bench-store [--tasks N] "
                           "[--groups G,...] [--sync full,normal]\n");
      return 2;
    }
  }
  if (n == 0) {
    std::fprintf(stderr, "bgagent-bench-store: --tasks must be positive\n");
    return 2;
  }
  std::printf("bgagent store alone: %zu attempts (running, then completed)\n",
              n);
  std::printf("%-7s %6s | %10s %10s %10s\n", "sync", "group", "tasks/s",
              "CPU us/t", "ceiling/s");
  for (auto& sync : split(syncs))
    for (auto& g : split(groups)) {
      size_t group = std::strtoull(g.c_str(), nullptr, 10);
      if (group == 0)
        group = 1;
      auto f = measure(n, group, sync == "normal" ? store::sync_mode::normal
                                                  : store::sync_mode::full);
      std::printf("%-7s %6zu | %10.0f %10.1f %10.0f\n", sync.c_str(), group,
                  f.tasks_per_s, f.cpu_us_per_task,
                  1e6 / f.cpu_us_per_task);
    }
  return 0;
}
