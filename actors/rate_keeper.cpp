#include "actors/rate_keeper.hpp"

#include <algorithm>
#include <deque>
#include <map>

#include <caf/all.hpp>

#include "policy/rate_window.hpp"

namespace bgagent {

namespace {

using clock_type = rate_window::clock_type;
using std::chrono::milliseconds;

struct waiting_call {
  uint64_t tokens;
  caf::typed_response_promise<uint64_t> rp;
};

// No hold longer than this, whoever asks (a task's own retry waits at most
// as long): a provider's "reset at midnight" must not stall a run for hours.
constexpr int64_t max_hold_ms = 600 * 1000;
// Distinct "provider/model" keys kept; more (a confused node) share one.
constexpr size_t max_keys = 1000;

// A per-minute limit over `window` seconds, never above it, at least 1.
uint64_t scaled(uint64_t per_minute, double window) {
  if (per_minute == 0)
    return 0;
  per_minute = std::min<uint64_t>(per_minute, 1000000000000ULL);
  return std::max<uint64_t>(
    1, static_cast<uint64_t>(static_cast<double>(per_minute) * window / 60));
}

struct key_state {
  explicit key_state(const rate_settings& s)
    : window(scaled(s.rpm, s.window_seconds), scaled(s.tpm, s.window_seconds),
             s.window_seconds, std::min(0.5, s.window_seconds / 10)) {}
  rate_window window;
  std::deque<waiting_call> queue;
  bool armed = false; // a wake is on its way
  bool told = false;  // the provider's headers gave the limits
  // Calls let go and not yet refunded (slot -> when), and the most that
  // may be (AIMD, learnt from 429s without headers; 0: no cap).
  std::map<uint64_t, clock_type::time_point> flying;
  double cap = 0;
};

struct rate_keeper_state {
  rate_settings s;
  std::map<std::string, key_state> keys;               // "provider/model"
  std::map<std::string, clock_type::time_point> holds; // by provider
  bool stopped = false; // the run stops: nothing more goes
  static inline const char* name = "rate_keeper";
};

using self_ptr = rate_keeper_actor::stateful_pointer<rate_keeper_state>;

key_state& key_of(self_ptr self, const std::string& asked) {
  auto& keys = self->state.keys;
  auto i = keys.find(asked);
  if (i != keys.end())
    return i->second;
  auto key = keys.size() < max_keys ? asked : std::string("*/*");
  i = keys.find(key);
  if (i == keys.end()) {
    i = keys.emplace(key, key_state{self->state.s}).first;
    auto h = self->state.holds.find(key.substr(0, key.find('/')));
    if (h != self->state.holds.end())
      i->second.window.hold_until(h->second);
  }
  return i->second;
}

// A call whose refund never came (its worker or node died first) has
// ended by the attempt's timeout: it no longer counts as in flight. Slots
// grow with time, so the oldest calls come first: this runs on every pace
// and looks only at the ones it drops, plus one.
void forget_old_calls(const rate_settings& s, key_state& k,
                      clock_type::time_point now) {
  auto oldest = now - std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>(s.call_seconds));
  while (!k.flying.empty() && k.flying.begin()->second < oldest)
    k.flying.erase(k.flying.begin());
}

// How long until the next call of `tokens` may go (0: now).
std::chrono::nanoseconds wait_for(const rate_settings& s, key_state& k,
                                  clock_type::time_point now,
                                  uint64_t tokens) {
  auto wait = k.window.wait(now, tokens);
  forget_old_calls(s, k, now);
  if (k.cap > 0) {
    if (k.flying.size() >= static_cast<size_t>(k.cap))
      // A refund lets the next one go; the timer only catches lost ones.
      wait = std::max<std::chrono::nanoseconds>(wait, milliseconds(1000));
  }
  return wait;
}

uint64_t admit(key_state& k, clock_type::time_point now, uint64_t tokens) {
  auto slot = k.window.admit(now, tokens);
  k.flying.emplace(slot, now);
  return slot;
}

// Lets go the calls at the head of `key`'s queue that fit now, and sets a
// wake for when the next one will.
void drain(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto& k = key_of(self, key);
  while (!k.queue.empty()) {
    auto now = clock_type::now();
    auto wait = wait_for(st.s, k, now, k.queue.front().tokens);
    if (wait.count() > 0) {
      if (!k.armed) {
        k.armed = true;
        // At least 1 ms: the clock's resolution, never a busy loop.
        self->delayed_send(
          self, std::max<std::chrono::nanoseconds>(wait, milliseconds(1)),
          wake_atom::value, key);
      }
      return;
    }
    auto call = std::move(k.queue.front());
    k.queue.pop_front();
    call.rp.deliver(admit(k, now, call.tokens));
  }
}

// What one answer teaches about its key's pace (see rate_keeper.hpp).
void learn(const rate_settings& s, key_state& k, int64_t limit_requests,
           int64_t limit_tokens, int64_t wait_ms, bool limited) {
  auto& w = k.window;
  if (wait_ms >= 0)
    w.hold_until(clock_type::now() +
                 milliseconds(std::min(wait_ms, max_hold_ms)));
  if (limit_requests > 0 || limit_tokens > 0) {
    // The headers' limits, where the user set none.
    auto rpm = s.rpm == 0 && limit_requests > 0
                 ? scaled(static_cast<uint64_t>(limit_requests),
                          s.window_seconds)
                 : w.rpm();
    auto tpm = s.tpm == 0 && limit_tokens > 0
                 ? scaled(static_cast<uint64_t>(limit_tokens),
                          s.window_seconds)
                 : w.tpm();
    w.set_limits(rpm, tpm);
    k.told = true;
    k.cap = 0;
    return;
  }
  if (s.rpm > 0 || s.tpm > 0 || k.told)
    return; // paced by the user's or the provider's figures
  if (limited) { // half the calls in flight (this one included), never up
    auto half = std::max(1.0, static_cast<double>(k.flying.size()) / 2);
    k.cap = k.cap > 0 ? std::min(k.cap, half) : half;
  } else if (k.cap > 0) {
    k.cap += 1.0 / k.cap; // about one more per round of calls
  }
}

} // namespace

rate_keeper_actor::behavior_type rate_keeper(self_ptr self, rate_settings s) {
  self->state.s = s;
  return {
    [=](pace_atom, const std::string& key,
        uint64_t tokens) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (st.stopped)
        return uint64_t{0}; // the run stops: this call does not go
      auto& k = key_of(self, key);
      auto now = clock_type::now();
      if (k.queue.empty() && wait_for(st.s, k, now, tokens).count() == 0)
        return admit(k, now, tokens);
      auto rp = self->make_response_promise<uint64_t>();
      k.queue.push_back(waiting_call{tokens, rp});
      drain(self, key);
      return rp;
    },
    [=](refund_atom, const std::string& key, uint64_t slot, uint64_t tokens,
        int64_t limit_requests, int64_t limit_tokens, int64_t wait_ms,
        bool limited) {
      auto& st = self->state;
      auto& k = key_of(self, key);
      k.window.settle(slot, tokens);
      learn(st.s, k, limit_requests, limit_tokens, wait_ms, limited);
      k.flying.erase(slot);
      drain(self, key);
    },
    [=](refund_atom, const std::string& key, uint64_t slot, uint64_t tokens) {
      // No answer came (denied, skipped, its worker gone): nothing learnt.
      auto& k = key_of(self, key);
      k.window.settle(slot, tokens);
      k.flying.erase(slot);
      drain(self, key);
    },
    [=](drain_atom) {
      auto& st = self->state;
      st.stopped = true;
      for (auto& [key, k] : st.keys) {
        for (auto& call : k.queue)
          call.rp.deliver(uint64_t{0});
        k.queue.clear();
      }
    },
    [=](hold_atom, const std::string& provider, int64_t ms) {
      auto& st = self->state;
      auto until = clock_type::now() +
                   milliseconds(std::clamp<int64_t>(ms, 0, max_hold_ms));
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
