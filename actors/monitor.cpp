#include "actors/monitor.hpp"

#include <chrono>
#include <memory>
#include <unordered_map>

#include <caf/all.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/events.hpp"
#include "messages/monitor_actor.hpp"
#include "messages/json_codec.hpp"
#include "messages/run.hpp"
#include "persistence/jsonl_writer.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

struct watched {
  clock_type::time_point last_beat;
  bool busy = false;
  bool alerted = false;
  std::string task_id;
};

struct monitor_state {
  monitor_settings settings;
  std::shared_ptr<jsonl_writer> alerts;
  auditor_actor auditor;
  caf::actor webhook; // detached poster, or invalid (private, untyped)
  std::unordered_map<std::string, watched> sources;
  uint32_t consecutive_failures = 0;
  bool escalated = false;
  metrics_snapshot m;
  clock_type::time_point started = clock_type::now();
  static inline const char* name = "monitor";
};

using monitor_ptr = monitor_actor::stateful_pointer<monitor_state>;

// Posts each alert's JSON to the webhook URL. Detached: it may block on the
// network without holding a scheduler thread.
caf::behavior webhook_poster(caf::event_based_actor*, std::string url) {
  return {
    [url](const std::string& body) {
      CURL* h = curl_easy_init();
      if (!h)
        return;
      curl_slist* headers =
        curl_slist_append(nullptr, "Content-Type: application/json");
      curl_easy_setopt(h, CURLOPT_URL, url.c_str());
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
                       static_cast<long>(body.size()));
      curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION,
                       +[](char*, size_t s, size_t n, void*) { return s * n; });
      auto rc = curl_easy_perform(h);
      long status = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK)
        spdlog::warn("alert webhook {}: {}", url, curl_easy_strerror(rc));
      else if (status >= 300)
        spdlog::warn("alert webhook {}: HTTP {}", url, status);
      curl_slist_free_all(headers);
      curl_easy_cleanup(h);
    },
  };
}

void raise(monitor_ptr self, const alert& a) {
  auto& st = self->state;
  ++st.m.alerts;
  if (a.level == severity::critical)
    spdlog::critical("ALERT {}: {}", a.kind, a.message);
  else
    spdlog::warn("ALERT {}: {}", a.kind, a.message);
  auto j = to_json(a);
  j["ts"] = now_rfc3339();
  if (!st.settings.run_label.empty())
    j["run"] = st.settings.run_label;
  auto line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  st.alerts->append(line);
  st.alerts->flush();
  self->send(st.auditor, make_event("alert", a.task_id, -1,
                                    std::string(to_string(a.level)) + " " +
                                      a.kind + ": " +
                                      a.message));
  if (st.webhook)
    caf::anon_send(st.webhook, line); // untyped: its own helper
}

void check_deadman(monitor_ptr self) {
  auto& st = self->state;
  // The actor system's clock: simulated under CAF's test coordinator.
  auto now = self->clock().now();
  auto window = std::chrono::duration<double>(st.settings.deadman_seconds);
  for (auto& [source, w] : st.sources) {
    if (!w.busy || w.alerted)
      continue;
    auto silent = std::chrono::duration<double>(now - w.last_beat);
    if (silent > window) {
      w.alerted = true;
      char secs[32];
      std::snprintf(secs, sizeof(secs), "%.1f", silent.count());
      raise(self, alert{severity::critical, "dead_mans_switch",
                        source + " sent no heartbeat for " + secs +
                          " s (window " +
                          std::to_string(st.settings.deadman_seconds) +
                          " s)" +
                          (w.task_id.empty() ? ""
                                             : " while running task " +
                                                 w.task_id),
                        w.task_id});
    }
  }
}

monitor_actor::behavior_type monitor(monitor_ptr self, monitor_settings s,
                                     std::shared_ptr<jsonl_writer> alerts,
                                     auditor_actor auditor) {
  auto& st = self->state;
  st.alerts = std::move(alerts);
  st.auditor = std::move(auditor);
  if (!s.webhook_url.empty())
    st.webhook = self->spawn<caf::detached + caf::linked>(webhook_poster,
                                                           s.webhook_url);
  st.settings = std::move(s);
  if (!st.settings.counters)
    st.settings.counters = std::make_shared<call_counters>();
  auto tick = std::chrono::duration<double>(
    std::max(0.05, std::min(1.0, st.settings.deadman_seconds / 4)));
  auto tick_ms = std::chrono::duration_cast<std::chrono::milliseconds>(tick);
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) {
      check_deadman(self);
      self->delayed_send(self, tick_ms, tick_atom::value);
    },
    [=](heartbeat_atom, const std::string& source, bool busy,
        const std::string& task_id) {
      auto& w = self->state.sources[source];
      if (w.alerted && busy)
        spdlog::info("{} is sending heartbeats again", source);
      w.last_beat = self->clock().now();
      w.busy = busy;
      w.alerted = false;
      w.task_id = task_id;
      if (!busy)
        self->state.sources.erase(source);
    },
    [=](outcome_atom, outcome_kind what, const std::string& task_id) {
      auto& st = self->state;
      switch (what) {
        case outcome_kind::completed:
          // Most completions are only counted (call_counters); the
          // supervisor sends the first one after a failure.
          st.settings.counters->completed();
          st.consecutive_failures = 0;
          st.escalated = false;
          break;
        case outcome_kind::failed:
          ++st.m.failed_attempts;
          if (++st.consecutive_failures >= st.settings.escalate_after &&
              !st.escalated) {
            st.escalated = true;
            raise(self,
                  alert{severity::critical, "failure_escalation",
                        std::to_string(st.consecutive_failures) +
                          " consecutive failed attempts, last on task " +
                          task_id,
                        task_id});
          }
          break;
        case outcome_kind::retry: ++st.m.retries; break;
        case outcome_kind::quarantined: ++st.m.quarantined; break;
        case outcome_kind::restart: ++st.m.restarts; break;
      }
    },
    [=](alert_atom, const alert& a) { raise(self, a); },
    [=](budget_atom, const budget_snapshot& b) { self->state.m.budget = b; },
    [=](workers_atom, uint64_t workers, uint64_t nodes) {
      self->state.m.workers = workers;
      self->state.m.nodes = nodes;
    },
    [=](calls_atom, int64_t delta, double latency) {
      auto& c = *self->state.settings.counters;
      if (delta > 0)
        c.call_started();
      else if (delta < 0)
        c.call_ended(latency);
    },
    [=](pause_atom, bool paused) { self->state.m.paused = paused ? 1 : 0; },
    [=](metrics_atom) {
      auto m = self->state.m;
      self->state.settings.counters->fill(m);
      m.elapsed_seconds = std::chrono::duration<double>(
                            clock_type::now() - self->state.started)
                            .count();
      return m;
    },
    [=](flush_atom) {
      self->state.alerts->flush();
      return flush_atom::value;
    },
  };
}

} // namespace

monitor_actor spawn_monitor(caf::actor_system& sys, monitor_settings s,
                            const auditor_actor& auditor) {
  // Opened here so a bad path fails in the caller with a clear message.
  auto alerts = std::make_shared<jsonl_writer>(s.alerts_path);
  return sys.spawn(monitor, std::move(s), std::move(alerts), auditor);
}

} // namespace bgagent
