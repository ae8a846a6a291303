// The gatekeeper: the only actor `bgagent run --listen` publishes. Nothing
// reaches the head's other actors from the network without passing it.
//
// Contract (messages/gatekeeper_actor.hpp):
//   (hello_atom, string role, string secret, string node_name,
//    string wire) -> welcome
//       role "worker": accepted with a worker_context holding a new node
//       gateway for that node alone (node_gateway.hpp), the only head actor
//       the node can address; its workers join and run through it. No
//       other head actor's handle is ever sent to a node.
//       role "admin": accepted with a fresh admin endpoint that obeys only
//       the node that said hello (see admin_endpoint.hpp).
//   The secret is compared in constant time (SHA-256 of both, then
//   CRYPTO_memcmp). With the right secret, a node whose `wire`
//   (messages/wire_fingerprint.hpp) is not the head's is refused: it would
//   misread the head's messages. A wrong secret, another release, an
//   unknown role, or any other message
//   (caught by the default handler: commands without a hello, unexpected
//   types) is refused, answered with a refusal or sec::unexpected_message,
//   audited as `admin_refused` with the peer's address, and changes
//   nothing. Refusals are rate-limited per peer host, per
//   failure_window_seconds: after max_failures wrong secrets, hellos from
//   that host are refused without being checked (no guessing); after
//   max_failures refusals of any kind, one more line says the host is
//   rate-limited and further refusals are not audited (no log flooding).
//   Exit messages from other nodes are refused the same way; a `kill`
//   (which CAF does not let an actor refuse) ends it, and the supervisor,
//   which watches it, raises a critical alert.
// Threat model: CAF's BASP has no authentication; mutual TLS keeps out
// peers without a certificate from the cluster's CA, and this gatekeeper
// keeps certified peers without the secret away from everything but
// itself. A valid certificate plus the secret is full trust.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/gatekeeper_actor.hpp"

namespace bgagent {

struct head_handles;
class cache_filter;

struct gatekeeper_settings {
  std::string secret;           // the cluster secret (never empty)
  std::string head = "head";    // the head's node name
  uint32_t max_failures = 5;
  double failure_window_seconds = 60;
  // For the nodes' gateways (gateway_settings).
  bool cache = false;
  bool response_format = true;
  std::shared_ptr<cache_filter> cache_known;
};

gatekeeper_actor spawn_gatekeeper(caf::actor_system& sys,
                                  gatekeeper_settings s,
                                  const head_handles& handles);

// True when `a` and `b` are equal, in time independent of where they differ.
bool secrets_match(const std::string& a, const std::string& b);

} // namespace bgagent
