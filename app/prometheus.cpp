#include "app/prometheus.hpp"

#include <cstdio>
#include <sstream>

#include "actors/monitor.hpp"
#include "messages/run.hpp"

namespace bgagent {

namespace {

class writer {
public:
  void head(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " "
         << type << "\n";
  }
  void value(const std::string& name, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    out_ << name << " " << buf << "\n";
  }
  void metric(const char* name, const char* type, const char* help,
              double v) {
    head(name, type, help);
    value(name, v);
  }
  std::string str() const { return out_.str(); }

private:
  std::ostringstream out_;
};

} // namespace

std::string prometheus_text(const metrics_snapshot& m,
                            const status_report& store) {
  writer w;
  w.head("bgagent_tasks", "gauge", "Tasks in the store by state.");
  auto& t = store.tasks;
  std::pair<const char*, uint64_t> states[] = {
    {"pending", t.pending},         {"running", t.running},
    {"retry_wait", t.retry_wait},   {"completed", t.completed},
    {"quarantined", t.quarantined}, {"cancelled", t.cancelled}};
  for (auto& [name, n] : states)
    w.value(std::string("bgagent_tasks{state=\"") + name + "\"}",
            static_cast<double>(n));
  w.metric("bgagent_attempts_total", "counter",
           "Provider calls started by this run.",
           static_cast<double>(m.latency_count + m.in_flight));
  w.metric("bgagent_attempts_failed_total", "counter",
           "Attempts that failed in this run.",
           static_cast<double>(m.failed_attempts));
  w.metric("bgagent_tasks_completed_total", "counter",
           "Tasks completed by this run.", static_cast<double>(m.completed));
  w.metric("bgagent_retries_total", "counter", "Retries scheduled.",
           static_cast<double>(m.retries));
  w.metric("bgagent_quarantines_total", "counter", "Tasks quarantined.",
           static_cast<double>(m.quarantined));
  w.metric("bgagent_worker_restarts_total", "counter",
           "Task workers restarted after a crash or hang.",
           static_cast<double>(m.restarts));
  w.metric("bgagent_alerts_total", "counter", "Alerts raised.",
           static_cast<double>(m.alerts));
  auto& b = m.budget;
  w.metric("bgagent_tokens_used", "gauge", "Tokens spent in the run.",
           static_cast<double>(b.tokens_used));
  w.metric("bgagent_tokens_reserved", "gauge",
           "Tokens reserved by calls in flight.",
           static_cast<double>(b.tokens_reserved));
  w.metric("bgagent_tokens_budget", "gauge", "The run's token budget.",
           static_cast<double>(b.tokens_limit));
  w.metric("bgagent_cost_used_usd", "gauge", "US dollars spent in the run.",
           b.cost_used);
  w.metric("bgagent_cost_budget_usd", "gauge", "The run's cost budget.",
           b.cost_limit);
  w.metric("bgagent_calls_in_flight", "gauge", "Provider calls in flight.",
           static_cast<double>(m.in_flight));
  w.metric("bgagent_workers_up", "gauge",
           "Task workers, local and on worker nodes.",
           static_cast<double>(m.workers));
  w.metric("bgagent_nodes_up", "gauge", "Nodes with task workers.",
           static_cast<double>(m.nodes));
  w.metric("bgagent_paused", "gauge", "1 while an admin paused dispatching.",
           static_cast<double>(m.paused));
  w.metric("bgagent_calls_waiting_for_rate", "gauge",
           "Calls waiting for their turn: rate limits, Retry-After holds, "
           "open circuits.",
           static_cast<double>(m.rate_waiting));
  w.metric("bgagent_rate_limit_requests_per_minute", "gauge",
           "The request limit of the provider model called last "
           "(BG_AGENT_RPM or its rate-limit headers); 0: none known.",
           static_cast<double>(m.rate_limit_rpm));
  w.metric("bgagent_rate_requests_per_minute", "gauge",
           "Its requests in the last rate window, per minute.",
           static_cast<double>(m.rate_used_rpm));
  w.metric("bgagent_batches_open", "gauge",
           "Provider batches (--mode batch) not ended.",
           static_cast<double>(m.batches_open));
  w.metric("bgagent_batch_tasks", "gauge",
           "Tasks in provider batches not ended.",
           static_cast<double>(m.batch_tasks));
  w.metric("bgagent_cached_completions_total", "counter",
           "Tasks completed from the response cache, with no call.",
           static_cast<double>(m.cached));
  w.metric("bgagent_circuits_open", "gauge",
           "Provider models found down: only a probe call goes.",
           static_cast<double>(m.circuits_open));
  w.metric("bgagent_outage_seconds", "gauge",
           "How long the oldest open circuit has been open (0: none).",
           m.outage_seconds);
  w.head("bgagent_provider_latency_seconds", "histogram",
         "Provider call latency.");
  auto& bounds = latency_bucket_bounds();
  for (size_t i = 0; i < bounds.size() && i < m.latency_buckets.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof(le), "%g", bounds[i]);
    w.value(std::string("bgagent_provider_latency_seconds_bucket{le=\"") + le +
              "\"}",
            static_cast<double>(m.latency_buckets[i]));
  }
  w.value("bgagent_provider_latency_seconds_bucket{le=\"+Inf\"}",
          static_cast<double>(m.latency_count));
  w.value("bgagent_provider_latency_seconds_sum", m.latency_sum_seconds);
  w.value("bgagent_provider_latency_seconds_count",
          static_cast<double>(m.latency_count));
  return w.str();
}

} // namespace bgagent
