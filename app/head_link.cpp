#include "app/head_link.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "app/config.hpp"
#include "app/errors.hpp"
#include "app/random_hex.hpp"
#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/gatekeeper_actor.hpp"
#include "messages/trim.hpp"
#include "messages/wire_fingerprint.hpp"

namespace bgagent {

namespace {

std::string read_secret_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw usage_error(std::string(what) + "=" + path +
                      ": cannot read the secret file");
  std::string s((std::istreambuf_iterator<char>(in)),
                std::istreambuf_iterator<char>());
  s = trim(s);
  if (s.empty())
    throw usage_error(std::string(what) + "=" + path +
                      ": the secret file is empty");
  return s;
}

} // namespace

endpoint parse_endpoint(const std::string& what, const std::string& text) {
  endpoint e;
  auto colon = text.rfind(':');
  std::string port = colon == std::string::npos ? text
                                                : text.substr(colon + 1);
  if (colon != std::string::npos && colon > 0)
    e.host = text.substr(0, colon);
  if (!e.host.empty() && e.host.front() == '[' && e.host.back() == ']')
    e.host = e.host.substr(1, e.host.size() - 2);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos
      || port.size() > 5 || std::stoul(port) == 0 || std::stoul(port) > 65535)
    throw usage_error(what + " " + text +
                      ": expected HOST:PORT with a port from 1 to 65535");
  e.port = static_cast<uint16_t>(std::stoul(port));
  return e;
}

bool is_loopback(const std::string& host) {
  if (host == "localhost")
    return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void check_can_listen(const std::string& what, const endpoint& e) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  auto port = std::to_string(e.port);
  if (int rc = getaddrinfo(e.host.c_str(), port.c_str(), &hints, &res);
      rc != 0)
    throw usage_error(what + " " + e.text() + ": cannot listen there: " +
                      gai_strerror(rc));
  std::string err = "no usable address";
  bool ok = false;
  for (auto* ai = res; ai && !ok; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
      continue;
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      ok = true;
    else
      err = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  if (!ok)
    throw usage_error(what + " " + e.text() + ": cannot listen there: " +
                      err);
}

std::string secret_file_for(const std::string& db_path) {
  return db_path + ".secret";
}

std::string node_secret(const config& c) {
  if (!c.secret.empty())
    return c.secret;
  if (!c.secret_file.empty())
    return read_secret_file(c.secret_file, "BG_AGENT_SECRET_FILE");
  auto guess = secret_file_for(c.db_path);
  if (std::ifstream(guess))
    return read_secret_file(guess, "secret file");
  throw usage_error("no cluster secret: set BG_AGENT_SECRET or "
                    "BG_AGENT_SECRET_FILE (the head prints where its secret "
                    "file is)");
}

std::string head_secret(const config& c, std::string& where) {
  if (!c.secret.empty()) {
    where = "BG_AGENT_SECRET";
    return c.secret;
  }
  auto path = c.secret_file.empty() ? secret_file_for(c.db_path)
                                    : c.secret_file;
  if (std::ifstream(path)) {
    where = path;
    return read_secret_file(path, c.secret_file.empty()
                                    ? "secret file"
                                    : "BG_AGENT_SECRET_FILE");
  }
  auto secret = random_hex(32);
  auto old = umask(077);
  std::ofstream out(path, std::ios::trunc);
  umask(old);
  out << secret << "\n";
  out.close();
  if (!out)
    throw usage_error(path + ": cannot write the cluster secret file");
  chmod(path.c_str(), 0600);
  where = path + " (new)";
  return secret;
}

welcome say_hello(caf::actor_system& sys, const config& c,
                  const endpoint& head, const std::string& role,
                  const std::string& secret, const std::string& node_name) {
  // Typed: CAF checks at connect that the head's gatekeeper speaks the
  // same interface (a head of another version is refused here).
  auto gk = c.tls() ? caf::openssl::remote_actor<gatekeeper_actor>(
                        sys, head.host, head.port)
                    : sys.middleman().remote_actor<gatekeeper_actor>(
                        head.host, head.port);
  if (!gk) {
    // A head whose gatekeeper has another interface is of another release
    // (an older one may not even hear the hello that says so).
    if (gk.error() == caf::sec::unexpected_actor_messaging_interface)
      throw exit_error(exit_code::refused,
                       "the head at " + head.text() +
                         " runs another release of bgagent (its gatekeeper "
                         "speaks other messages): run one release on every "
                         "machine");
    // CAF's rendering (system_error(cannot_connect_to_node, ...)) says
    // nothing a user can act on; the usual cause is a head not running.
    std::string why =
      gk.error() == caf::sec::cannot_connect_to_node
        ? "nothing answers there (is `bgagent run --listen " + head.text() +
            "` running?)"
        : sys.render(gk.error());
    throw exit_error(exit_code::unreachable,
                     "cannot reach the head at " + head.text() + ": " + why +
                       (c.tls() ? " (TLS: BG_AGENT_TLS_CA / "
                                  "BG_AGENT_TLS_CERT)"
                                : ""));
  }
  caf::scoped_actor self{sys};
  welcome w;
  std::string err;
  self
    ->request(*gk, std::chrono::seconds(30), hello_atom::value, role, secret,
              node_name, wire_fingerprint(sys.config()))
    .receive([&](welcome& x) { w = std::move(x); },
             [&](caf::error& e) { err = sys.render(e); });
  if (!err.empty())
    throw exit_error(exit_code::unreachable,
                     "the head at " + head.text() +
                       " did not answer the hello: " + err);
  if (!w.accepted)
    throw exit_error(exit_code::refused,
                     "the head at " + head.text() + " refused us: " + w.reason);
  return w;
}

std::string default_node_name(const std::string& prefix) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return prefix + host + "-" + std::to_string(getpid());
}

} // namespace bgagent
