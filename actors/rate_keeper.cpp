#include "actors/rate_keeper.hpp"

#include <algorithm>
#include <deque>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "messages/utf8.hpp"
#include "policy/circuit_breaker.hpp"
#include "policy/rate_window.hpp"

namespace bgagent {

namespace {

using clock_type = rate_window::clock_type;
using std::chrono::milliseconds;

struct waiting_call {
  uint64_t tokens;
  bool may_fall_back;
  caf::typed_response_promise<uint64_t> rp;
};

// No hold longer than this, whoever asks (a task's own retry waits at most
// as long): a provider's "reset at midnight" must not stall a run for hours.
constexpr int64_t max_hold_ms = 600 * 1000;
// Distinct "provider/model" keys kept; more (a confused node) share one.
constexpr size_t max_keys = 1000;

// A per-minute limit over `window` seconds, never above it, at least 1.
uint64_t limit_over_window(uint64_t per_minute, double window) {
  if (per_minute == 0)
    return 0;
  per_minute = std::min<uint64_t>(per_minute, 1000000000000ULL);
  return std::max<uint64_t>(
    1, static_cast<uint64_t>(static_cast<double>(per_minute) * window / 60));
}

std::chrono::nanoseconds seconds(double x) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
    std::chrono::duration<double>(x));
}

struct key_state {
  explicit key_state(const rate_settings& s)
    : window(limit_over_window(s.rpm, s.window_seconds),
             limit_over_window(s.tpm, s.window_seconds), s.window_seconds, std::min(0.5, s.window_seconds / 10)),
      circuit(s.circuit_threshold, seconds(s.probe_seconds)),
      learning(s.rpm == 0 && s.tpm == 0 && s.slow_start) {}
  rate_window window;
  circuit_breaker circuit;
  uint64_t probe_slot = 0;    // the call let go as the circuit's probe
  std::string last_down;      // the task of the last down answer
  bool outage_told = false;   // the supervisor knows it is open too long
  std::deque<waiting_call> queue;
  bool armed = false; // a wake is on its way
  bool told = false;  // the provider's headers gave the limits
  // Nothing is known of the key's limits yet (no BG_AGENT_RPM / _TPM, no
  // answer): one call goes first, and its answer's headers (or their
  // absence) set the pace for the rest (slow start).
  bool learning = false;
  // Calls let go and not yet refunded (slot -> when), and the most that
  // may be (AIMD, learnt from 429s without headers; 0: no cap).
  std::map<uint64_t, clock_type::time_point> flying;
  double cap = 0;
};

struct rate_keeper_state {
  rate_settings s;
  rate_keeper_links links;
  supervisor_actor supervisor; // told of an outage past the limit
  int64_t waiting = 0;         // calls waiting in every queue
  std::map<std::string, key_state> keys;               // "provider/model"
  std::map<std::string, clock_type::time_point> holds; // by provider
  bool stopped = false; // the run stops: nothing more goes
  static inline const char* name = "rate_keeper";
};

using rate_keeper_ptr = rate_keeper_actor::stateful_pointer<rate_keeper_state>;

key_state& key_of(rate_keeper_ptr self, const std::string& asked) {
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
  while (!k.flying.empty() && k.flying.begin()->second < oldest) {
    if (k.flying.begin()->first == k.probe_slot) { // its probe is lost too
      k.probe_slot = 0;
      k.circuit.probe_lost(now);
    }
    k.flying.erase(k.flying.begin());
  }
}

// How long until the next call of `tokens` may go (0: now).
std::chrono::nanoseconds wait_for(const rate_settings& s, key_state& k,
                                  clock_type::time_point now,
                                  uint64_t tokens) {
  auto wait = k.window.wait(now, tokens);
  forget_old_calls(s, k, now);
  if ((k.cap > 0 && k.flying.size() >= static_cast<size_t>(k.cap)) ||
      (k.learning && !k.flying.empty()))
    // A refund lets the next one go; the timer only catches lost ones.
    wait = std::max<std::chrono::nanoseconds>(wait, milliseconds(1000));
  // An open circuit lets only its probe go.
  return std::max<std::chrono::nanoseconds>(wait, k.circuit.wait(now));
}

// Lets a call go (wait_for said it may): while the circuit is open, as its
// probe.
uint64_t admit(key_state& k, clock_type::time_point now, uint64_t tokens,
               const rate_settings& s, call_counters* counters) {
  auto slot = k.window.admit(now, tokens);
  // Headroom for the dashboard and /metrics, per minute.
  if (counters) {
    auto per_minute = [&](uint64_t per_window) {
      return static_cast<uint64_t>(static_cast<double>(per_window) * 60 /
                                   s.window_seconds);
    };
    counters->set_rate_use(per_minute(k.window.rpm()),
                           per_minute(k.window.calls_in_window()));
  }
  k.flying.emplace(slot, now);
  if (k.circuit.ask(now) == circuit_breaker::gate::probe)
    k.probe_slot = slot;
  return slot;
}

void count_waiting(rate_keeper_ptr self, int64_t delta) {
  auto& st = self->state;
  st.waiting += delta;
  if (st.links.counters)
    st.links.counters->set_rate_waiting(st.waiting);
}

// The counters' view of the circuits: how many are open, since when the
// oldest.
void count_circuits(rate_keeper_ptr self) {
  auto& st = self->state;
  if (!st.links.counters)
    return;
  int64_t open = 0;
  auto oldest = clock_type::time_point::max();
  for (auto& [key, k] : st.keys)
    if (k.circuit.is_open()) {
      ++open;
      oldest = std::min(oldest, k.circuit.opened_at());
    }
  st.links.counters->set_circuits(open, open == 0 ? clock_type::now()
                                                 : oldest);
}

void tell(rate_keeper_ptr self, severity level, const char* kind,
          const std::string& msg) {
  auto& st = self->state;
  if (st.links.monitor)
    self->send(st.links.monitor, alert_atom::value,
               alert{level, kind, msg, {}});
  else
    spdlog::warn("{}: {}", kind, msg);
}

void audit(rate_keeper_ptr self, const char* event, const std::string& detail) {
  if (self->state.links.auditor)
    self->send(self->state.links.auditor,
               make_event(event, {}, -1, detail));
}

// What an answer did to the key's circuit: told to people and the store.
void circuit_changed(rate_keeper_ptr self, const std::string& key, key_state& k,
                     circuit_breaker::change c, const std::string& error) {
  auto& st = self->state;
  if (c == circuit_breaker::change::none)
    return;
  char probe[32];
  std::snprintf(probe, sizeof(probe), "%g", st.s.probe_seconds);
  if (c == circuit_breaker::change::opened) {
    k.outage_told = false;
    tell(self, severity::critical, "provider_unavailable",
         key + " is down (" + std::to_string(st.s.circuit_threshold) +
           " failures in a row, the last: " + error +
           "): no call goes but one probe every " + probe +
           " s (BG_AGENT_PROBE_SECONDS)");
    audit(self, "circuit_opened", key + ": " + error);
    if (st.links.checkpointer)
      self->send(st.links.checkpointer, circuit_atom::value, key,
                 now_rfc3339());
    if (st.supervisor)
      self->send(st.supervisor, circuit_atom::value, key, true);
    // Told to the supervisor if still open then (a wake checks).
    self->delayed_send(self, seconds(st.s.outage_max_seconds),
                       wake_atom::value, key);
  } else {
    auto down_for = std::chrono::duration<double>(clock_type::now() -
                                                  k.circuit.opened_at())
                      .count();
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.0f", down_for);
    tell(self, severity::warning, "provider_available",
         key + " answers again after " + secs + " s down");
    audit(self, "circuit_closed", key + ": answered after " + secs +
                                    " s down");
    if (st.links.checkpointer)
      self->send(st.links.checkpointer, circuit_atom::value, key,
                 std::string());
    if (st.supervisor)
      self->send(st.supervisor, circuit_atom::value, key, false);
    k.probe_slot = 0; // a late answer of that probe is just an answer
  }
  count_circuits(self);
}

// A circuit open past BG_AGENT_OUTAGE_MAX: the supervisor stops the run.
void check_outage(rate_keeper_ptr self, const std::string& key, key_state& k) {
  auto& st = self->state;
  if (!k.circuit.is_open() || k.outage_told)
    return;
  auto open_for = std::chrono::duration<double>(clock_type::now() -
                                                k.circuit.opened_at())
                    .count();
  if (open_for + 0.001 < st.s.outage_max_seconds)
    return;
  k.outage_told = true;
  if (st.supervisor)
    self->send(st.supervisor, outage_atom::value, key, open_for);
}

// Lets go the calls at the head of `key`'s queue that fit now, and sets a
// wake for when the next one will.
void drain(rate_keeper_ptr self, const std::string& key) {
  auto& st = self->state;
  auto& k = key_of(self, key);
  if (k.circuit.wait(clock_type::now()).count() > 0) {
    // Its model is down and no probe is due: every call that may go to
    // its next model does, wherever it waits.
    for (auto i = k.queue.begin(); i != k.queue.end();) {
      if (!i->may_fall_back) {
        ++i;
        continue;
      }
      i->rp.deliver(circuit_open_slot);
      i = k.queue.erase(i);
      count_waiting(self, -1);
    }
  }
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
    count_waiting(self, -1);
    call.rp.deliver(admit(k, now, call.tokens, st.s, st.links.counters.get()));
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
                 ? limit_over_window(static_cast<uint64_t>(limit_requests),
                                     s.window_seconds)
                 : w.rpm();
    auto tpm = s.tpm == 0 && limit_tokens > 0
                 ? limit_over_window(static_cast<uint64_t>(limit_tokens),
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

// A call's answer for the circuit: opened, closed or neither. `task`: the
// task it was for ("" unknown).
bool answered(rate_keeper_ptr self, const std::string& key, key_state& k,
              uint64_t slot, bool down, const std::string& error,
              const std::string& task = {}) {
  bool probe = slot != 0 && slot == k.probe_slot;
  if (probe)
    k.probe_slot = 0;
  bool repeat = down && !task.empty() && task == k.last_down;
  k.last_down = down ? task : std::string();
  auto c = k.circuit.answered(down, probe, clock_type::now(), repeat);
  circuit_changed(self, key, k, c, error);
  // The provider's fault: its circuit is open, or this call and the one
  // before, for another task, found it down (one task failing again and
  // again, or among answered calls, is the task's own).
  return k.circuit.is_open() ||
         (down && !repeat && k.circuit.down_in_a_row() >= 2);
}

// A call that got no answer: if it was the probe, the next call probes.
void unanswered(key_state& k, uint64_t slot) {
  if (slot != 0 && slot == k.probe_slot) {
    k.probe_slot = 0;
    k.circuit.probe_lost(clock_type::now());
  }
}

} // namespace

rate_keeper_actor::behavior_type
rate_keeper(rate_keeper_ptr self, rate_settings s, rate_keeper_links links) {
  self->state.s = s;
  self->state.links = std::move(links);
  return {
    [=](pace_atom, const std::string& key, uint64_t tokens,
        bool may_fall_back) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (st.stopped)
        return uint64_t{0}; // the run stops: this call does not go
      auto& k = key_of(self, key);
      auto now = clock_type::now();
      if (may_fall_back && k.circuit.wait(now).count() > 0)
        return circuit_open_slot;
      if (k.queue.empty() && wait_for(st.s, k, now, tokens).count() == 0)
        return admit(k, now, tokens, st.s, st.links.counters.get());
      auto rp = self->make_response_promise<uint64_t>();
      k.queue.push_back(waiting_call{tokens, may_fall_back, rp});
      count_waiting(self, 1);
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
      k.learning = false;
      k.flying.erase(slot);
      answered(self, key, k, slot, false, {});
      drain(self, key);
    },
    [=](refund_atom, const std::string& key, uint64_t slot, uint64_t tokens,
        int64_t limit_requests, int64_t limit_tokens, int64_t wait_ms,
        bool limited, const std::string& down, const std::string& task,
        bool got_answer) {
      auto& st = self->state;
      auto& k = key_of(self, key);
      k.window.settle(slot, tokens);
      learn(st.s, k, limit_requests, limit_tokens, wait_ms, limited);
      if (got_answer)
        k.learning = false;
      k.flying.erase(slot);
      bool open;
      if (!got_answer) {
        unanswered(k, slot);
        open = k.circuit.is_open();
      } else {
        // A node's words: clipped before they go into alerts and the audit.
        open = answered(self, key, k, slot, !down.empty(),
                        utf8_clip(sanitize_utf8(down), 300, "..."), task);
      }
      drain(self, key);
      return open;
    },
    [=](refund_atom, const std::string& key, uint64_t slot, uint64_t tokens) {
      // No answer came (denied, skipped, its worker gone): nothing learnt.
      auto& k = key_of(self, key);
      k.window.settle(slot, tokens);
      k.flying.erase(slot);
      unanswered(k, slot);
      drain(self, key);
    },
    [=](drain_atom) {
      auto& st = self->state;
      st.stopped = true;
      for (auto& [key, k] : st.keys) {
        for (auto& call : k.queue)
          call.rp.deliver(uint64_t{0});
        count_waiting(self, -static_cast<int64_t>(k.queue.size()));
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
    [=](outage_atom, const supervisor_actor& sup) {
      self->state.supervisor = sup;
    },
    [=](wake_atom, const std::string& key) {
      auto& k = key_of(self, key);
      k.armed = false;
      check_outage(self, key, k);
      drain(self, key);
    },
  };
}

rate_keeper_actor spawn_rate_keeper(caf::actor_system& sys, rate_settings s,
                                    rate_keeper_links links) {
  return sys.spawn(rate_keeper, s, std::move(links));
}

} // namespace bgagent
