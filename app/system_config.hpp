// The actor system configuration of every bgagent process: all message
// types registered, the middleman loaded (remote nodes), bgagent's
// scheduling policy, CAF's own console output kept quiet. Include only from
// .cpp files: it pulls in CAF.
//
// Remote links: BASP heartbeats every 2 s and a connection silent for 20 s
// is declared dead, so a node that is cut off (not only one that closed its
// socket) is noticed. Only peers that call themselves "bgagent" connect.
// use_tls() loads caf::openssl before the system is built.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scheduler/coordinator.hpp>

#include "app/next_slot_scheduling.hpp"

#include "messages/message_types.hpp"

namespace bgagent {

class system_config : public caf::actor_system_config {
public:
  system_config() {
    bgagent::add_message_types(*this);
    load<caf::io::middleman>();
    // CAF's work sharing with a "next" slot per scheduler thread
    // (app/next_slot_scheduling.hpp): a chain of messages stays on one
    // thread instead of waking another per message, and idle threads sleep
    // rather than poll as work stealing's do. Measured with
    // bench/offline_throughput: +19 % tasks/s at 64 workers on 2 cores.
    // (CAF's "scheduler.policy" setting is then not read.)
    load<caf::scheduler::coordinator<next_slot_scheduling>>();
    // One scheduler thread per core (CAF's default is at least 4): on two
    // cores, four threads plus the detached store and audit threads take
    // turns on the CPU, and every turn is a context switch.
    set("scheduler.max-threads",
        static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
    set("middleman.heartbeat-interval",
        caf::timespan{std::chrono::seconds(2)});
    set("middleman.connection-timeout",
        caf::timespan{std::chrono::seconds(20)});
    set("middleman.app-identifiers", std::vector<std::string>{"bgagent"});
  }

  // Certificates for caf::openssl: with TLS every node has a certificate
  // and key; `ca` verifies the peer's.
  void use_tls(const std::string& cert, const std::string& key,
               const std::string& ca) {
    openssl_certificate = cert;
    openssl_key = key;
    openssl_cafile = ca;
    load<caf::openssl::manager>();
  }
};

} // namespace bgagent
