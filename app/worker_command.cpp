// `bgagent worker --connect HOST:PORT [--workers N]`: a worker node. It says
// hello to the head's gatekeeper, which answers with this node's own
// gateway (the only head actor it can reach), spawns N task workers that
// begin and finish their attempts through it, and joins them to the run
// through it. Each worker calls this node's own configured provider; the
// head alone writes the store and the audit log.
//
// Ends: the head ends its run -> exit 0; the head is lost -> one line and
// exit 5, or, with BG_AGENT_REJOIN_TIMEOUT=S, retry joining for S seconds;
// SIGINT/SIGTERM -> leave (the head re-dispatches what was in flight).
// With --stay the node outlives runs: it waits for a head that cannot be
// reached (at start, after a run, after losing it) and joins each run,
// until a signal; only a refusal (wrong secret, bad certificate) ends it.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <optional>
#include <thread>
#include <unistd.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/task_worker.hpp"
#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/head_link.hpp"
#include "app/provider_prices.hpp"
#include "app/system_config.hpp"
#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "providers/provider_registry.hpp"

namespace bgagent {

namespace {

std::atomic<int> node_signal{0};

extern "C" void on_node_signal(int sig) {
  if (node_signal.exchange(sig) != 0)
    _exit(128 + sig);
}

using clock_type = std::chrono::steady_clock;

// refused: the head is ending its run and took no new workers.
enum class session_end { run_over, head_lost, signalled, refused };

struct node_session {
  caf::scoped_actor& self;
  const welcome& w;
  provider_ptr prov;
  worker_settings base;
  std::string node;
  uint32_t next = 0;
  std::vector<task_worker_actor> workers;
};

task_worker_actor spawn_one(caf::actor_system& sys, node_session& s,
                     std::string& name) {
  auto ws = s.base;
  ws.name = s.node + "/worker-" + std::to_string(++s.next);
  ws.node = s.node;
  name = ws.name;
  auto w = spawn_task_worker(sys, s.w.ctx, s.prov, ws);
  s.self->monitor(w);
  s.workers.push_back(w);
  return w;
}

bool join(caf::scoped_actor& self, const node_gateway_actor& gateway,
          const std::vector<task_worker_actor>& ws,
          const std::vector<std::string>& names) {
  bool ok = false;
  self->request(gateway, std::chrono::seconds(30), join_atom::value, ws,
                names)
    .receive([&](bool x) { ok = x; }, [&](caf::error&) { ok = false; });
  return ok;
}

void stop_workers(node_session& s) {
  for (auto& w : s.workers)
    s.self->send_exit(w, caf::exit_reason::user_shutdown);
  s.workers.clear();
}

session_end serve(caf::actor_system& sys, node_session& s, uint32_t n,
                  const endpoint& head) {
  std::vector<task_worker_actor> ws;
  std::vector<std::string> names;
  for (uint32_t i = 0; i < n; ++i) {
    std::string name;
    ws.push_back(spawn_one(sys, s, name));
    names.push_back(name);
  }
  s.self->monitor(s.w.ctx.gateway);
  if (!join(s.self, s.w.ctx.gateway, ws, names)) {
    stop_workers(s);
    return session_end::refused;
  }
  std::printf("joined the head at %s as node %s with %u worker(s)\n",
              head.text().c_str(), s.node.c_str(), n);
  std::fflush(stdout);
  bool run_over = false;
  for (;;) {
    std::optional<session_end> end;
    s.self->receive(
      [&](caf::down_msg& dm) {
        if (dm.source == s.w.ctx.gateway.address()) {
          end = run_over ? session_end::run_over : session_end::head_lost;
          return;
        }
        auto i = std::find_if(s.workers.begin(), s.workers.end(),
                              [&](const task_worker_actor& a) {
                                return a.address() == dm.source;
                              });
        if (i == s.workers.end())
          return;
        s.workers.erase(i);
        if (dm.reason == caf::exit_reason::user_shutdown) {
          // The head ended the run (or was shut down): it told us so.
          run_over = true;
          if (s.workers.empty())
            end = session_end::run_over;
          return;
        }
        if (run_over)
          return;
        // A worker crashed here: the head counted the attempt; replace it.
        spdlog::warn("a worker of node {} died ({}); starting another",
                     s.node, to_string(dm.reason));
        std::string name;
        auto w = spawn_one(sys, s, name);
        join(s.self, s.w.ctx.gateway, {w}, {name});
      },
      caf::after(std::chrono::milliseconds(200)) >> [&] {
        if (node_signal.load() != 0)
          end = session_end::signalled;
      });
    if (end) {
      s.self->demonitor(s.w.ctx.gateway.address());
      stop_workers(s);
      return *end;
    }
  }
}

} // namespace

int worker_command(const config& c, const worker_options& o,
                   const provider_registry& providers) {
  auto head = parse_endpoint("--connect", o.connect);
  if (o.workers == 0)
    throw usage_error("--workers 0: a worker node needs at least 1 worker");
  provider_ptr prov;
  try {
    auto ps = c.provider;
    ps.concurrency = o.workers;
    // A node reserves at its own prices: with OpenRouter, its list too.
    auto prices = std::make_shared<price_list>(
      c.provider.prices ? *c.provider.prices : price_list{});
    add_provider_prices(*prices, ps, nullptr, false);
    ps.prices = prices;
    prov = providers.make(ps);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  auto secret = node_secret(c);
  auto node = o.name.empty() ? default_node_name() : o.name;

  system_config cfg;
  if (c.tls())
    cfg.use_tls(c.tls_cert, c.tls_key, c.tls_ca);
  caf::actor_system sys{cfg};
  struct sigaction sa {};
  sa.sa_handler = on_node_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  worker_settings base;
  base.timeout_seconds = c.timeout_seconds;
  base.heartbeat_seconds = std::min(c.heartbeat_seconds,
                                    c.deadman_seconds / 3);
  bool joined_once = false;
  auto deadline = clock_type::now(); // retry window after losing the head
  bool waiting = false;              // --stay: said that it waits
  auto pause = std::chrono::milliseconds(500);
  // Sleeps `pause` in short steps, so a signal is heard at once.
  auto wait_a_little = [&] {
    for (auto slept = std::chrono::milliseconds(0);
         slept < pause && node_signal.load() == 0;
         slept += std::chrono::milliseconds(100))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  for (;;) {
    welcome w;
    try {
      w = say_hello(sys, c, head, "worker", secret, node);
    } catch (const exit_error& e) {
      bool unreachable = e.code() == exit_code::unreachable;
      bool retry = unreachable && node_signal.load() == 0 &&
                   (o.stay || (joined_once && clock_type::now() < deadline));
      if (!retry) {
        if (node_signal.load() != 0 && o.stay) {
          std::printf("node %s stops waiting (signal %d)\n", node.c_str(),
                      node_signal.load());
          return 128 + node_signal.load();
        }
        std::cerr << "bgagent: " << e.what()
                  << (joined_once ? " (gave up rejoining)" : "") << "\n";
        return e.code();
      }
      if (o.stay && !waiting) {
        waiting = true;
        std::printf("node %s waits for a head at %s (--stay)\n", node.c_str(),
                    head.text().c_str());
        std::fflush(stdout);
      }
      wait_a_little(); // --stay: up to 5 s apart
      if (o.stay)
        pause = std::min(pause * 2, std::chrono::milliseconds(5000));
      continue;
    }
    waiting = false;
    pause = std::chrono::milliseconds(500);
    caf::scoped_actor self{sys};
    node_session s{self, w, prov, base, node, 0, {}};
    auto end = serve(sys, s, o.workers, head);
    joined_once = true;
    switch (end) {
      case session_end::refused:
        if (o.stay) { // the run is ending: the next one comes later
          wait_a_little();
          if (node_signal.load() != 0)
            return 128 + node_signal.load();
          break;
        }
        std::cerr << "bgagent: the head at " << head.text()
                  << " is ending its run and takes no new workers\n";
        return exit_code::ok;
      case session_end::run_over:
        if (o.stay) {
          std::printf("the head at %s ended the run; node %s stays for the "
                      "next\n",
                      head.text().c_str(), node.c_str());
          std::fflush(stdout);
          wait_a_little(); // the ending head takes no new workers
          break;
        }
        std::printf("the head at %s ended the run; node %s leaves\n",
                    head.text().c_str(), node.c_str());
        return exit_code::ok;
      case session_end::signalled:
        std::printf("node %s leaves the cluster (signal %d); the head "
                    "re-dispatches its tasks\n",
                    node.c_str(), node_signal.load());
        return 128 + node_signal.load();
      case session_end::head_lost:
        if (o.stay) {
          spdlog::warn("lost the head at {}; waiting for it (--stay)",
                       head.text());
          break;
        }
        if (c.rejoin_seconds <= 0) {
          std::cerr << "bgagent: lost the head at " << head.text()
                    << "; node " << node
                    << " stops (set BG_AGENT_REJOIN_TIMEOUT to wait for a "
                       "restarted head)\n";
          return exit_code::unreachable;
        }
        spdlog::warn("lost the head at {}; trying to rejoin for {} s",
                     head.text(), c.rejoin_seconds);
        deadline = clock_type::now() +
                   std::chrono::duration_cast<clock_type::duration>(
                     std::chrono::duration<double>(c.rejoin_seconds));
        break;
    }
  }
}

} // namespace bgagent
