#include "app/schedule_runner.hpp"

#include <fstream>
#include <limits>
#include <sstream>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/ask.hpp"
#include "app/errors.hpp"
#include "app/task_file.hpp"
#include "app/task_file_submission.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/utf8.hpp"
#include "policy/budget_period.hpp"
#include "policy/schedule.hpp"
#include "types/type_registry.hpp"

namespace bgagent {

namespace {

using ordered_json = nlohmann::ordered_json;

// 2026-11-27T12:45:00Z: a firing is on a whole second.
std::string firing_text(int64_t t) {
  auto s = rfc3339_utc(t);
  return s.substr(0, s.size() - 5) + "Z";
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw usage_error(path + ": cannot open task file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void mark(ordered_json& j, const std::string& at) {
  if (!j.is_object())
    return; // the reader names what is wrong with it
  auto suffix = [&](const char* field) {
    auto i = j.find(field);
    if (i != j.end() && i->is_string())
      *i = i->get<std::string>() + "@" + at;
  };
  suffix("id");
  suffix("idempotency_key");
  suffix("custom_id");
  if (j.contains("custom_id"))
    return; // an OpenAI Batch line: its body is sent as written
  auto vars = j.find("vars");
  if (vars == j.end() || vars->is_null())
    j["vars"] = ordered_json::object();
  auto& v = j["vars"];
  if (!v.is_object())
    return;
  for (auto& [name, value] : v.items()) {
    if (!value.is_string())
      continue;
    auto s = value.get<std::string>();
    for (auto p = s.find("{{scheduled_at}}"); p != std::string::npos;
         p = s.find("{{scheduled_at}}", p + at.size()))
      s.replace(p, 16, at);
    value = s;
  }
  if (!v.contains("scheduled_at"))
    v["scheduled_at"] = at;
}

} // namespace

struct schedule_runner::impl {
  struct entry {
    std::string spec;
    schedule when;
    int64_t next = std::numeric_limits<int64_t>::max();
  };
  std::vector<entry> entries;
  uint64_t max_input_bytes;
  type_registry types;

  impl(uint64_t max, const type_registry& t) : max_input_bytes(max), types(t) {}

  void fire(caf::scoped_actor& self, const head_handles& h, entry& e,
            int64_t at) {
    auto when = firing_text(at);
    auto what = "schedule '" + e.spec + "' at " + when;
    try {
      auto lines = fired_tasks(read_whole(e.when.file()), when);
      task_file_submission sub(std::make_unique<std::istringstream>(lines),
                               e.when.file(), "schedule '" + e.spec + "'",
                               max_input_bytes, types);
      auto counts = sub.store_all(self, h.store.main(), "error");
      ask<bool>(self, h.store.main(), schedule_atom::value, e.spec, when);
      caf::anon_send(h.supervisor, poll_atom::value);
      auto detail = what + ": " + submit_summary(counts);
      spdlog::info("{}", detail);
      caf::anon_send(h.auditor, make_event("schedule_fired", {}, -1, detail));
    } catch (const std::exception& ex) {
      auto detail = what + " failed: " + std::string(ex.what());
      spdlog::error("{}", detail);
      caf::anon_send(h.monitor, alert_atom::value,
                     alert{severity::critical, "schedule_failed", detail, {}});
    }
  }
};

schedule_runner::schedule_runner(const std::vector<std::string>& specs,
                                 uint64_t max_input_bytes,
                                 const type_registry& types)
  : d_(std::make_unique<impl>(max_input_bytes, types)) {
  for (auto& spec : specs) {
    impl::entry e;
    e.spec = spec;
    try {
      e.when = schedule::parse(spec);
    } catch (const std::invalid_argument& ex) {
      throw usage_error("--schedule '" + spec + "': " + ex.what());
    }
    // Read (and check) now: a schedule that cannot fire is refused at start.
    auto lines = fired_tasks(read_whole(e.when.file()), "1970-01-01T00:00:00Z");
    task_file_reader check(std::make_unique<std::istringstream>(lines),
                           e.when.file(), max_input_bytes, types);
    for (task_file_entry te; check.next(te);) {
    }
    d_->entries.push_back(std::move(e));
  }
}

schedule_runner::~schedule_runner() = default;

bool schedule_runner::empty() const { return d_->entries.empty(); }

std::string schedule_runner::fired_tasks(const std::string& file_text,
                                         const std::string& at) {
  auto first = file_text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  if (first != std::string::npos && file_text[first] == '[') {
    auto arr = ordered_json::parse(file_text, nullptr, false);
    if (arr.is_discarded() || !arr.is_array())
      return file_text; // the reader names the line at fault
    for (auto& j : arr)
      mark(j, at);
    return arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out;
  std::istringstream in(file_text);
  for (std::string line; std::getline(in, line);) {
    auto j = ordered_json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      mark(j, at);
      out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out += line; // blank, or malformed: the reader names it
    }
    out += '\n';
  }
  return out;
}

void schedule_runner::start(caf::scoped_actor& self, const head_handles& h,
                            int64_t now) {
  for (auto& e : d_->entries) {
    auto last = ask<std::string>(self, h.store.main(), schedule_atom::value,
                                 e.spec);
    auto latest = e.when.latest_at_or_before(now);
    if (!last.empty() && latest && firing_text(*latest) > last) {
      spdlog::info("schedule '{}': its firing at {} was missed while the "
                   "service was down; making it now",
                   e.spec, firing_text(*latest));
      d_->fire(self, h, e, *latest);
    } else if (last.empty()) {
      // Never fired: nothing was missed; from now on it counts.
      ask<bool>(self, h.store.main(), schedule_atom::value, e.spec,
                firing_text(latest ? *latest : now));
    }
    e.next = e.when.next_after(now);
    spdlog::info("schedule '{}': next firing at {}", e.spec,
                 firing_text(e.next));
  }
}

void schedule_runner::tick(caf::scoped_actor& self, const head_handles& h,
                           int64_t now) {
  for (auto& e : d_->entries) {
    if (now < e.next)
      continue;
    d_->fire(self, h, e, e.next);
    e.next = e.when.next_after(now);
  }
}

} // namespace bgagent
