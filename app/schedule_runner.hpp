// The schedules of `bgagent serve --schedule SPEC` (policy/schedule.hpp):
// each firing submits SPEC's file, its tasks marked with the firing time.
//
// Contract: the constructor parses every spec and reads each file once
// (usage_error naming the spec or the file and line: nothing starts).
// start() looks up each schedule's last firing in the store; a firing
// missed while the service was down is made at once (the latest one only;
// a schedule never fired before waits for its next firing). tick() makes
// the firings that are due. A firing's tasks carry the firing time in
// their id ("ID@2026-11-27T12:45:00Z"), key and custom_id, and in
// vars.scheduled_at (and for "{{scheduled_at}}" in their vars' values), so
// each firing's tasks are stored exactly once, across restarts too. Each
// firing is audited `schedule_fired`; one that fails (the file became
// unreadable or invalid) raises an error alert and the service goes on.
// Call from the command's main thread, never from an actor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/head_handles.hpp"

namespace bgagent {

class type_registry;

class schedule_runner {
public:
  schedule_runner(const std::vector<std::string>& specs,
                  uint64_t max_input_bytes, const type_registry& types);
  ~schedule_runner();

  void start(caf::scoped_actor& self, const head_handles& h, int64_t now);
  void tick(caf::scoped_actor& self, const head_handles& h, int64_t now);
  bool empty() const;

  // The task lines of `file_text` as a firing at `at` submits them.
  static std::string fired_tasks(const std::string& file_text,
                                 const std::string& at);

private:
  struct impl;
  std::unique_ptr<impl> d_;
};

} // namespace bgagent
