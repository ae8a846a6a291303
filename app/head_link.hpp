// How a node reaches the head: HOST:PORT parsing, the cluster secret, and
// the hello through the head's gatekeeper.
//
// Contract: parse_endpoint and the secret functions throw usage_error
// naming the flag, variable or file at fault. say_hello throws exit_error
// with exit_code::unreachable ("cannot reach the head at HOST:PORT: ...")
// or exit_code::refused ("the head at HOST:PORT refused us: ...").
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

namespace bgagent {

struct config;
struct welcome;

struct endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// "HOST:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1).
endpoint parse_endpoint(const std::string& what, const std::string& text);

// True for 127.0.0.0/8, ::1 and "localhost": addresses only this machine
// can reach.
bool is_loopback(const std::string& host);

// Throws usage_error ("WHAT HOST:PORT: cannot listen there: ...") unless a
// TCP socket can be bound there right now. Run before anything is changed,
// so a taken port or a foreign address leaves the store untouched.
void check_can_listen(const std::string& what, const endpoint& e);

// The secret a node presents: BG_AGENT_SECRET, else the contents of
// BG_AGENT_SECRET_FILE, else "<db>.secret" if it exists (same machine).
std::string node_secret(const config& c);

// The head's secret: as node_secret, else a new random one written to
// "<db>.secret" with mode 0600. `where` says where it came from.
std::string head_secret(const config& c, std::string& where);

// The path of the generated secret file for a database.
std::string secret_file_for(const std::string& db_path);

// Connects to the head's gatekeeper (TLS when c.tls()) and says hello.
welcome say_hello(caf::actor_system& sys, const config& c,
                  const endpoint& head, const std::string& role,
                  const std::string& secret, const std::string& node_name);

// "<hostname>-<pid>", the default name of a node.
std::string default_node_name(const std::string& prefix = {});

} // namespace bgagent
