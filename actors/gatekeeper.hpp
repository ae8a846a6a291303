// The gatekeeper: the only actor `bgagent run --listen` publishes. Nothing
// reaches the head's other actors from the network without passing it.
//
// Contract (messages):
//   (hello_atom, string role, string secret, string node_name) -> welcome
//       role "worker": accepted with the worker_context (supervisor, budget
//       keeper, checkpointer, auditor, monitor) its task workers use; the
//       node then joins through the supervisor.
//       role "admin": accepted with a fresh admin endpoint that obeys only
//       the node that said hello (see admin_endpoint.hpp).
//   The secret is compared in constant time (SHA-256 of both, then
//   CRYPTO_memcmp). A wrong secret, an unknown role, or any other message
//   (caught by the default handler: commands without a hello, unexpected
//   types) is refused, answered with a refusal or sec::unexpected_message,
//   audited as `admin_refused` with the peer's address, and changes
//   nothing. Refusals are rate-limited per peer host, per
//   failure_window_seconds: after max_failures wrong secrets, hellos from
//   that host are refused without being checked (no guessing); after
//   max_failures refusals of any kind, one more line says the host is
//   rate-limited and further refusals are not audited (no log flooding).
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

namespace bgagent {

struct worker_context;

struct gatekeeper_settings {
  std::string secret;           // the cluster secret (never empty)
  std::string head = "head";    // the head's node name
  uint32_t max_failures = 5;
  double failure_window_seconds = 60;
};

caf::actor spawn_gatekeeper(caf::actor_system& sys, gatekeeper_settings s,
                            const worker_context& handles);

// True when `a` and `b` are equal, in time independent of where they differ.
bool secrets_match(const std::string& a, const std::string& b);

} // namespace bgagent
