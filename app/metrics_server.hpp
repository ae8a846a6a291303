// The Prometheus endpoint of `bgagent run --metrics HOST:PORT`: GET /metrics
// served by cpp-httplib from its own thread.
//
// Contract: each scrape asks the monitor (metrics_atom) and the
// checkpointer (status_atom) by message, with a timeout, from a scoped
// actor on the HTTP thread; no state is shared with any actor. The store's
// counts (a scan of every task) are read at most once a second: scrapes
// within that second share them (app/recent_value.hpp), so a flood of
// scrapes on this unauthenticated port costs the run one scan a second. The
// constructor binds the port or throws usage_error naming the address; the
// destructor stops the server and joins its thread.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "messages/checkpointer_actor.hpp"
#include "messages/monitor_actor.hpp"
#include "messages/run.hpp"
#include <caf/fwd.hpp>

namespace httplib {
class Server;
}

namespace bgagent {

// One scrape with the store's counts read by the caller: the Prometheus
// text, or false and why in `out` (the monitor did not answer within
// 10 s). Call from a thread of one's own (it blocks), never from an actor.
bool scrape_metrics(caf::actor_system& sys, const monitor_actor& monitor,
                    const status_report& counts, std::string& out);

class metrics_server {
public:
  metrics_server(caf::actor_system& sys, monitor_actor monitor,
                 checkpointer_actor checkpointer, const std::string& host,
                 uint16_t port);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

} // namespace bgagent
