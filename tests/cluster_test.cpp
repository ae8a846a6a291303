// A head and worker nodes as real processes on 127.0.0.1: the work spreads
// over the nodes, every task completes once, budgets hold cluster-wide, and
// losing a node or the head loses and duplicates nothing.
#include <catch2/catch.hpp>

#include <algorithm>

#include <arpa/inet.h>
#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string cluster_secret = "cluster-test-secret";

// Every task in the store, by state.
std::map<std::string, std::string> states(const std::string& dir) {
  std::map<std::string, std::string> out;
  auto r = run_bgagent({"results", "--json"}, dir);
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    out[j["id"]] = j["state"];
  }
  return out;
}

int completed_on(const std::string& audit, const std::string& node) {
  int n = 0;
  for (auto& j : audit_events(audit, "task_completed"))
    n += j.value("node", "") == node;
  return n;
}

} // namespace

TEST_CASE("a head and two worker nodes complete every task once and share "
          "the work",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 40, "job");
  int port = free_port();
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          with_secret(cluster_secret), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  background_process a(node_args(port, "node-a"), dir.path(),
                       scripted_node_env(cluster_secret, 50), "node-a");
  background_process b(node_args(port, "node-b"), dir.path(),
                       scripted_node_env(cluster_secret, 50), "node-b");
  INFO(head.err() << a.err() << b.err());
  REQUIRE(head.wait(90) == 0);
  CHECK(a.wait(30) == 0);
  CHECK(b.wait(30) == 0);
  CHECK(a.out().find("ended the run") != std::string::npos);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto done = count_events_by_task(audit, "task_completed");
  REQUIRE(done.size() == 40);
  for (auto& kv : done)
    CHECK(kv.second == 1);
  for (auto& kv : states(dir.path()))
    CHECK(kv.second == "completed");
  // The audit says where each task ran; both nodes did work.
  CHECK(completed_on(audit, "node-a") > 0);
  CHECK(completed_on(audit, "node-b") > 0);
  CHECK(completed_on(audit, "node-a") + completed_on(audit, "node-b") == 40);
  auto joined = audit_events(audit, "node_joined");
  REQUIRE(joined.size() == 2);
  CHECK(joined[0]["detail"].get<std::string>().find("127.0.0.1") !=
        std::string::npos);
}

TEST_CASE("a tight budget holds across worker nodes", "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 60, "budget");
  int port = free_port();
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          with_secret(cluster_secret, {{"BG_AGENT_TOKEN_BUDGET", "2500"}}),
                          "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  background_process a(node_args(port, "node-a", 3), dir.path(),
                       scripted_node_env(cluster_secret, 20), "node-a");
  background_process b(node_args(port, "node-b", 3), dir.path(),
                       scripted_node_env(cluster_secret, 20), "node-b");
  INFO(head.err());
  REQUIRE(head.wait(90) == 3); // stopped by the budget, resumable
  a.wait(30);
  b.wait(30);
  auto st = run_bgagent({"status", "--json"}, dir.path());
  auto j = nlohmann::json::parse(st.out);
  CHECK(j["budget"]["tokens_used"].get<uint64_t>() <= 2500);
  CHECK(j["tasks"]["completed"].get<int>() > 0);
  CHECK(j["tasks"]["pending"].get<int>() > 0);
  CHECK(j["tasks"]["running"].get<int>() == 0);
  CHECK(!audit_events(dir.path("bgagent-audit.jsonl"), "budget_denied")
           .empty());
}

TEST_CASE("kill -9 of a worker node: its tasks finish on the other node with "
          "none lost or duplicated",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 40, "kill");
  int port = free_port();
  auto audit = dir.path("bgagent-audit.jsonl");
  // --follow keeps the head up after the work is done, to look at it.
  auto args = head_args(port, "tasks.jsonl");
  args.push_back("--follow");
  background_process head(args, dir.path(), with_secret(cluster_secret), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  background_process a(node_args(port, "node-a"), dir.path(),
                       scripted_node_env(cluster_secret, 300), "node-a");
  REQUIRE(wait_for_output(a, "joined the head", 30));
  background_process b(node_args(port, "node-b"), dir.path(),
                       scripted_node_env(cluster_secret, 300), "node-b");
  REQUIRE(wait_until([&] { return completed_on(audit, "node-a") >= 2; }, 60));
  a.signal(SIGKILL);
  INFO(head.err() << b.err());
  REQUIRE(wait_until(
    [&] { return count_events_by_task(audit, "task_completed").size() == 40; },
    120));
  // What the lost node had reserved and had in flight was given back.
  auto admin = [&](const std::string& cmd) {
    return run_bgagent({"admin", "--connect",
                        loopback(port), cmd},
                       dir.path(), with_secret(cluster_secret));
  };
  nlohmann::json j;
  REQUIRE(wait_until(
    [&] {
      auto r = run_bgagent({"admin", "--connect",
                            loopback(port), "status",
                            "--json"},
                           dir.path(), with_secret(cluster_secret));
      j = nlohmann::json::parse(r.out);
      return j["in_flight"] == 0;
    },
    30));
  CHECK(j["budget"]["tokens_reserved"] == 0);
  CHECK(j["workers"].size() == 1);
  CHECK(j["workers"]["node-b"] == 2);
  REQUIRE(admin("drain").exit_code == 0);
  REQUIRE(head.wait(60) == 0);
  CHECK(b.wait(30) == 0);

  auto done = count_events_by_task(audit, "task_completed");
  CHECK(done.size() == 40);
  for (auto& kv : done)
    CHECK(kv.second == 1);
  auto st = states(dir.path());
  REQUIRE(st.size() == 40);
  for (auto& kv : st)
    CHECK(kv.second == "completed");
  auto lost = audit_events(audit, "node_lost");
  REQUIRE(lost.size() == 1);
  CHECK(lost[0]["node"] == "node-a");
  CHECK(completed_on(audit, "node-b") > 0);
  // Node loss is not the tasks' fault: no retries, no quarantine.
  CHECK(audit_events(audit, "task_quarantined").empty());
}

TEST_CASE("kill -9 of the head: a restarted head resumes from its checkpoint "
          "and the nodes rejoin - every task completes once",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 40, "head");
  int port = free_port();
  auto audit = dir.path("bgagent-audit.jsonl");
  auto rejoin = env_map{{"BG_AGENT_REJOIN_TIMEOUT", "60"}};
  auto head = std::make_unique<background_process>(
    head_args(port, "tasks.jsonl"), dir.path(), with_secret(cluster_secret), "head1");
  REQUIRE(wait_for_output(*head, "listening for worker", 30));
  background_process a(node_args(port, "node-a"), dir.path(),
                       scripted_node_env(cluster_secret, 200, rejoin), "node-a");
  background_process b(node_args(port, "node-b"), dir.path(),
                       scripted_node_env(cluster_secret, 200, rejoin), "node-b");
  REQUIRE(wait_until(
    [&] { return audit_events(audit, "task_completed").size() >= 6; }, 60));
  head->signal(SIGKILL);
  REQUIRE(head->wait(10) == 128 + SIGKILL);
  head.reset();
  // Same database, same port, same task file (submitting it again is a
  // no-op): the run resumes.
  background_process head2(head_args(port, "tasks.jsonl"), dir.path(),
                           with_secret(cluster_secret), "head2");
  INFO(head2.err() << a.err() << b.err());
  REQUIRE(head2.wait(120) == 0);
  CHECK(a.wait(30) == 0);
  CHECK(b.wait(30) == 0);
  auto st = states(dir.path());
  REQUIRE(st.size() == 40);
  for (auto& kv : st)
    CHECK(kv.second == "completed");
  for (auto& kv : count_events_by_task(audit, "task_completed"))
    CHECK(kv.second == 1);
  // Both nodes came back to the new head.
  CHECK(audit_events(audit, "node_joined").size() >= 4);
  CHECK(head2.err().find("resuming run") != std::string::npos);
}

TEST_CASE("a worker node without a rejoin window stops with one line when the "
          "head is lost",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 30, "lost");
  int port = free_port();
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          with_secret(cluster_secret), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  background_process a(node_args(port, "node-a"), dir.path(),
                       scripted_node_env(cluster_secret, 300), "node-a");
  REQUIRE(wait_for_output(a, "joined the head", 30));
  head.signal(SIGKILL);
  CHECK(a.wait(60) == 5);
  CHECK(a.err().find("lost the head at 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
}

TEST_CASE("a worker node that cannot reach the head exits 5 with one line",
          "[cluster][e2e]") {
  temp_dir dir;
  int port = free_port();
  auto r = run_testbin({"worker", "--connect",
                        loopback(port)},
                       dir.path(), scripted_node_env(cluster_secret, 0));
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("cannot reach the head at 127.0.0.1:" +
                   std::to_string(port)) != std::string::npos);
  auto bad = run_testbin({"worker", "--connect", "127.0.0.1:notaport"},
                         dir.path(), scripted_node_env(cluster_secret, 0));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--connect 127.0.0.1:notaport") != std::string::npos);
}

TEST_CASE("heartbeats cross the wire: a stalled worker on a node trips the "
          "head's dead man's switch",
          "[cluster][e2e]") {
  temp_dir dir;
  write_file(dir.path("tasks.jsonl"),
             R"({"id":"stall","type":"summarize","input":"x [hang:5000]"})"
             "\n");
  int port = free_port();
  auto fast = env_map{{"BG_AGENT_DEADMAN_SECONDS", "1.5"},
                      {"BG_AGENT_HEARTBEAT_SECONDS", "0.3"}};
  background_process head(head_args(port, "tasks.jsonl"), dir.path(),
                          with_secret(cluster_secret, fast), "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  background_process a(node_args(port, "node-a", 1), dir.path(),
                       scripted_node_env(cluster_secret, 0, fast), "node-a");
  auto alerts = dir.path("bgagent-alerts.jsonl");
  REQUIRE(wait_until(
    [&] {
      for (auto& j : read_jsonl(alerts))
        if (j.value("kind", "") == "dead_mans_switch" &&
            j.value("message", "").find("node-a/worker-1") !=
              std::string::npos)
          return true;
      return false;
    },
    30));
  // The worker wakes up, finishes, and the run completes normally.
  INFO(head.err());
  CHECK(head.wait(60) == 0);
  CHECK(states(dir.path())["stall"] == "completed");
}

TEST_CASE("listening without TLS, insecure-listen off loopback or on a "
          "taken port: one line, exit 2, nothing changed",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("tasks.jsonl"), 2, "taken");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(listen(fd, 4) == 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto port = std::to_string(ntohs(a.sin_port));
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--insecure-listen",
                        "127.0.0.1:" + port},
                       dir.path(), with_secret(cluster_secret));
  close(fd);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "bgagent: --insecure-listen 127.0.0.1:" + port +
                   ": cannot listen there: Address already in use\n");
  // Without certificates, --listen refuses and says how to make them.
  auto plain = run_bgagent({"run", "--tasks", "tasks.jsonl", "--listen",
                            "127.0.0.1:7420"},
                           dir.path(), with_secret(cluster_secret));
  CHECK(plain.exit_code == 2);
  CHECK(plain.err.rfind("bgagent: --listen 127.0.0.1:7420: remote nodes need "
                        "mutual TLS: set BG_AGENT_TLS_CERT, BG_AGENT_TLS_KEY "
                        "and BG_AGENT_TLS_CA (make them with `bgagent certs "
                        "init DIR",
                        0) == 0);
  CHECK(std::count(plain.err.begin(), plain.err.end(), '\n') == 1);
  // Plain CAF only where no other machine can reach it.
  for (auto host : {"192.0.2.1:7420", "0.0.0.0:7420", "[::]:7420"}) {
    auto open = run_bgagent({"run", "--tasks", "tasks.jsonl",
                             "--insecure-listen", host},
                            dir.path(), with_secret(cluster_secret));
    INFO(host);
    CHECK(open.exit_code == 2);
    CHECK(open.err == std::string("bgagent: --insecure-listen ") + host +
                        ": only a loopback address (127.0.0.1, ::1, "
                        "localhost) may listen without TLS; use --listen "
                        "with certificates (`bgagent certs init DIR`)\n");
  }
  CHECK(!std::ifstream(dir.path("bgagent.db")));
}

TEST_CASE("a worker node with --stay waits for a head, joins two runs one "
          "after the other and leaves on SIGTERM",
          "[cluster][e2e]") {
  temp_dir dir;
  write_task_file(dir.path("first.jsonl"), 12, "first");
  write_task_file(dir.path("second.jsonl"), 12, "second");
  int port = free_port();
  auto args = node_args(port, "node-s");
  args.push_back("--stay");
  // Started before any head: it waits instead of exiting 5.
  background_process node(args, dir.path(), scripted_node_env(cluster_secret, 20),
                          "node-s");
  REQUIRE(wait_for_output(node, "waits for a head at " + loopback(port), 30));
  for (auto* file : {"first.jsonl", "second.jsonl"}) {
    INFO(file);
    auto r = run(head_args(port, file), dir.path(), with_secret(cluster_secret), 120);
    INFO(r.err << node.out() << node.err());
    REQUIRE(r.exit_code == 0);
    CHECK(node.running());
  }
  auto audit = dir.path("bgagent-audit.jsonl");
  // The head has no workers of its own: the node did all 24 tasks.
  CHECK(completed_on(audit, "node-s") == 24);
  CHECK(audit_events(audit, "node_joined").size() == 2);
  CHECK(node.out().find("ended the run; node node-s stays for the next") !=
        std::string::npos);
  node.signal(SIGTERM);
  CHECK(node.wait(30) == 128 + SIGTERM);
}
