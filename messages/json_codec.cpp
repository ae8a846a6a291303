#include "messages/json_codec.hpp"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/utf8.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

// Every string put in JSON here is valid UTF-8, so dump() never throws
// (type_error 316): text from outside (provider errors, stored rows) may
// not be.
json text(const std::string& s) { return json(sanitize_utf8(s)); }

json text_or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : text(s);
}

} // namespace

namespace {

json counts_json(const state_counts& c) {
  return {{"pending", c.pending},         {"running", c.running},
          {"retry_wait", c.retry_wait},   {"completed", c.completed},
          {"quarantined", c.quarantined}, {"cancelled", c.cancelled}};
}

} // namespace

json to_json(const task_record& x) {
  json j;
  j["id"] = text(x.id);
  j["type"] = text(x.type);
  j["state"] = text(x.state);
  j["attempts"] = x.attempts;
  if (x.result.empty()) {
    j["result"] = nullptr;
  } else {
    // Stored results were validated JSON; keep a corrupt one visible as
    // text (json::parse refuses ill-formed UTF-8, so the parsed one is
    // valid).
    j["result"] = json::parse(x.result, nullptr, false);
    if (j["result"].is_discarded())
      j["result"] = text(x.result);
  }
  j["error"] = text_or_null(x.error);
  j["prompt_tokens"] = x.prompt_tokens;
  j["completion_tokens"] = x.completion_tokens;
  j["cost_usd"] = x.cost_usd;
  j["provider"] = text_or_null(x.provider);
  j["model"] = text_or_null(x.model);
  j["priority"] = x.priority;
  j["tags"] = json::array();
  for (auto& t : x.tags)
    j["tags"].push_back(text(t));
  // An answer that failed the task's schema (kept with a quarantined task).
  j["raw_answer"] = text_or_null(x.raw_answer);
  return j;
}

json to_json(const tag_totals& x) {
  return {{"tag", text(x.tag)},
          {"tasks", counts_json(x.tasks)},
          {"prompt_tokens", x.prompt_tokens},
          {"completion_tokens", x.completion_tokens},
          {"cost_usd", x.cost_usd}};
}

json to_json(const status_report& x) {
  json j;
  j["tasks"] = counts_json(x.tasks);
  j["budget"] = {{"tokens_used", x.budget.tokens_used},
                 {"tokens_limit", x.budget.tokens_limit},
                 {"cost_used", x.budget.cost_used},
                 {"cost_limit", x.budget.cost_limit}};
  if (x.run.id == 0)
    j["run"] = nullptr;
  else
    j["run"] = {{"id", x.run.id},
                {"state", text(x.run.state)},
                {"started_at", text(x.run.started_at)}};
  return j;
}

json to_json(const alert& x) {
  json j;
  j["severity"] = to_string(x.level);
  j["kind"] = text(x.kind);
  j["message"] = text(x.message);
  if (!x.task_id.empty())
    j["task_id"] = text(x.task_id);
  return j;
}

json to_json(const run_summary& x) {
  auto errors = json::array();
  for (auto& e : x.quarantine_errors)
    errors.push_back({{"error", text(e.error)}, {"tasks", e.tasks}});
  return json{{"exit_code", x.exit_code},
              {"quarantine_errors", errors},
              {"stop_reason", text(x.stop_reason)},
              {"completed", x.completed},
              {"quarantined", x.quarantined},
              {"retries", x.retries},
              {"restarts", x.restarts},
              {"pending", x.store.pending + x.store.retry_wait},
              {"tokens_used", x.tokens_used},
              {"cost_used", x.cost_used},
              {"wall_seconds", x.wall_seconds}};
}

std::string audit_line(const audit_event& x, uint64_t seq,
                       const std::string& ts) {
  // nlohmann::ordered_json keeps ts, seq, event first for people reading it.
  nlohmann::ordered_json j;
  j["ts"] = ts;
  j["seq"] = seq;
  j["event"] = sanitize_utf8(x.event);
  if (!x.task_id.empty())
    j["task_id"] = sanitize_utf8(x.task_id);
  if (x.attempt >= 0)
    j["attempt"] = x.attempt;
  if (!x.node.empty())
    j["node"] = sanitize_utf8(x.node);
  if (!x.detail.empty())
    j["detail"] = sanitize_utf8(x.detail);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string now_rfc3339() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = time_point_cast<seconds>(now);
  auto ms = duration_cast<milliseconds>(now - secs).count();
  std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

} // namespace bgagent
