// `bgagent admin --connect HOST:PORT COMMAND`: controls a running head
// through the admin endpoint its gatekeeper hands out after a valid hello.
// Every command is audited on the head with this node's address.
#include <cstdio>
#include <iostream>
#include <map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/head_link.hpp"
#include "app/number_format.hpp"
#include "app/system_config.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/cluster.hpp"
#include "messages/json_codec.hpp"

namespace bgagent {

namespace {

// Workers per node from the supervisor's "node name state" lines.
std::map<std::string, uint64_t> per_node(const std::vector<std::string>& ws) {
  std::map<std::string, uint64_t> out;
  for (auto& line : ws)
    ++out[line.substr(0, line.find(' '))];
  return out;
}

double rate(const metrics_snapshot& m) {
  return m.elapsed_seconds > 0 ? m.completed / m.elapsed_seconds : 0;
}

void print_status(const admin_status& s, const endpoint& head, bool json) {
  auto nodes = per_node(s.workers);
  if (json) {
    auto j = to_json(s.report);
    j["budget"]["tokens_reserved"] = s.report.budget.tokens_reserved;
    j["budget"]["cost_reserved"] = s.report.budget.cost_reserved;
    j["workers"] = nlohmann::json::object();
    for (auto& kv : nodes)
      j["workers"][kv.first] = kv.second;
    j["nodes"] = nodes.size();
    j["rate"] = rate(s.metrics);
    j["in_flight"] = s.metrics.in_flight;
    j["paused"] = s.metrics.paused != 0;
    j["completed_this_run"] = s.metrics.completed;
    j["calls_waiting_for_rate"] = s.metrics.rate_waiting;
    j["circuits_open_count"] = s.metrics.circuits_open;
    j["outage_seconds"] = s.metrics.outage_seconds;
    std::cout << j.dump() << "\n";
    return;
  }
  auto& t = s.report.tasks;
  std::printf("head %s, run %lld %s since %s%s\n", head.text().c_str(),
              static_cast<long long>(s.report.run.id),
              s.report.run.state.c_str(), s.report.run.started_at.c_str(),
              s.metrics.paused ? " (PAUSED)" : "");
  std::printf("%-12s %10s\n", "state", "tasks");
  auto row = [](const char* n, uint64_t v) {
    std::printf("%-12s %10llu\n", n, static_cast<unsigned long long>(v));
  };
  row("pending", t.pending);
  row("running", t.running);
  row("retry_wait", t.retry_wait);
  row("completed", t.completed);
  row("quarantined", t.quarantined);
  row("cancelled", t.cancelled);
  auto& b = s.report.budget;
  std::printf("budget       tokens %llu of %llu (%llu reserved), cost "
              "$%.6f of $%.2f\n",
              static_cast<unsigned long long>(b.tokens_used),
              static_cast<unsigned long long>(b.tokens_limit),
              static_cast<unsigned long long>(b.tokens_reserved), b.cost_used,
              b.cost_limit);
  std::printf("rate         %.1f tasks/s, %llu call(s) in flight\n",
              rate(s.metrics),
              static_cast<unsigned long long>(s.metrics.in_flight));
  if (s.metrics.rate_waiting > 0)
    std::printf("waiting      %llu call(s) for their turn (rate limits, "
                "holds, open circuits)\n",
                static_cast<unsigned long long>(s.metrics.rate_waiting));
  for (auto& c : s.report.circuits_open)
    std::printf("provider     %s DOWN since %s (circuit open)\n",
                c.substr(0, c.rfind(' ')).c_str(),
                c.substr(c.rfind(' ') + 1).c_str());
  std::printf("%-24s %8s\n", "node", "workers");
  for (auto& kv : nodes)
    std::printf("%-24s %8llu\n", kv.first.c_str(),
                static_cast<unsigned long long>(kv.second));
}

template <class T, class... Ts>
T call(caf::scoped_actor& self, const admin_endpoint_actor& dest,
       const endpoint& head,
       Ts&&... xs) {
  T out{};
  std::string err;
  self->request(dest, std::chrono::seconds(60), std::forward<Ts>(xs)...)
    .receive([&](T& x) { out = std::move(x); },
             [&](caf::error& e) { err = self->system().render(e); });
  if (!err.empty())
    throw exit_error(exit_code::unreachable,
                     "the head at " + head.text() +
                       " did not carry out the command: " + err);
  return out;
}

void print_ids(const char* what, const std::vector<std::string>& ids) {
  std::printf("%zu task(s) %s\n", ids.size(), what);
  for (auto& id : ids)
    std::printf("  %s\n", id.c_str());
}

} // namespace

int admin_command(const config& c, const admin_options& o) {
  auto head = parse_endpoint("--connect", o.connect);
  budget_change change;
  if (o.command == "set-budget") {
    if (o.tokens.empty() && o.cost.empty())
      throw usage_error("admin set-budget: give --tokens N, --cost USD or "
                        "both");
    change.set_tokens = !o.tokens.empty();
    if (change.set_tokens)
      change.tokens = parse_count("--tokens " + o.tokens, o.tokens, 0,
                                  1000000000000ULL);
    change.set_cost = !o.cost.empty();
    if (change.set_cost)
      change.cost = parse_money("--cost " + o.cost, o.cost);
  }
  if (o.command == "requeue" && o.ids.empty() && !o.all_quarantined)
    throw usage_error("admin requeue: give task ids or --quarantined");
  if (o.command == "cancel-batch" && o.ids.size() != 1)
    throw usage_error("admin cancel-batch: give one batch id (bgagent "
                      "batches lists them)");
  if (o.command == "cancel" && o.ids.empty())
    throw usage_error("admin cancel: give task ids");
  auto secret = node_secret(c);
  system_config cfg;
  if (c.tls())
    cfg.use_tls(c.tls_cert, c.tls_key, c.tls_ca);
  caf::actor_system sys{cfg};
  auto w = say_hello(sys, c, head, "admin", secret,
                     default_node_name("admin@"));
  caf::scoped_actor self{sys};
  auto& a = w.admin;
  auto& cmd = o.command;
  if (cmd == "status") {
    print_status(call<admin_status>(self, a, head, status_atom::value), head,
                 o.json);
  } else if (cmd == "pause") {
    call<bool>(self, a, head, pause_atom::value);
    std::printf("paused: no new task starts; calls in flight finish\n");
  } else if (cmd == "resume") {
    call<bool>(self, a, head, resume_atom::value);
    std::printf("resumed\n");
  } else if (cmd == "drain") {
    call<bool>(self, a, head, drain_atom::value);
    std::printf("draining: calls in flight finish, nothing new starts, then "
                "the head exits (resumable)\n");
  } else if (cmd == "shutdown") {
    call<bool>(self, a, head, shutdown_atom::value);
    std::printf("shutting down: calls in flight are abandoned and their "
                "tasks go back to pending\n");
  } else if (cmd == "set-budget") {
    auto b = call<budget_snapshot>(self, a, head, set_budget_atom::value,
                                   change);
    std::printf("budget now %s tokens (%s used), $%.6f ($%.6f used)\n",
                grouped(b.tokens_limit).c_str(), grouped(b.tokens_used).c_str(),
                b.cost_limit, b.cost_used);
    // Accepted (a user may mean to stop spending), but said plainly.
    if (b.tokens_limit < b.tokens_used)
      std::fprintf(stderr,
                   "bgagent: warning: the token budget (%s) is below what "
                   "this run has spent (%s): no new call starts until it is "
                   "raised\n",
                   grouped(b.tokens_limit).c_str(),
                   grouped(b.tokens_used).c_str());
    if (b.cost_limit < b.cost_used)
      std::fprintf(stderr,
                   "bgagent: warning: the cost budget ($%.6f) is below what "
                   "this run has spent ($%.6f): no new call starts until it "
                   "is raised\n",
                   b.cost_limit, b.cost_used);
  } else if (cmd == "requeue") {
    print_ids("requeued", call<std::vector<std::string>>(
                            self, a, head, requeue_atom::value, o.ids,
                            o.all_quarantined));
  } else if (cmd == "cancel") {
    print_ids("cancelled", call<std::vector<std::string>>(
                             self, a, head, cancel_atom::value, o.ids));
  } else if (cmd == "cancel-batch") {
    auto why = call<std::string>(self, a, head, cancel_atom::value,
                                 batch_atom::value, o.ids.front());
    if (!why.empty())
      throw exit_error(exit_code::usage,
                       "admin cancel-batch " + o.ids.front() + ": " + why);
    std::printf("batch %s: cancel asked of the provider; its requests left "
                "undone go back to the queue when it has stopped\n",
                o.ids.front().c_str());
  } else if (cmd == "workers") {
    auto ws = call<std::vector<std::string>>(self, a, head,
                                             workers_atom::value);
    std::printf("%-24s %-32s %s\n", "node", "worker", "state");
    for (auto& line : ws) {
      auto p1 = line.find(' ');
      auto p2 = line.find(' ', p1 + 1);
      std::printf("%-24s %-32s %s\n", line.substr(0, p1).c_str(),
                  line.substr(p1 + 1, p2 - p1 - 1).c_str(),
                  line.substr(p2 + 1).c_str());
    }
  } else {
    throw usage_error("admin " + cmd + ": unknown command");
  }
  std::fflush(stdout);
  return exit_code::ok;
}

} // namespace bgagent
