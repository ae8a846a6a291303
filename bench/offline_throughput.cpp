// bgagent-bench-offline: durable tasks per second with the offline provider.
//
// For each task count it generates a task file, then times the real
// `bgagent submit` and `bgagent run` as separate processes on a fresh
// database, and prints tasks/s, CPU per task and peak RSS. Per-task cost
// must stay flat as the queue grows, so the last line compares the largest
// run's rate with the smallest's. Figures, not a pass/fail test: the
// machines are shared, so compare rows of one run with each other.
//
// With --baseline (another bgagent binary, e.g. the previous release) and
// --sync full,normal, every row is measured for each variant in turn, the
// variants interleaved --rounds times, and the median of each is printed
// with its ratio to the first variant: side by side, on one machine, at
// one time.
//
// --jobs builtin,custom runs each row on the built-in types (the generated
// mix of summarize, analyze_sentiment and extract_entities) and on a
// user's type (ticket routing: a types file with a prompt template, a var
// and a JSON Schema with an enum, a bounded integer and a pattern), so the
// cost of rendering and schema validation shows as a ratio.
//
// Usage: bgagent-bench-offline [--sizes 10000,30000,100000] [--workers 64[,8]]
//                              [--bgagent PATH] [--baseline PATH]
//                              [--sync full[,normal]] [--jobs builtin[,custom]]
//                              [--rounds N] [--celery PATH] [--shards S,...]
//
// --shards 1,4,8 runs each of this binary's rows on a store of that many
// files (BG_AGENT_SHARDS): one writer thread per file (bg.checkpoint<k>).
//
// Each row also prints the CPU time of the run's busiest thread per task
// ("busy us/t") and the rate that thread alone would allow ("ceiling/s" =
// 1,000,000 / busy us/t): the serial path's limit, whatever the cores;
// under it, the run's CPU per task by thread name (the checkpointer, CAF's
// scheduler threads, the auditor, the store reader...).
// --celery runs ../shared/peers/celery_bench.py (Celery 5 + Redis, Debian's
// /usr/bin/python3) on each size and prints its end-to-end rate beside
// bgagent's overall (submit + run) rate.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/child_process.hpp"
#include "bench/task_generator.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent::bench;

namespace {

std::vector<size_t> parse_list(const std::string& text, const char* flag) {
  std::vector<size_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0) {
      std::cerr << "bgagent-bench-offline: " << flag
                << " expects positive integers separated by commas, got '"
                << text << "'\n";
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

// The "completed N" line of bgagent's run summary (N grouped: "100,000").
size_t completed_in(const std::string& log_path) {
  std::ifstream in(log_path);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("completed ");
    if (at == std::string::npos || line.find("run ") != std::string::npos)
      continue;
    size_t n = 0;
    for (auto i = line.find_first_not_of(' ', at + 10); i < line.size(); ++i) {
      if (line[i] == ',')
        continue;
      if (line[i] < '0' || line[i] > '9')
        break;
      n = n * 10 + static_cast<size_t>(line[i] - '0');
    }
    return n;
  }
  return 0;
}

struct row {
  size_t tasks = 0, workers = 0;
  measured_run submit, run;
};

// One binary with its settings and the job it runs.
struct variant {
  std::string label;
  std::string binary;
  env_list env;
  bool custom = false; // the user's type instead of the built-in ones
};

const char* custom_types_yaml = R"YAML(
route:
  system: |
    You triage support tickets for an online shop. Answer with JSON only.
  prompt: |
    Customer tier: {{tier}}
    Ticket:
    {{input}}
  schema:
    type: object
    required: [queue, urgency, summary]
    properties:
      queue: {enum: [billing, shipping, returns, product_question, bug, other]}
      urgency: {type: integer, minimum: 1, maximum: 5}
      summary: {type: string, minLength: 1, maxLength: 200}
      ticket_ref: {type: string, pattern: "^[A-Z]{3}$"}
    additionalProperties: false
  max_tokens: 200
)YAML";

// The generated tasks as tickets of the user's type.
void write_custom_tasks(const std::string& builtin_path,
                        const std::string& path) {
  static const char* tiers[] = {"standard", "gold", "platinum"};
  std::ifstream in(builtin_path);
  std::ofstream out(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    auto j = nlohmann::json::parse(line);
    j["type"] = "route";
    j["vars"] = {{"tier", tiers[n % 3]}};
    out << j.dump() << "\n";
  }
}

row measure(const variant& v, size_t tasks, size_t workers) {
  const std::string& binary = v.binary;
  bgagent::temp_dir dir;
  write_generated_tasks_file(dir.path("tasks.jsonl"), tasks);
  if (v.custom) {
    std::ofstream(dir.path("types.yaml")) << custom_types_yaml;
    write_custom_tasks(dir.path("tasks.jsonl"), dir.path("custom.jsonl"));
    std::rename(dir.path("custom.jsonl").c_str(),
                dir.path("tasks.jsonl").c_str());
  }
  env_list env = {{"BG_AGENT_TOKEN_BUDGET", "100000000000"},
                  {"BG_AGENT_COST_BUDGET", "1000000"},
                  {"BG_AGENT_AUDIT_LOG", dir.path("audit.jsonl")},
                  {"BG_AGENT_ALERTS_LOG", dir.path("alerts.jsonl")},
                  {"BG_AGENT_ALERT_WEBHOOK", ""},
                  {"LLM_PROVIDER", "offline"}};
  env.insert(env.end(), v.env.begin(), v.env.end());
  if (v.custom)
    env.emplace_back("BG_AGENT_TYPES", dir.path("types.yaml"));
  row r{tasks, workers, {}, {}};
  r.submit = run_measured({binary, "submit", dir.path("tasks.jsonl"), "--db",
                           dir.path("bench.db")},
                          env, dir.path("submit.log"));
  r.run = run_measured({binary, "run", "--db", dir.path("bench.db"),
                        "--workers", std::to_string(workers)},
                       env, dir.path("run.log"));
  size_t done = completed_in(dir.path("run.log"));
  if (r.submit.exit_code != 0 || r.run.exit_code != 0 || done != tasks) {
    std::cerr << "bgagent-bench-offline: run of " << tasks
              << " tasks failed (submit exit " << r.submit.exit_code
              << ", run exit " << r.run.exit_code << ", completed " << done
              << "); log follows\n";
    std::ifstream log(dir.path("run.log"));
    std::cerr << log.rdbuf();
    std::exit(1);
  }
  return r;
}

}  // namespace

// Celery 5 + Redis on n tasks of the same shape: its end-to-end tasks/s.
double celery_rate(const std::string& script, size_t n) {
  bgagent::temp_dir dir;
  auto got = run_measured({"/usr/bin/python3", script, std::to_string(n),
                           "--concurrency", "2"},
                          {}, dir.path("celery.log"));
  std::ifstream in(dir.path("celery.log"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  auto at = text.find("end-to-end ");
  if (got.exit_code != 0 || at == std::string::npos) {
    std::cerr << "bgagent-bench-offline: " << script << " failed (exit "
              << got.exit_code << "):\n" << text;
    std::exit(1);
  }
  return std::strtod(text.c_str() + at + 11, nullptr);
}

// Under a row: the run's CPU per task by thread name, largest first (the
// threads that used at least 1 % of it), e.g.
//   threads us/t: bg.checkpoint 31.2, caf.multiplexer x2 28.4, ...
void print_thread_shares(const measured_run& run, size_t tasks) {
  std::vector<std::pair<double, std::string>> by_cpu;
  double total = 0;
  for (auto& [name, group] : run.cpu_by_thread_name) {
    by_cpu.emplace_back(group.cpu_seconds, name);
    total += group.cpu_seconds;
  }
  std::sort(by_cpu.rbegin(), by_cpu.rend());
  std::printf("    threads us/t:");
  const char* sep = " ";
  for (auto& [seconds, name] : by_cpu) {
    if (seconds < total * 0.01)
      continue;
    int count = run.cpu_by_thread_name.at(name).threads;
    std::printf("%s%s", sep, name.c_str());
    if (count > 1)
      std::printf(" x%d", count);
    std::printf(" %.1f", seconds * 1e6 / tasks);
    sep = ", ";
  }
  std::printf("\n");
}

// The row with the median run rate.
row median(std::vector<row> rs) {
  std::sort(rs.begin(), rs.end(), [](const row& a, const row& b) {
    return a.run.wall_seconds < b.run.wall_seconds;
  });
  return rs[rs.size() / 2];
}

std::vector<std::string> parse_words(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(item);
  return out;
}

int main(int argc, char** argv) {
  std::string binary = BGAGENT_BINARY;
  std::string baseline;
  std::vector<std::string> syncs;
  std::vector<std::string> jobs = {"builtin"};
  std::vector<size_t> sizes = {10000, 30000, 100000};
  std::vector<size_t> workers = {64};
  std::vector<size_t> shards; // empty: the store's default (one file)
  size_t rounds = 1;
  std::string celery;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--sizes" && has_value)
      sizes = parse_list(argv[++i], "--sizes");
    else if (arg == "--workers" && has_value)
      workers = parse_list(argv[++i], "--workers");
    else if (arg == "--rounds" && has_value)
      rounds = parse_list(argv[++i], "--rounds").front();
    else if (arg == "--bgagent" && has_value)
      binary = argv[++i];
    else if (arg == "--baseline" && has_value)
      baseline = argv[++i];
    else if (arg == "--sync" && has_value)
      syncs = parse_words(argv[++i]);
    else if (arg == "--celery" && has_value)
      celery = argv[++i];
    else if (arg == "--jobs" && has_value)
      jobs = parse_words(argv[++i]);
    else if (arg == "--shards" && has_value)
      shards = parse_list(argv[++i], "--shards");
    else {
      std::cerr << "usage: bgagent-bench-offline [--sizes N,N,...] "
                   "[--workers W,...] [--bgagent PATH] [--baseline PATH] "
                   "[--sync full,normal] [--jobs builtin,custom] "
                   "[--rounds N] [--celery PATH] [--shards S,...]\n";
      return 2;
    }
  }
  std::vector<variant> variants;
  if (!baseline.empty())
    variants.push_back({"baseline", baseline, {}});
  if (syncs.empty())
    syncs.push_back("");
  for (auto& job : jobs) {
    if (job != "builtin" && job != "custom") {
      std::cerr << "bgagent-bench-offline: --jobs takes builtin and custom\n";
      return 2;
    }
    for (auto& sync : syncs) {
      variant v{"this", binary, {}, job == "custom"};
      if (!sync.empty()) {
        v.label = "sync=" + sync;
        v.env.emplace_back("BG_AGENT_SYNC", sync);
      }
      if (jobs.size() > 1 || v.custom)
        v.label += " " + job;
      variants.push_back(v);
    }
  }
  // Each of this binary's variants on a store of each count of files
  // (BG_AGENT_SHARDS, given to submit, which makes the store).
  if (!shards.empty()) {
    std::vector<variant> split;
    for (auto& v : variants) {
      if (v.label == "baseline") {
        split.push_back(v);
        continue;
      }
      for (auto n : shards) {
        auto w = v;
        w.label += " S=" + std::to_string(n);
        w.env.emplace_back("BG_AGENT_SHARDS", std::to_string(n));
        split.push_back(w);
      }
    }
    variants = std::move(split);
  }
  std::printf("bgagent offline throughput: %s", binary.c_str());
  if (!baseline.empty())
    std::printf(" (baseline %s)", baseline.c_str());
  std::printf(", median of %zu round(s)\n", rounds);
  std::printf("%-18s %8s %7s | %10s %8s | %10s %8s %9s %9s %10s | %10s | "
              "%6s\n",
              "variant", "tasks", "workers", "submit/s", "RSS MB", "run/s",
              "RSS MB", "CPU us/t", "busy us/t", "ceiling/s", "overall/s",
              "ratio");
  std::vector<row> rows;
  for (size_t w : workers) {
    for (size_t n : sizes) {
      std::vector<std::vector<row>> got(variants.size());
      for (size_t k = 0; k < rounds; ++k)
        for (size_t v = 0; v < variants.size(); ++v)
          got[v].push_back(measure(variants[v], n, w));
      double first_rate = 0;
      for (size_t v = 0; v < variants.size(); ++v) {
        row r = median(got[v]);
        if (v + 1 == variants.size())
          rows.push_back(r);
        double rate = n / r.run.wall_seconds;
        if (v == 0)
          first_rate = rate;
        double busy_us = r.run.busiest_thread_cpu_seconds * 1e6 / n;
        std::printf("%-18s %8zu %7zu | %10.0f %8.1f | %10.0f %8.1f %9.1f "
                    "%9.1f %10.0f | %10.0f | %6.2f\n",
                    variants[v].label.c_str(), n, w,
                    n / r.submit.wall_seconds, r.submit.peak_rss_mb, rate,
                    r.run.peak_rss_mb, r.run.cpu_seconds * 1e6 / n, busy_us,
                    busy_us > 0 ? 1e6 / busy_us : 0.0,
                    n / (r.submit.wall_seconds + r.run.wall_seconds),
                    rate / first_rate);
        print_thread_shares(r.run, n);
        std::fflush(stdout);
      }
      if (!celery.empty() && w == workers.front()) {
        double rate = celery_rate(celery, n);
        std::printf("%-18s %8zu %7s | %10s %8s | %10s %8s %9s %9s %10s | "
                    "%10.0f | %6s\n",
                    "celery+redis", n, "-", "-", "-", "-", "-", "-", "-", "-",
                    rate, "");
        std::fflush(stdout);
      }
    }
  }
  // Flatness: the largest run's per-task rate against the smallest's.
  for (size_t w : workers) {
    const row* small = nullptr;
    const row* large = nullptr;
    for (auto& r : rows) {
      if (r.workers != w)
        continue;
      if (!small || r.tasks < small->tasks)
        small = &r;
      if (!large || r.tasks > large->tasks)
        large = &r;
    }
    if (small && large && small != large)
      std::printf("workers %zu: run rate at %zu tasks is %.2fx the rate at %zu "
                  "tasks (1.00 = flat)\n",
                  w, large->tasks,
                  (large->tasks / large->run.wall_seconds) /
                    (small->tasks / small->run.wall_seconds),
                  small->tasks);
  }
  return 0;
}
