#include "actors/gatekeeper.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>
#include <unordered_map>

#include <caf/all.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "actors/admin_endpoint.hpp"
#include "actors/node_gateway.hpp"
#include "actors/peer_address.hpp"
#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/events.hpp"
#include "messages/gatekeeper_actor.hpp"
#include "messages/wire_fingerprint.hpp"
#include "messages/worker_context.hpp"
#include "actors/head_handles.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

struct failures {
  clock_type::time_point window_start;
  uint32_t count = 0;      // refusals of any kind (audit flood limit)
  uint32_t bad_hellos = 0; // wrong secrets (guessing limit)
  bool limited_audited = false; // the first rate-limited refusal was audited
};

struct gatekeeper_state {
  gatekeeper_settings settings;
  std::string wire; // wire_fingerprint() of this process
  head_handles handles; // never sent to a node
  std::unordered_map<std::string, failures> refused; // by peer host
  // The node gateways handed out: they end with the gatekeeper. Weak, and
  // the ended ones dropped at each hello: a long `serve` with nodes coming
  // and going keeps only the live ones.
  std::shared_ptr<std::vector<caf::actor_addr>> gateways =
    std::make_shared<std::vector<caf::actor_addr>>();
  // The admin endpoints handed out: they end with it too (an idle one would
  // otherwise hold the head's exit for its 120 s).
  std::shared_ptr<std::vector<caf::actor_addr>> admins =
    std::make_shared<std::vector<caf::actor_addr>>();
  static inline const char* name = "gatekeeper";
};

using gatekeeper_ptr = gatekeeper_actor::stateful_pointer<gatekeeper_state>;

// Drops the actors that ended (no one holds them any more) from `live`,
// then adds `added`.
void keep_live(std::vector<caf::actor_addr>& live, caf::actor_addr added) {
  live.erase(std::remove_if(live.begin(), live.end(),
                            [](const caf::actor_addr& a) {
                              return !caf::actor_cast<caf::strong_actor_ptr>(
                                a);
                            }),
             live.end());
  live.push_back(std::move(added));
}

// Counts a refusal from `host` in its current window.
failures& count_refusal(gatekeeper_ptr self, const std::string& host) {
  auto& st = self->state;
  auto now = clock_type::now();
  auto& f = st.refused[host];
  auto window = std::chrono::duration<double>(
    st.settings.failure_window_seconds);
  if (f.count == 0 || now - f.window_start > window) {
    f.window_start = now;
    f.count = 0;
    f.bad_hellos = 0;
    f.limited_audited = false;
  }
  ++f.count;
  return f;
}

bool is_limited(gatekeeper_ptr self, const std::string& host) {
  auto& st = self->state;
  auto i = st.refused.find(host);
  if (i == st.refused.end())
    return false;
  auto window = std::chrono::duration<double>(
    st.settings.failure_window_seconds);
  return i->second.bad_hellos >= st.settings.max_failures &&
         clock_type::now() - i->second.window_start <= window;
}

void refuse(gatekeeper_ptr self, const std::string& address,
            const std::string& node_name, const std::string& why) {
  auto& f = count_refusal(self, peer_host(address));
  bool over = f.count > self->state.settings.max_failures;
  if (over && f.limited_audited)
    return; // already said: this host is rate-limited
  if (over)
    f.limited_audited = true;
  auto detail = why + " from " + address +
                (over ? " (rate-limited: further refusals from this host are "
                        "not audited until the window passes)"
                      : "");
  spdlog::warn("refused: {}", detail);
  self->send(self->state.handles.auditor,
             make_event("admin_refused", {}, -1, detail, node_name));
}

std::string describe(const caf::message_view& x) {
  auto& c = x.content();
  std::string out = "unexpected message";
  if (c.size() > 0 && c.match_element<caf::atom_value>(0))
    out += " '" + to_string(c.get_as<caf::atom_value>(0)) + "'";
  out += " (" + std::to_string(c.size()) + " element(s))";
  return out;
}

gatekeeper_actor::behavior_type gatekeeper(gatekeeper_ptr self,
                                           gatekeeper_settings s,
                                           head_handles handles) {
  self->state.settings = std::move(s);
  self->state.handles = std::move(handles);
  self->state.wire = wire_fingerprint(self->system().config());
  // No exit message is obeyed: to a BASP peer an exit_msg is just bytes,
  // with any source it likes. Only `kill`, which CAF does not let an actor
  // refuse, ends the gatekeeper (the head sends it at the end of the run;
  // from anyone else the supervisor's watch raises a critical alert).
  self->attach_functor([gws = self->state.gateways,
                        admins = self->state.admins](const caf::error&) {
    for (auto& g : *gws)
      caf::anon_send_exit(g, caf::exit_reason::kill);
    for (auto& a : *admins)
      caf::anon_send_exit(a, caf::exit_reason::kill);
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto reason = to_string(em.reason);
    resolve_peer(self, self->current_sender(),
                 [=](const std::string& address) {
                   refuse(self, address, {},
                          "an exit message (" + reason + ")");
                 });
  });
  // Anything but a hello: refused, audited, answered with an error.
  self->set_default_handler(
    [](caf::scheduled_actor* ptr, caf::message_view& x)
      -> caf::result<caf::message> {
      auto* me = static_cast<gatekeeper_ptr>(ptr);
      auto what = describe(x);
      resolve_peer(me, me->current_sender(),
                   [=](const std::string& address) {
                     refuse(me, address, {}, what + " without a valid hello");
                   });
      return caf::sec::unexpected_message;
    });
  return {
    [=](hello_atom, const std::string& role, const std::string& secret,
        const std::string& node_name,
        const std::string& wire) -> caf::result<welcome> {
      // Before make_response_promise, which takes the sender over.
      auto sender = self->current_sender();
      auto rp = self->make_response_promise<welcome>();
      // Compare before the asynchronous lookup: `secret` is not kept.
      bool ok = secrets_match(secret, self->state.settings.secret);
      resolve_peer(self, sender, [=](const std::string& address) mutable {
        auto& st = self->state;
        welcome w;
        w.head = st.settings.head;
        if (is_limited(self, peer_host(address))) {
          w.reason = "too many refused hellos from " + peer_host(address) +
                     "; try again later";
          refuse(self, address, node_name, "hello (rate-limited)");
          rp.deliver(w);
          return;
        }
        if (!ok) {
          w.reason = "wrong cluster secret (BG_AGENT_SECRET / "
                     "BG_AGENT_SECRET_FILE)";
          refuse(self, address, node_name, "hello with a wrong secret");
          ++st.refused[peer_host(address)].bad_hellos;
          rp.deliver(w);
          return;
        }
        if (wire != st.wire) {
          // The peer's text is shown only in its expected shape.
          std::string theirs = well_formed_wire(wire) ? wire : "(malformed)";
          w.reason = "it runs bgagent " + st.wire + " and this node " +
                     theirs + ": their messages differ; run one release on "
                              "every machine";
          refuse(self, address, node_name,
                 "hello from another release (" + theirs + ", the head " +
                   st.wire + ")");
          rp.deliver(w);
          return;
        }
        if (role == "worker") {
          // The node's own gateway: the one head actor it may address.
          // It ends with the gatekeeper; watched by the supervisor, so its
          // failure is an alert.
          w.accepted = true;
          gateway_settings gs;
          gs.node = node_name;
          gs.address = address;
          gs.remote = true;
          gs.cache = st.settings.cache;
          gs.response_format = st.settings.response_format;
          gs.cache_known = st.settings.cache_known;
          w.ctx.gateway = spawn_node_gateway(self->system(), st.handles, gs);
          keep_live(*st.gateways, w.ctx.gateway.address());
          self->send(st.handles.supervisor, watch_atom::value,
                     caf::actor_cast<caf::actor>(w.ctx.gateway),
                     "the node gateway of " + node_name + " (" + address +
                       ")");
          spdlog::info("worker node {} ({}) said hello", node_name, address);
          spdlog::debug("node {}: gateway actor id {}", node_name,
                        w.ctx.gateway.id());
        } else if (role == "admin" && sender) {
          w.accepted = true;
          w.admin = spawn_admin_endpoint(self->system(), st.handles,
                                         sender->node(), address, node_name);
          // Ended sessions leave: a long `serve` polled by an admin every
          // minute keeps only the live ones.
          keep_live(*st.admins, w.admin.address());
        } else {
          w.reason = "unknown role \"" + role + "\"";
          refuse(self, address, node_name, "hello with an unknown role");
        }
        rp.deliver(w);
      });
      return rp;
    },
  };
}

} // namespace

bool secrets_match(const std::string& a, const std::string& b) {
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof(da)) == 0 && !b.empty();
}

gatekeeper_actor spawn_gatekeeper(caf::actor_system& sys,
                                  gatekeeper_settings s,
                                  const head_handles& handles) {
  return sys.spawn(gatekeeper, std::move(s), handles);
}

} // namespace bgagent
