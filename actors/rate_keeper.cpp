#include "actors/rate_keeper.hpp"

#include <algorithm>
#include <deque>
#include <map>

#include <caf/all.hpp>

#include "policy/rate_window.hpp"

namespace bgagent {

namespace {

using clock_type = rate_window::clock_type;

struct waiting_call {
  uint64_t tokens;
  caf::typed_response_promise<uint64_t> rp;
};

struct key_state {
  explicit key_state(const rate_settings& s)
    : window(scaled(s.rpm, s.window_seconds), scaled(s.tpm, s.window_seconds),
             s.window_seconds, std::min(0.5, s.window_seconds / 10)) {}
  // A per-minute limit over `window` seconds, never above it, at least 1.
  static uint64_t scaled(uint64_t per_minute, double window) {
    if (per_minute == 0)
      return 0;
    return std::max<uint64_t>(
      1, static_cast<uint64_t>(static_cast<double>(per_minute) * window / 60));
  }
  rate_window window;
  std::deque<waiting_call> queue;
  bool armed = false; // a wake is on its way
};

struct rate_keeper_state {
  rate_settings s;
  std::map<std::string, key_state> keys;          // "provider/model"
  std::map<std::string, clock_type::time_point> holds; // by provider
  static inline const char* name = "rate_keeper";
};

using self_ptr = rate_keeper_actor::stateful_pointer<rate_keeper_state>;

key_state& key_of(self_ptr self, const std::string& key) {
  auto& keys = self->state.keys;
  auto i = keys.find(key);
  if (i == keys.end()) {
    i = keys.emplace(key, key_state{self->state.s}).first;
    auto h = self->state.holds.find(key.substr(0, key.find('/')));
    if (h != self->state.holds.end())
      i->second.window.hold_until(h->second);
  }
  return i->second;
}

// Lets go the calls at the head of `key`'s queue that fit now, and sets a
// wake for when the next one will.
void drain(self_ptr self, const std::string& key) {
  auto& k = key_of(self, key);
  while (!k.queue.empty()) {
    auto now = clock_type::now();
    auto wait = k.window.wait(now, k.queue.front().tokens);
    if (wait.count() > 0) {
      if (!k.armed) {
        k.armed = true;
        // At least 1 ms: the clock's resolution, never a busy loop.
        self->delayed_send(
          self, std::max<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(1)),
          wake_atom::value, key);
      }
      return;
    }
    auto call = std::move(k.queue.front());
    k.queue.pop_front();
    call.rp.deliver(k.window.admit(now, call.tokens));
  }
}

} // namespace

rate_keeper_actor::behavior_type rate_keeper(self_ptr self, rate_settings s) {
  self->state.s = s;
  return {
    [=](pace_atom, const std::string& key,
        uint64_t tokens) -> caf::result<uint64_t> {
      auto& k = key_of(self, key);
      auto now = clock_type::now();
      if (k.queue.empty() && k.window.wait(now, tokens).count() == 0)
        return k.window.admit(now, tokens);
      auto rp = self->make_response_promise<uint64_t>();
      k.queue.push_back(waiting_call{tokens, rp});
      drain(self, key);
      return rp;
    },
    [=](refund_atom, const std::string& key, uint64_t slot, uint64_t tokens) {
      auto& k = key_of(self, key);
      k.window.settle(slot, tokens);
      drain(self, key);
    },
    [=](hold_atom, const std::string& provider, int64_t ms) {
      auto& st = self->state;
      auto until = clock_type::now() +
                   std::chrono::milliseconds(std::max<int64_t>(ms, 0));
      auto& h = st.holds[provider];
      h = std::max(h, until);
      for (auto& [key, k] : st.keys)
        if (key.compare(0, provider.size() + 1, provider + "/") == 0)
          k.window.hold_until(until);
    },
    [=](wake_atom, const std::string& key) {
      key_of(self, key).armed = false;
      drain(self, key);
    },
  };
}

rate_keeper_actor spawn_rate_keeper(caf::actor_system& sys, rate_settings s) {
  return sys.spawn(rate_keeper, s);
}

} // namespace bgagent
