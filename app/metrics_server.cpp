#include "app/metrics_server.hpp"

#include <httplib.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "app/errors.hpp"
#include "app/prometheus.hpp"
#include "app/recent_value.hpp"
#include "messages/atoms.hpp"
#include "messages/run.hpp"

namespace bgagent {

bool scrape_metrics(caf::actor_system& sys, const monitor_actor& monitor,
                    const status_report& counts, std::string& out) {
  caf::scoped_actor self{sys};
  metrics_snapshot m;
  std::string err;
  self->request(monitor, std::chrono::seconds(10), metrics_atom::value)
    .receive([&](metrics_snapshot& x) { m = std::move(x); },
             [&](caf::error& e) { err = sys.render(e); });
  if (!err.empty()) {
    out = "metrics unavailable: " + err;
    return false;
  }
  out = prometheus_text(m, counts);
  return true;
}

metrics_server::metrics_server(caf::actor_system& sys, monitor_actor monitor,
                               checkpointer_actor checkpointer,
                               const std::string& host, uint16_t port)
  : server_(std::make_unique<httplib::Server>()) {
  // The store's counts are a scan of every task: scrapes within a second
  // share one (this port asks no token, so anyone may flood it).
  auto counts = std::make_shared<recent_value<status_report>>(
    std::chrono::seconds(1));
  server_->Get("/metrics", [&sys, monitor, checkpointer, counts](
                             const httplib::Request&, httplib::Response& res) {
    std::string text;
    bool ok = false;
    try {
      auto rep = counts->get([&] {
        caf::scoped_actor self{sys};
        status_report x;
        std::string err;
        self->request(checkpointer, std::chrono::seconds(10),
                      status_atom::value)
          .receive([&](status_report& r) { x = std::move(r); },
                   [&](caf::error& e) { err = sys.render(e); });
        if (!err.empty())
          throw std::runtime_error(err);
        return x;
      });
      ok = scrape_metrics(sys, monitor, rep, text);
    } catch (const std::exception& e) {
      text = std::string("metrics unavailable: ") + e.what();
    }
    if (!ok) {
      res.status = 503;
      res.set_content(text + "\n", "text/plain");
      return;
    }
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("bgagent: metrics at /metrics\n", "text/plain");
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // two processes share the port silently.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (!server_->bind_to_port(host.c_str(), port))
    throw usage_error("--metrics " + host + ":" + std::to_string(port) +
                      ": cannot listen there (in use or not a local "
                      "address)");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("metrics at http://{}:{}/metrics", host, port);
}

metrics_server::~metrics_server() {
  server_->stop();
  if (thread_.joinable())
    thread_.join();
}

} // namespace bgagent
