// Support for unit tests of actors through their messages: an actor system
// with bgagent's message types, and a recording probe that stands in for a
// collaborator (auditor, monitor, supervisor, ...).
//
// Contract: the probe records every message it receives, in order, and
// answers a (flush_atom) request with flush_atom; anything else gets no
// meaningful reply. Tests read what it recorded through the recorder,
// waiting with generous timeouts (the machine is shared and slow).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/message_types.hpp"

namespace bgagent::testing {

class unit_config : public caf::actor_system_config {
public:
  unit_config() { bgagent::add_message_types(*this); }
};

// An actor system on CAF's test coordinator: messages run when the test
// says so (sched.run()) and time is simulated (sched.advance_time()), so
// timers are tested to the tick, with no waiting in real time.
class sim_config : public caf::actor_system_config {
public:
  sim_config() {
    bgagent::add_message_types(*this);
    set("scheduler.policy", caf::atom("testing"));
  }
};

// One actor system per test, plus a scoped actor to send requests from.
struct actor_env {
  unit_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
};

class recorder {
public:
  void add(caf::message m) {
    {
      std::lock_guard<std::mutex> g(m_);
      msgs_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
  std::vector<caf::message> messages() {
    std::lock_guard<std::mutex> g(m_);
    return msgs_;
  }
  // Waits until `pred(messages)` holds; false after `seconds`. `pred` runs
  // under the recorder's lock: it must use its argument, not the recorder.
  bool wait(const std::function<bool(const std::vector<caf::message>&)>& pred,
            double seconds = 30) {
    std::unique_lock<std::mutex> lk(m_);
    return cv_.wait_for(lk, std::chrono::duration<double>(seconds),
                        [&] { return pred(msgs_); });
  }

  // Typed views of what was recorded. Events are audit_event messages,
  // (audit_atom, audit_event) messages (what actors with a checkpointer send
  // it), and the events of vector<committed_event> messages (what a
  // checkpointer sends its auditor after each commit).
  std::vector<audit_event> events(const std::string& name = {}) {
    std::vector<audit_event> out;
    for (auto& m : messages()) {
      if (m.match_elements<audit_event>()) {
        auto& e = m.get_as<audit_event>(0);
        if (name.empty() || e.event == name)
          out.push_back(e);
      } else if (m.match_elements<audit_atom, audit_event>()) {
        auto& e = m.get_as<audit_event>(1);
        if (name.empty() || e.event == name)
          out.push_back(e);
      } else if (m.match_elements<std::vector<committed_event>>()) {
        for (auto& c : m.get_as<std::vector<committed_event>>(0))
          if (name.empty() || c.event.event == name)
            out.push_back(c.event);
      }
    }
    return out;
  }
  std::vector<alert> alerts(const std::string& kind = {}) {
    std::vector<alert> out;
    for (auto& m : messages())
      if (m.match_elements<alert_atom, alert>()) {
        auto& a = m.get_as<alert>(1);
        if (kind.empty() || a.kind == kind)
          out.push_back(a);
      }
    return out;
  }
  // Messages whose first element is atom A.
  template <class A>
  std::vector<caf::message> with_atom() {
    std::vector<caf::message> out;
    for (auto& m : messages())
      if (m.size() > 0 && m.match_element<A>(0))
        out.push_back(m);
    return out;
  }
  template <class A>
  bool wait_atom(size_t n = 1, double seconds = 30) {
    return wait(
      [&](const std::vector<caf::message>& ms) {
        size_t k = 0;
        for (auto& m : ms)
          if (m.size() > 0 && m.match_element<A>(0))
            ++k;
        return k >= n;
      },
      seconds);
  }
  bool wait_event(const std::string& name, size_t n = 1,
                  double seconds = 30) {
    return wait(
      [&](const std::vector<caf::message>& ms) {
        size_t k = 0;
        for (auto& m : ms) {
          if (m.match_elements<audit_event>() &&
              m.get_as<audit_event>(0).event == name)
            ++k;
          else if (m.match_elements<std::vector<committed_event>>())
            for (auto& c : m.get_as<std::vector<committed_event>>(0))
              k += c.event.event == name;
        }
        return k >= n;
      },
      seconds);
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<caf::message> msgs_;
};

using recorder_ptr = std::shared_ptr<recorder>;

// A probe's handle: it converts to any actor handle, typed or not, so a
// probe stands in for any collaborator (what it receives is recorded, not
// type-checked: that is the point of a probe).
class probe_handle {
public:
  probe_handle() = default;
  explicit probe_handle(caf::actor a) : a_(std::move(a)) {}
  template <class Handle>
  operator Handle() const {
    return caf::actor_cast<Handle>(a_);
  }
  const caf::actor& actor() const { return a_; }
  caf::actor_addr address() const { return a_.address(); }
  explicit operator bool() const { return static_cast<bool>(a_); }

private:
  caf::actor a_;
};

// A probe actor recording into `rec`. The recorder is passed as a spawn
// argument, not captured: CAF 0.17 dereferences a null argument tuple when a
// function actor takes no arguments (UBSan reports it).
inline probe_handle spawn_probe(caf::actor_system& sys, recorder_ptr rec) {
  using never_atom = caf::atom_constant<caf::atom("nevermatch")>;
  auto probe = [](caf::event_based_actor* self,
                  recorder_ptr rec) -> caf::behavior {
    self->set_default_handler(
      [rec](caf::scheduled_actor*,
            caf::message_view& x) -> caf::result<caf::message> {
        auto m = x.copy_content_to_message();
        bool flush = m.match_elements<flush_atom>();
        rec->add(std::move(m));
        if (flush)
          return caf::make_message(flush_atom::value);
        return caf::message{};
      });
    return {[](never_atom) {}};
  };
  return probe_handle{sys.spawn(probe, std::move(rec))};
}

inline const caf::actor& handle_of(const probe_handle& p) {
  return p.actor();
}
template <class Handle>
const Handle& handle_of(const Handle& h) {
  return h;
}

// Ends actors and probes of any handle type (user_shutdown).
template <class... Handles>
void exit_all(caf::scoped_actor& self, const Handles&... hs) {
  auto end = [&](const auto& h) {
    if (h)
      self->send_exit(h, caf::exit_reason::user_shutdown);
  };
  (end(handle_of(hs)), ...);
}

// Blocking request from the scoped actor: the answer, or nullopt when the
// actor answered with an error (or not within a minute).
template <class T, class Handle, class... Ts>
std::optional<T> ask_for(caf::scoped_actor& self, const Handle& dest,
                         Ts&&... xs) {
  std::optional<T> result;
  self->request(handle_of(dest), std::chrono::seconds(60),
                std::forward<Ts>(xs)...)
    .receive([&](T& x) { result = std::move(x); }, [&](caf::error&) {});
  return result;
}

// The store's answers to marks (running, complete) sent by the scoped
// actor, as the checkpointer sends them once their commit is durable (one
// message a commit): at least `n` answers, in order; fewer if none came
// for a minute.
inline std::vector<mark_answer> mark_answers(caf::scoped_actor& self,
                                             size_t n) {
  std::vector<mark_answer> got;
  bool waiting = true;
  while (waiting && got.size() < n)
    self->receive(
      [&](marks_atom, std::vector<mark_answer>& answers) {
        for (auto& m : answers)
          got.push_back(std::move(m));
      },
      caf::after(std::chrono::seconds(60)) >> [&] { waiting = false; });
  return got;
}

// Sends a mark (running_atom or complete_atom and its fields) to the
// checkpointer and waits for its answer: whether it was written, nullopt
// when none came.
template <class Handle, class... Ts>
std::optional<bool> mark(caf::scoped_actor& self, const Handle& cp,
                         Ts&&... xs) {
  self->send(handle_of(cp), std::forward<Ts>(xs)...);
  auto got = mark_answers(self, 1);
  if (got.size() != 1)
    return std::nullopt;
  return got.front().written;
}

} // namespace bgagent::testing
