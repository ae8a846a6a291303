// bgagent-bench-batch (batch_overhead.cpp): what bgagent itself costs to
// run one large provider batch (DESIGN.md section 13), the provider's own
// time left out.
//
// N summarize tasks (default 50,000: OpenAI's limit per batch) are
// submitted, then the real `bgagent run --mode batch` sends them to a
// local Files + Batches server (tests/support/batch_server.hpp, no added
// latency: each poll moves the batch one state on) and collects the
// results. The server's hooks time the phases as the server sees them:
//   build + upload   the run's start to the upload received (open the
//                    store, fetch, render each request line, reserve each
//                    task, store the batch row and its tasks, send the file)
//   provider         the create to the first download asked for: polls, and
//                    the server computing every answer: not bgagent's
//   download + apply the first download to the run's exit (parse each
//                    line, validate each answer against its schema, commit
//                    results, ledger rows and audit events)
// and prints bgagent's overhead (wall time minus the provider's part) and
// the run's peak RSS, against the target (< 10 s, < 300 MB on 2
// cores).
//
// Usage: bgagent-bench-batch [--tasks N] [--rounds R]
// Prints figures; never passes or fails on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/child_process.hpp"
#include "tests/support/batch_server.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

std::string make_dir() {
  auto tmpl = (std::filesystem::temp_directory_path() / "bgagent-bench-XXXXXX")
                .string();
  if (!mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// Tasks of a few hundred bytes each, all summarize (the server answers
// every request with a valid summary).
void write_tasks(const std::string& path, size_t n) {
  std::ofstream out(path);
  for (size_t i = 1; i <= n; ++i)
    out << nlohmann::json{{"id", "t" + std::to_string(i)},
                          {"type", "summarize"},
                          {"input",
                           "Review " + std::to_string(i) +
                             ": the delivery came two days late and the box "
                             "was dented, but the product itself works as "
                             "described, the battery lasts a full day and "
                             "support answered my question within an hour. "
                             "I would buy from this shop again, though I "
                             "hope the courier does better next time."}}
             .dump()
        << "\n";
}

// The child's peak RSS so far (VmHWM), MB; 0 when it cannot be read.
double peak_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0)
      return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

double seconds(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

int main(int argc, char** argv) {
  size_t tasks = 50000;
  size_t rounds = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--tasks" && i + 1 < argc)
      tasks = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--rounds" && i + 1 < argc)
      rounds = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::cerr << "usage: bgagent-bench-batch [--tasks N] [--rounds R]\n";
      return 2;
    }
  }
  std::printf("one provider batch of %zu requests, %zu round(s); target: "
              "overhead < 10 s, peak RSS < 300 MB\n\n",
              tasks, rounds);
  std::printf("%-6s %8s %14s %10s %16s %10s %9s %9s %9s %5s\n", "round",
              "submit", "build+upload", "provider", "download+apply",
              "overhead", "wall", "RSS up", "peak RSS", "exit");
  for (size_t round = 1; round <= rounds; ++round) {
    auto dir = make_dir();
    write_tasks(dir + "/tasks.jsonl", tasks);
    bgagent::testing::batch_server server;
    std::mutex m;
    clock_type::time_point uploaded, created, downloading;
    bool seen_download = false;
    pid_t pid = 0;
    double peak_at_upload = 0, peak_at_download = 0;
    server.hook = [&](const std::string& what) {
      std::lock_guard<std::mutex> lock(m);
      auto now = clock_type::now();
      if (what == "upload") {
        uploaded = now;
        peak_at_upload = peak_mb(pid);
      }
      else if (what == "create")
        created = now;
      else if (what == "content" && !seen_download) {
        seen_download = true;
        downloading = now;
        peak_at_download = peak_mb(pid);
      }
    };
    bgagent::bench::env_list env{
      {"LLM_PROVIDER", "openai"},
      {"LLM_BASE_URL", server.base_url()},
      {"MODEL", "gpt-bench"},
      {"BG_AGENT_PRICE_PROMPT", "1"},
      {"BG_AGENT_PRICE_COMPLETION", "2"},
      {"BG_AGENT_COST_BUDGET", "1000"},
      {"BG_AGENT_TOKEN_BUDGET", "1000000000"},
      {"BG_AGENT_BATCH_POLL", "0.05"},
      {"BG_AGENT_MODE", "batch"},
      {"BG_AGENT_DB", dir + "/bench.db"},
      {"BG_AGENT_AUDIT_LOG", dir + "/audit.jsonl"},
      {"BG_AGENT_ALERTS_LOG", dir + "/alerts.jsonl"}};
    auto submit = bgagent::bench::run_measured(
      {BGAGENT_BINARY, "submit", dir + "/tasks.jsonl"}, env,
      dir + "/submit.log");
    bgagent::bench::running_child child;
    {
      std::lock_guard<std::mutex> lock(m);
      child = bgagent::bench::start_child({BGAGENT_BINARY, "run"}, env,
                                          dir + "/run.log", dir);
      pid = child.pid;
    }
    auto run = bgagent::bench::wait_child(child);
    auto ended = clock_type::now();
    std::lock_guard<std::mutex> lock(m);
    double provider = seconds(created, downloading);
    std::printf("%-6zu %7.2fs %13.2fs %9.2fs %15.2fs %9.2fs %8.2fs %6.0f MB "
                "%6.0f MB %5d\n",
                round, submit.wall_seconds, seconds(child.started, uploaded),
                provider, seconds(downloading, ended),
                run.wall_seconds - provider, run.wall_seconds,
                std::max(peak_at_upload, peak_at_download), run.peak_rss_mb,
                run.exit_code);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
