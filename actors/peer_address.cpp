#include "actors/peer_address.hpp"

#include <chrono>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>

namespace bgagent {

void resolve_peer(gatekeeper_actor::base* self,
                  const caf::strong_actor_ptr& sender,
                  std::function<void(const std::string&)> f) {
  if (!sender) {
    f("anonymous");
    return;
  }
  auto nid = sender->node();
  if (nid == self->node()) {
    f("local");
    return;
  }
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, std::chrono::seconds(5), caf::get_atom::value, nid)
    .then(
      [=](const caf::node_id&, const std::string& host, uint16_t port) {
        if (host.empty())
          f("node " + to_string(nid));
        else
          f(host + ":" + std::to_string(port));
      },
      [=](caf::error&) { f("node " + to_string(nid)); });
}

std::string peer_host(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || address.rfind("node ", 0) == 0)
    return address;
  return address.substr(0, colon);
}

} // namespace bgagent
