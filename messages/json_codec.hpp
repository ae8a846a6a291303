// JSON forms of messages: the stable machine-readable output contracts
// (`status --json`, `results --json`, audit lines, alerts).
//
// Contract: field names here are the ones in DESIGN.md section 8; changing
// one breaks users. Every string these put in JSON is valid UTF-8 (ill-formed
// bytes in stored or provider text become U+FFFD), so dump() never throws.
// No CAF in this header.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bgagent {

struct batch_row;

struct task_record;
struct status_report;
struct tag_totals;
struct audit_event;
struct alert;
struct run_summary;

nlohmann::json to_json(const task_record& x);
nlohmann::json to_json(const status_report& x);
nlohmann::json to_json(const tag_totals& x);
// `batches --json`: id, provider_batch_id, state, model, tasks, completed,
// failed, created_at, cost_usd (DESIGN.md section 13), then the rest of
// the row.
nlohmann::json to_json(const batch_row& x);
nlohmann::json to_json(const alert& x);
nlohmann::json to_json(const run_summary& x);

// Appends `s` as a JSON string, escaped exactly as nlohmann::json::dump
// does without ensure_ascii; ill-formed UTF-8 is repaired first (U+FFFD,
// messages/utf8.hpp).
void append_json_string(std::string& out, std::string_view s);

// One audit line (no trailing newline) with `ts` and `seq` first.
std::string audit_line(const audit_event& x, uint64_t seq,
                       const std::string& ts);

// The current time as RFC 3339 UTC with milliseconds, e.g.
// 2026-11-24T13:34:43.123Z.
std::string now_rfc3339();

} // namespace bgagent
