// bgagent-bench-distributed: what distribution costs, with the offline provider.
//
// Part 1 (processes on 127.0.0.1, the real binary): one node (`bgagent run
// --workers 2N`) against a head (`run --workers 0 --insecure-listen`, plain
// CAF on loopback) with two worker nodes (`worker --workers N` each), and
// the same cluster over mutual TLS (`--listen`, certificates from `bgagent
// certs init`), for N = 2 and N = 16. Prints wall time, tasks/s and the
// head's CPU time per task (user+sys from wait4), i.e. what a remote
// dispatch costs the head against a local one, and what TLS adds.
//
// Part 2 (in this process): the messages that cross the node boundary per
// task. The workers hold a relay in front of their node's gateway (all a
// node gets from the gatekeeper); the relay counts what passes and forwards
// it with the original sender. A request counts twice (request and
// response); the supervisor's dispatch counts once per attempt.
//
// Usage: bgagent-bench-distributed [TASKS] (default 2000). Prints figures;
// it never passes or fails on time.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <caf/all.hpp>

#include "actors/auditor.hpp"
#include "actors/budget_keeper.hpp"
#include "actors/checkpointer.hpp"
#include "actors/monitor.hpp"
#include "actors/node_gateway.hpp"
#include "actors/supervisor.hpp"
#include "actors/task_worker.hpp"
#include "actors/head_handles.hpp"
#include "app/system_config.hpp"
#include "bench/child_process.hpp"
#include "messages/atoms.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/worker_context.hpp"
#include "persistence/store.hpp"
#include "providers/offline_provider.hpp"
#include "providers/provider_registry.hpp"

namespace fs = std::filesystem;
using namespace bgagent;
using clock_type = std::chrono::steady_clock;

namespace {

// Every process of a figure runs in `dir` with the same settings.
// `tls_node`: the name of this process's certificate in dir/pki (made by
// `bgagent certs init`), or empty for plain CAF.
bench::running_child start(const std::vector<std::string>& argv,
                           const fs::path& dir, const std::string& log,
                           const std::string& tls_node = {}) {
  bench::env_list env{{"BG_AGENT_SECRET", "bench-secret"},
                      {"LLM_PROVIDER", "offline"},
                      {"BG_AGENT_TOKEN_BUDGET", "1000000000"},
                      {"BG_AGENT_COST_BUDGET", "1000"},
                      {"BG_AGENT_LOG_LEVEL", "warn"}};
  if (!tls_node.empty()) {
    auto pki = dir / "pki";
    env.push_back({"BG_AGENT_TLS_CERT", (pki / (tls_node + ".pem")).string()});
    env.push_back({"BG_AGENT_TLS_KEY", (pki / (tls_node + ".key")).string()});
    env.push_back({"BG_AGENT_TLS_CA", (pki / "ca.pem").string()});
  }
  return bench::start_child(argv, env, (dir / log).string(), dir.string());
}

void write_tasks(const fs::path& file, int n) {
  std::ofstream out(file);
  for (int i = 0; i < n; ++i)
    out << "{\"id\":\"b-" << i << "\",\"type\":\"summarize\",\"input\":"
        << "\"Benchmark task " << i << " about distributed queues.\"}\n";
}

struct figures {
  double wall = 0;
  double head_cpu = 0;
  double nodes_cpu = 0;
  int code = -1;
};

figures run_local(const std::string& bin, int n, int per_node) {
  auto dir = fs::temp_directory_path() / ("bgbench-local-" +
                                          std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_tasks(dir / "tasks.jsonl", n);
  auto t0 = clock_type::now();
  auto head = start({bin, "run", "--tasks", "tasks.jsonl", "--workers", std::to_string(2 * per_node)},
                    dir, "head.log");
  auto done = bench::wait_child(head);
  figures f;
  f.wall = std::chrono::duration<double>(clock_type::now() - t0).count();
  f.head_cpu = done.cpu_seconds;
  f.code = done.exit_code;
  fs::remove_all(dir);
  return f;
}

figures run_cluster(const std::string& bin, int n, int per_node, bool tls) {
  auto dir = fs::temp_directory_path() / ("bgbench-cluster-" +
                                          std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_tasks(dir / "tasks.jsonl", n);
  auto port = std::to_string(free_port());
  if (tls) {
    auto certs = start({bin, "certs", "init", "pki", "--nodes",
                        "head,node-0,node-1"},
                       dir, "certs.log");
    if (bench::wait_child(certs).exit_code != 0)
      std::fprintf(stderr, "bgagent certs init failed: see %s\n",
                   (dir / "certs.log").c_str());
  }
  auto t0 = clock_type::now();
  auto head = start({bin, "run", "--tasks", "tasks.jsonl", "--workers", "0",
                     tls ? "--listen" : "--insecure-listen",
                     "127.0.0.1:" + port},
                    dir, "head.log", tls ? "head" : "");
  std::vector<bench::running_child> nodes;
  for (int i = 0; i < 2; ++i) {
    // Joins as soon as the head listens (a node exits 5 if it was early).
    for (int tries = 0; tries < 200; ++tries) {
      auto c = start({bin, "worker", "--connect", "127.0.0.1:" + port,
                      "--workers", std::to_string(per_node), "--name", "node-" + std::to_string(i)},
                     dir, "node" + std::to_string(i) + ".log",
                     tls ? "node-" + std::to_string(i) : "");
      int status = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (waitpid(c.pid, &status, WNOHANG) == 0) {
        nodes.push_back(c);
        break;
      }
    }
  }
  auto done = bench::wait_child(head);
  figures f;
  f.wall = std::chrono::duration<double>(clock_type::now() - t0).count();
  f.head_cpu = done.cpu_seconds;
  f.code = done.exit_code;
  for (auto& c : nodes)
    f.nodes_cpu += bench::wait_child(c).cpu_seconds;
  fs::remove_all(dir);
  return f;
}

// ---- part 2: messages per task, counted by relays ----

struct counter {
  std::atomic<uint64_t> messages{0};
};

caf::behavior relay(caf::event_based_actor* self, caf::actor dest,
                    std::shared_ptr<counter> n) {
  self->set_default_handler(
    [dest, n](caf::scheduled_actor* me,
              caf::message_view& x) -> caf::result<caf::message> {
      auto* e = me->current_mailbox_element();
      n->messages += e->mid.is_request() ? 2 : 1; // a request is answered
      dest->enqueue(caf::make_mailbox_element(e->sender, e->mid,
                                              std::move(e->stages),
                                              x.move_content_to_message()),
                    me->context());
      return caf::delegated<caf::message>{};
    });
  return {[] {}}; // everything goes through the default handler
}

void count_messages(int n) {
  auto dir = fs::temp_directory_path() / ("bgbench-msgs-" +
                                          std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto db = std::make_unique<store>((dir / "b.db").string(),
                                    store::open_mode::create_if_missing);
  auto auditor = spawn_auditor(sys, (dir / "audit.jsonl").string());
  auto checkpointer = spawn_checkpointer(sys, std::move(db), auditor);
  std::vector<task> tasks;
  for (int i = 0; i < n; ++i) {
    task t;
    t.id = "m-" + std::to_string(i);
    t.type = "summarize";
    t.input = "Message count task " + std::to_string(i);
    t.idempotency_key = "k" + std::to_string(i);
    tasks.push_back(std::move(t));
  }
  self->request(checkpointer, caf::infinite, submit_atom::value, tasks)
    .receive([](submit_report&) {}, [](caf::error&) {});
  run_info run;
  self->request(checkpointer, caf::infinite, open_run_atom::value,
                uint64_t{1000000000}, 1000.0)
    .receive([&](run_info& r) { run = r; }, [](caf::error&) {});
  auto counters = std::make_shared<call_counters>();
  monitor_settings ms;
  ms.alerts_path = (dir / "alerts.jsonl").string();
  ms.counters = counters;
  auto monitor = spawn_monitor(sys, ms, auditor);
  budget_settings bs;
  bs.token_limit = 1000000000;
  bs.cost_limit = 1000;
  auto keeper = spawn_budget_keeper(sys, bs, checkpointer, auditor, monitor);
  supervisor_settings ss;
  ss.workers = 0;
  provider_settings offline;
  offline.name = "offline";
  offline.model = "offline";
  auto prov = provider_registry::with_builtins().make(offline);
  auto sup = spawn_supervisor(sys, ss,
                              run_handles{checkpointer, keeper, auditor,
                                          monitor, counters, {}},
                              prov);
  auto n_msgs = std::make_shared<counter>();
  gateway_settings gs;
  gs.node = "relayed";
  gs.address = "relay";
  gs.remote = true;
  auto gateway = spawn_node_gateway(
    sys, head_handles{sup, keeper, checkpointer, auditor, monitor, counters,
                      {}, {}},
    gs);
  // A remote worker's only head handle is its node's gateway.
  // The relay is untyped (it forwards anything); workers see a gateway.
  auto relay_actor =
    sys.spawn(relay, caf::actor_cast<caf::actor>(gateway), n_msgs);
  worker_context remote{caf::actor_cast<node_gateway_actor>(relay_actor)};
  std::vector<task_worker_actor> ws;
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    worker_settings w;
    w.name = "relayed/worker-" + std::to_string(i + 1);
    w.node = "relayed";
    ws.push_back(spawn_task_worker(sys, remote, prov, w));
    names.push_back(w.name);
  }
  auto t0 = clock_type::now();
  self->send(sup, run_atom::value);
  self->send(gateway, join_atom::value, ws, names);
  run_summary summary;
  self->receive([&](run_summary& s) { summary = s; },
                [&](bool) {
                  self->receive([&](run_summary& s) { summary = s; });
                });
  auto wall = std::chrono::duration<double>(clock_type::now() - t0).count();
  // The supervisor's dispatch to the node: one per attempt.
  auto total = n_msgs->messages.load() + summary.completed;
  std::printf("in-process, 4 relayed workers: %llu tasks in %.2f s; %.1f "
              "messages cross the node boundary per task\n",
              static_cast<unsigned long long>(summary.completed), wall,
              summary.completed ? double(total) / summary.completed : 0.0);
  auto end = [&](const auto& a) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
  };
  end(relay_actor);
  end(gateway);
  end(sup);
  end(keeper);
  end(monitor);
  end(checkpointer);
  end(auditor);
  for (auto& w : ws)
    self->send_exit(w, caf::exit_reason::user_shutdown);
  fs::remove_all(dir);
}

} // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  std::string bin = BGAGENT_BINARY;
  std::printf("bgagent-bench-distributed: %d tasks, offline provider, %s\n", n,
              bin.c_str());
  // The same number of workers in both set-ups: 2 per node (latency-bound,
  // every message its own wake-up) and 16 per node (messages share them).
  for (int per_node : {2, 16}) {
    auto local = run_local(bin, n, per_node);
    std::printf("1 node, %2d workers:                exit %d, %.2f s, %6.0f "
                "tasks/s, head CPU %.3f s = %3.0f us/task\n",
                2 * per_node, local.code, local.wall, n / local.wall,
                local.head_cpu, 1e6 * local.head_cpu / n);
    auto cl = run_cluster(bin, n, per_node, false);
    std::printf("head + 2 nodes x %2d workers:       exit %d, %.2f s, %6.0f "
                "tasks/s, head CPU %.3f s = %3.0f us/task (nodes %.3f s)\n",
                per_node, cl.code, cl.wall, n / cl.wall, cl.head_cpu,
                1e6 * cl.head_cpu / n, cl.nodes_cpu);
    auto tls = run_cluster(bin, n, per_node, true);
    std::printf("  same over mutual TLS:             exit %d, %.2f s, %6.0f "
                "tasks/s, head CPU %.3f s = %3.0f us/task (nodes %.3f s); "
                "TLS/plain head CPU %.2fx\n",
                tls.code, tls.wall, n / tls.wall, tls.head_cpu,
                1e6 * tls.head_cpu / n, tls.nodes_cpu,
                cl.head_cpu > 0 ? tls.head_cpu / cl.head_cpu : 0.0);
    std::printf("  remote/local head CPU per task at %d workers: %.2fx "
                "(target <= 2x)\n",
                2 * per_node,
                local.head_cpu > 0 ? cl.head_cpu / local.head_cpu : 0.0);
  }
  count_messages(std::min(n, 2000));
  return 0;
}
