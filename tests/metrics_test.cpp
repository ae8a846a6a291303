// The Prometheus endpoint: the text format as a unit, and a real head
// scraped over HTTP while worker nodes run.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <map>
#include <sstream>
#include <atomic>
#include <thread>
#include <vector>

#include <httplib.h>

#include "actors/monitor.hpp"
#include "app/prometheus.hpp"
#include "messages/run.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// Parses the exposition format: sample name (with labels) -> value; every
// line that is not a comment must be "name value".
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    auto sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

std::string scrape(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30, 0);
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200)
    return {};
  CHECK(res->get_header_value("Content-Type").find("text/plain") == 0);
  return res->body;
}

} // namespace

TEST_CASE("metrics are rendered in the Prometheus text format",
          "[metrics]") {
  metrics_snapshot m;
  m.completed = 7;
  m.retries = 2;
  m.quarantined = 1;
  m.restarts = 3;
  m.in_flight = 4;
  m.workers = 6;
  m.nodes = 2;
  m.budget.tokens_used = 1200;
  m.budget.tokens_limit = 50000;
  m.budget.cost_used = 0.25;
  m.budget.cost_limit = 1;
  m.latency_buckets.assign(latency_bucket_bounds().size(), 0);
  m.latency_buckets.back() = 5;
  m.latency_buckets[latency_bucket_bounds().size() - 2] = 5;
  m.latency_count = 5;
  m.latency_sum_seconds = 2.5;
  status_report rep;
  rep.tasks.pending = 10;
  rep.tasks.completed = 7;
  auto text = prometheus_text(m, rep);
  auto v = parse(text);
  CHECK(v.at("bgagent_tasks{state=\"pending\"}") == 10);
  CHECK(v.at("bgagent_tasks{state=\"completed\"}") == 7);
  CHECK(v.at("bgagent_tasks{state=\"quarantined\"}") == 0);
  CHECK(v.at("bgagent_attempts_total") == 9); // 5 finished + 4 in flight
  CHECK(v.at("bgagent_retries_total") == 2);
  CHECK(v.at("bgagent_quarantines_total") == 1);
  CHECK(v.at("bgagent_worker_restarts_total") == 3);
  CHECK(v.at("bgagent_tokens_used") == 1200);
  CHECK(v.at("bgagent_tokens_budget") == 50000);
  CHECK(v.at("bgagent_cost_used_usd") == 0.25);
  CHECK(v.at("bgagent_cost_budget_usd") == 1);
  CHECK(v.at("bgagent_calls_in_flight") == 4);
  CHECK(v.at("bgagent_workers_up") == 6);
  CHECK(v.at("bgagent_nodes_up") == 2);
  CHECK(v.at("bgagent_provider_latency_seconds_bucket{le=\"300\"}") == 5);
  CHECK(v.at("bgagent_provider_latency_seconds_bucket{le=\"+Inf\"}") == 5);
  CHECK(v.at("bgagent_provider_latency_seconds_count") == 5);
  CHECK(v.at("bgagent_provider_latency_seconds_sum") == 2.5);
  CHECK(text.find("# TYPE bgagent_provider_latency_seconds histogram") !=
        std::string::npos);
  CHECK(text.find("# TYPE bgagent_tasks gauge") != std::string::npos);
}

TEST_CASE("run --metrics serves the head's figures while nodes work",
          "[metrics][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 20, "m");
  int port = free_port();
  int mport = free_port();
  const std::string secret = "metrics-secret";
  background_process head(
    head_args(port, "tasks.jsonl", {"--metrics", loopback(mport)}),
    dir.path(), with_secret(secret), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  // The metrics endpoint starts on its own thread: wait until it answers.
  std::map<std::string, double> before;
  REQUIRE(wait_until(
    [&] {
      before = parse(scrape(mport));
      return before.count("bgagent_tasks{state=\"pending\"}") > 0;
    },
    30));
  CHECK(before.at("bgagent_tasks{state=\"pending\"}") == 20);
  CHECK(before.at("bgagent_nodes_up") == 0);
  CHECK(before.at("bgagent_workers_up") == 0);
  background_process node(node_args(port, "node-a"), dir.path(),
                          scripted_node_env(secret, 300), "node");
  std::map<std::string, double> during;
  REQUIRE(wait_until(
    [&] {
      during = parse(scrape(mport));
      // The monitor and the store are asked one after the other: wait
      // until both show the calls.
      // Spending reaches the keeper after the store settles it.
      return during["bgagent_tasks{state=\"completed\"}"] >= 2 &&
             during["bgagent_provider_latency_seconds_count"] >= 2 &&
             during["bgagent_tokens_used"] > 0;
    },
    60));
  CHECK(during.at("bgagent_nodes_up") == 1);
  CHECK(during.at("bgagent_workers_up") == 2);
  CHECK(during.at("bgagent_attempts_total") >= 2);
  CHECK(during.at("bgagent_tokens_used") > 0);
  CHECK(during.at("bgagent_provider_latency_seconds_count") >= 2);
  CHECK(during.at("bgagent_provider_latency_seconds_bucket{le=\"0.25\"}") <
        during.at("bgagent_provider_latency_seconds_bucket{le=\"+Inf\"}"));
  INFO(head.err());
  CHECK(head.wait(90) == 0);
}

TEST_CASE("run --metrics on an address in use fails with one line",
          "[metrics][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 1, "busy");
  // A plain listening socket holds the port.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(listen(fd, 4) == 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int mport = ntohs(a.sin_port);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--metrics",
                        "127.0.0.1:" + std::to_string(mport)},
                       dir.path());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--metrics 127.0.0.1:" + std::to_string(mport) +
                   ": cannot listen there") != std::string::npos);
  // Nothing was changed: the task was not even submitted.
  CHECK(!std::ifstream(dir.path("bgagent.db")));
  close(fd);
}

TEST_CASE("run --metrics flooded by scrapers: the run completes every task "
          "and every scrape is answered with figures that only grow",
          "[metrics][e2e]") {
  temp_dir dir;
  const int n = 60;
  write_task_file(dir.path("tasks.jsonl"), n, "flood");
  int mport = free_port();
  // 60 calls of 100 ms on 4 workers: the run lasts ~1.5 s of scraping.
  background_process run({testbin_binary(), "run", "--tasks", "tasks.jsonl",
                          "--workers", "4", "--metrics", loopback(mport)},
                         dir.path(),
                         {{"LLM_PROVIDER", "scripted"},
                          {"BG_AGENT_TEST_DELAY_MS", "100"}},
                         "run");
  REQUIRE(wait_until([&] { return !scrape(mport).empty(); }, 30));
  // Six scrapers, unpaced, until the run ends (an attacker on the port,
  // which asks no token).
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0}, shrank{0};
  std::vector<std::thread> scrapers;
  for (int k = 0; k < 6; ++k)
    scrapers.emplace_back([&] {
      httplib::Client cli("127.0.0.1", mport);
      cli.set_read_timeout(30, 0);
      double last = -1;
      while (!stop.load()) {
        auto res = cli.Get("/metrics");
        if (!res)
          break; // the run has ended and closed the port
        if (res->status != 200) {
          ++failed;
          continue;
        }
        ++answered;
        std::istringstream in(res->body);
        double done = -1;
        for (std::string line; std::getline(in, line);)
          if (line.rfind("bgagent_tasks{state=\"completed\"} ", 0) == 0)
            done = std::stod(line.substr(line.rfind(' ') + 1));
        if (done < 0 || done > n)
          ++failed;
        else if (done < last)
          ++shrank;
        last = std::max(last, done);
      }
    });
  int code = run.wait(120);
  stop = true;
  for (auto& t : scrapers)
    t.join();
  INFO(run.err());
  CHECK(code == 0);
  CHECK(answered.load() > 6);
  CHECK(failed.load() == 0);
  CHECK(shrank.load() == 0);
  // Each task completed once, none lost.
  auto completed = count_events_by_task(dir.path("bgagent-audit.jsonl"),
                                        "task_completed");
  CHECK(completed.size() == static_cast<size_t>(n));
  for (auto& kv : completed)
    CHECK(kv.second == 1);
  auto status = run_bgagent({"status", "--json"}, dir.path());
  CHECK(status.out.find("\"completed\":" + std::to_string(n)) !=
        std::string::npos);
}
