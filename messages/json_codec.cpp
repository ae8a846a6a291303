#include "messages/json_codec.hpp"

#include <chrono>
#include <cstdio>
#include <string_view>
#include <ctime>

#include <nlohmann/json.hpp>

#include "messages/batch.hpp"
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
  j["cached_tokens"] = x.cached_tokens;
  j["reasoning_tokens"] = x.reasoning_tokens;
  j["cached"] = x.cached;
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

json to_json(const batch_row& x) {
  json j;
  j["id"] = x.id;
  j["provider_batch_id"] = x.provider_batch_id;
  j["state"] = to_string(x.state);
  j["model"] = x.model;
  j["tasks"] = x.tasks;
  j["completed"] = x.completed;
  j["failed"] = x.failed;
  j["created_at"] = x.created_at;
  j["cost_usd"] = x.cost_usd;
  j["provider"] = x.provider;
  j["submitted_at"] = x.submitted_at;
  j["ended_at"] = x.ended_at;
  j["input_file_id"] = x.input_file_id;
  j["output_file_id"] = x.output_file_id;
  j["error_file_id"] = x.error_file_id;
  j["requests"] = {{"total", x.remote_total},
                   {"completed", x.remote_completed},
                   {"failed", x.remote_failed}};
  j["error"] = x.error.empty() ? json(nullptr) : json(sanitize_utf8(x.error));
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
                 {"cost_limit", x.budget.cost_limit},
                 {"period", x.budget_period}};
  if (x.run.id == 0)
    j["run"] = nullptr;
  else
    j["run"] = {{"id", x.run.id},
                {"state", text(x.run.state)},
                {"started_at", text(x.run.started_at)}};
  j["circuits_open"] = json::array();
  for (auto& c : x.circuits_open) {
    auto sp = c.rfind(' ');
    j["circuits_open"].push_back(
      {{"model", text(c.substr(0, sp))},
       {"since", sp == std::string::npos ? "" : text(c.substr(sp + 1))}});
  }
  j["batches"] = json::array();
  for (auto& b : x.open_batches)
    j["batches"].push_back(to_json(b));
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

void append_json_string(std::string& out, std::string_view s) {
  std::string repaired;
  if (!valid_utf8(s)) {
    repaired = sanitize_utf8(s);
    s = repaired;
  }
  out += '"';
  // Runs that need no escape are copied whole.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

// Written field by field (the auditor writes one line per event; building
// a JSON object for each was a measurable share of a run's CPU).
std::string audit_line(const audit_event& x, uint64_t seq,
                       const std::string& ts) {
  std::string out;
  out.reserve(64 + ts.size() + x.event.size() + x.task_id.size() +
              x.node.size() + x.detail.size());
  out += "{\"ts\":";
  append_json_string(out, ts);
  out += ",\"seq\":";
  out += std::to_string(seq);
  out += ",\"event\":";
  append_json_string(out, x.event);
  if (!x.task_id.empty()) {
    out += ",\"task_id\":";
    append_json_string(out, x.task_id);
  }
  if (x.attempt >= 0) {
    out += ",\"attempt\":";
    out += std::to_string(x.attempt);
  }
  if (!x.node.empty()) {
    out += ",\"node\":";
    append_json_string(out, x.node);
  }
  if (!x.detail.empty()) {
    out += ",\"detail\":";
    append_json_string(out, x.detail);
  }
  out += '}';
  return out;
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
