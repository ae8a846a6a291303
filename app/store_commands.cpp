// `bgagent submit | status | results | requeue`: short commands that talk to
// a checkpointer of their own (only the checkpointer opens the store).
#include <algorithm>

#include <sys/ioctl.h>
#include <unistd.h>
#include <cstdio>
#include <optional>
#include <iostream>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/auditor.hpp"
#include "actors/checkpointer.hpp"
#include "app/ask.hpp"
#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/number_format.hpp"
#include "app/system_config.hpp"
#include "app/run_lock.hpp"
#include "app/store_writers.hpp"
#include "app/task_file.hpp"
#include "app/task_file_submission.hpp"
#include "app/types_file.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/utf8.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/store.hpp"
#include "persistence/store_set.hpp"
#include "types/openai_batch.hpp"

namespace bgagent {

namespace {

// A checkpointer (and, for commands that change things, an auditor) for
// the length of one command.
struct store_session {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  checkpointer_actor checkpointer;
  auditor_actor auditor;

  store_session(const config& c, store::open_mode mode, bool audited) {
    // What changes nothing opens the store read-only: it works where the
    // database cannot be written (a read-only directory, another user's).
    if (!audited)
      mode = store::open_mode::read_only;
    auto sync = c.db_sync_full ? store::sync_mode::full
                               : store::sync_mode::normal;
    if (!audited) {
      // A store of several files (BG_AGENT_SHARDS) is read through main's
      // writer, whose reader reads over every file. (Commands that change
      // things cannot open one yet: the store refuses, naming it.)
      auto files = std::make_shared<store_set>(c.db_path, mode);
      if (files->size() == 1) {
        checkpointer = spawn_checkpointer(sys, files->release(0));
        return;
      }
      auto one = [&] {
        return std::make_unique<store>(c.db_path, mode, sync,
                                       store::membership::in_set);
      };
      checkpointer = spawn_checkpointer(sys, one(), auditor_actor{}, one(),
                                        store_file{0, files->clock(), files});
      return;
    }
    auto db = std::make_unique<store>(c.db_path, mode, sync);
    try {
      auditor = spawn_auditor(sys, c.audit_path);
    } catch (const std::runtime_error& e) {
      throw usage_error(std::string("audit log: ") + e.what());
    }
    // Events are committed to the store first, then written to the log.
    checkpointer = spawn_checkpointer(sys, std::move(db), auditor);
  }
  ~store_session() {
    if (auditor) {
      try {
        ask<flush_atom>(self, auditor, flush_atom::value);
      } catch (...) {
      }
      self->send_exit(auditor, caf::exit_reason::user_shutdown);
    }
    self->send_exit(checkpointer, caf::exit_reason::user_shutdown);
  }
};

// One table cell: valid UTF-8, one line, at most `n` characters (cut at a
// character, never inside a UTF-8 sequence).
std::string shorten(const std::string& text, size_t n) {
  // Nothing that moves the cursor or hides text reaches the terminal.
  return utf8_clip(one_line(text), n, "...");
}

// `text` in at most `n` characters as shorten() does, but cut in the
// middle: an error's start (provider, status) and its end (the reason,
// "after N attempts") both stay.
std::string shorten_middle(const std::string& text, size_t n) {
  auto s = shorten(text, 1 << 20);
  auto len = utf8_length(s);
  if (len <= n || n < 10)
    return shorten(s, n);
  const std::string gap = " ... ";
  size_t head = (n - gap.size()) * 3 / 5;
  size_t tail = n - gap.size() - head;
  // The byte where the last `tail` characters begin.
  size_t chars = 0, at = s.size();
  while (at > 0 && chars < tail) {
    --at;
    if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80)
      ++chars;
  }
  return utf8_prefix(s, head) + gap + s.substr(at);
}

// `s` padded with spaces to `width` characters (printf pads bytes).
std::string pad(std::string s, size_t width) {
  auto n = utf8_length(s);
  if (n < width)
    s.append(width - n, ' ');
  return s;
}

// Last resort behind the codec's own sanitizing: never throw on output.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

namespace {

// A submission into a store of several files (docs/plans/sharded-store.md):
// all or nothing through the files' staging, then the events it committed
// reach the audit log through the files' writers and the auditor's merge,
// as a run's do. The caller holds the run lock: while a run uses the store
// its files' events are numbered by that run's clock alone.
int submit_to_files(const config& c, std::unique_ptr<store_set> files,
                    task_file_submission& tasks,
                    const std::string& on_conflict) {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auditor_actor auditor;
  try {
    auditor = spawn_auditor(sys, c.audit_path);
  } catch (const std::runtime_error& e) {
    throw usage_error(std::string("audit log: ") + e.what());
  }
  auto sync = c.db_sync_full ? store::sync_mode::full
                             : store::sync_mode::normal;
  submit_counts counts;
  try {
    counts = tasks.store_all(*files, on_conflict);
  } catch (...) {
    self->send_exit(auditor, caf::exit_reason::user_shutdown);
    throw;
  }
  store_handles writers;
  // Every actor is told to end on every path: the actor system waits for
  // them all before this command can return.
  auto end_all = [&] {
    for (auto& w : writers.files)
      self->send_exit(w, caf::exit_reason::user_shutdown);
    self->send_exit(auditor, caf::exit_reason::user_shutdown);
  };
  try {
    writers = spawn_file_writers(sys, std::move(files), c.db_path, sync,
                                 auditor);
    ask<flush_atom>(self, auditor, flush_atom::value);
  } catch (...) {
    end_all();
    throw;
  }
  end_all();
  std::printf("%s\n", submit_summary(counts).c_str());
  return exit_code::ok;
}

} // namespace

int submit_command(const config& c, const std::string& file,
                   const std::string& on_conflict) {
  // A run holds fetched copies of its tasks: replacing one under it would
  // run the old content. So replace only when no run uses the database
  // (or with `run --tasks FILE --on-conflict replace`).
  std::optional<run_lock> no_run;
  if (on_conflict == "replace")
    no_run.emplace(c.db_path);
  // Read in parts: a fault in a short file leaves no database behind.
  task_file_submission tasks(file, c.max_input_bytes, types_in_force(c));
  auto sync = c.db_sync_full ? store::sync_mode::full
                             : store::sync_mode::normal;
  // A store of several files (BG_AGENT_SHARDS when it is made) takes a
  // submission through its files while no other process writes them: the
  // run lock is taken before the files are opened (opening finishes what
  // a crash left, numbering events).
  if (c.shards > 1 || store_files_on_disk(c.db_path) > 1) {
    if (!no_run) {
      if (run_lock::held(c.db_path))
        throw usage_error(c.db_path + " is a store of several files "
                          "(BG_AGENT_SHARDS) and another bgagent (a run or a "
                          "submit) is using it: submit to it when that ends, "
                          "or give a run the file (`bgagent run --tasks "
                          "FILE`)");
      no_run.emplace(c.db_path);
    }
    auto files = std::make_unique<store_set>(
      c.db_path, store::open_mode::create_if_missing, c.shards, sync,
      jsonl_writer::last_seq(c.audit_path));
    if (files->size() > 1)
      return submit_to_files(c, std::move(files), tasks, on_conflict);
  }
  store_session s(c, store::open_mode::create_if_missing, true);
  auto counts = tasks.store_all(s.self, s.checkpointer, on_conflict);
  std::printf("%s\n", submit_summary(counts).c_str());
  return exit_code::ok;
}

namespace {

// "3 h 12 min", "45 s": how long ago an RFC 3339 UTC time was.
std::string age_of(const std::string& rfc3339) {
  std::tm tm{};
  if (std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year,
                  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec) != 6)
    return "?";
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto secs = std::max<int64_t>(0, std::time(nullptr) - timegm(&tm));
  if (secs < 60)
    return std::to_string(secs) + " s";
  if (secs < 3600)
    return std::to_string(secs / 60) + " min";
  if (secs < 86400)
    return std::to_string(secs / 3600) + " h " +
           std::to_string(secs % 3600 / 60) + " min";
  return std::to_string(secs / 86400) + " d " +
         std::to_string(secs % 86400 / 3600) + " h";
}

} // namespace

int status_command(const config& c, bool json) {
  store_session s(c, store::open_mode::must_exist, false);
  auto rep = ask<status_report>(s.self, s.checkpointer, status_atom::value);
  // Circuits are a live run's: one that was killed left its last word.
  if (!run_lock::held(c.db_path))
    rep.circuits_open.clear();
  if (json) {
    std::cout << dump(to_json(rep)) << "\n";
    return exit_code::ok;
  }
  auto& t = rep.tasks;
  std::printf("%-12s %10s\n", "state", "tasks");
  for (auto& [name, n] :
       {std::pair<const char*, uint64_t>{"pending", t.pending},
        {"running", t.running}, {"retry_wait", t.retry_wait},
        {"completed", t.completed}, {"quarantined", t.quarantined},
        {"cancelled", t.cancelled}, {"total", t.total()}})
    std::printf("%-12s %10s\n", name, grouped(n).c_str());
  std::printf("\nbudget       tokens %s of %s, cost $%.6f of $%.2f\n",
              grouped(rep.budget.tokens_used).c_str(),
              grouped(rep.budget.tokens_limit).c_str(), rep.budget.cost_used,
              rep.budget.cost_limit);
  if (rep.run.id == 0)
    std::printf("last run     none yet\n");
  else
    std::printf("last run     %lld, %s, started %s\n",
                (long long)rep.run.id, shorten(rep.run.state, 40).c_str(),
                shorten(rep.run.started_at, 40).c_str());
  if (!rep.open_batches.empty()) {
    uint64_t tasks = 0;
    for (auto& b : rep.open_batches)
      tasks += b.tasks;
    std::printf("batches      %zu open at the provider, %s task(s) (all: "
                "bgagent batches)\n",
                rep.open_batches.size(), grouped(tasks).c_str());
    size_t shown = 0;
    for (auto& b : rep.open_batches) {
      if (shown++ == 5)
        break;
      std::printf("             %s %s, %s task(s), %s of %s done at the "
                  "provider, %s old\n",
                  shorten(b.id, 18).c_str(), to_string(b.state),
                  grouped(b.tasks).c_str(),
                  grouped(b.remote_completed + b.remote_failed).c_str(),
                  grouped(b.remote_total).c_str(),
                  age_of(b.created_at).c_str());
    }
  }
  for (auto& c : rep.circuits_open) {
    auto sp = c.rfind(' ');
    std::printf("provider     %s DOWN since %s (circuit open: one probe "
                "call every BG_AGENT_PROBE_SECONDS)\n",
                shorten(c.substr(0, sp), 80).c_str(),
                shorten(sp == std::string::npos ? "" : c.substr(sp + 1), 40)
                  .c_str());
  }
  return exit_code::ok;
}


int batches_command(const config& c, bool json) {
  store_session s(c, store::open_mode::must_exist, false);
  auto rows = ask<std::vector<batch_row>>(s.self, s.checkpointer,
                                          batches_atom::value, false);
  if (json) {
    for (auto& b : rows)
      std::cout << dump(to_json(b)) << "\n";
    return exit_code::ok;
  }
  if (rows.empty()) {
    std::printf("no batches yet (run --mode batch sends tasks through the "
                "provider's Batch API)\n");
    return exit_code::ok;
  }
  std::printf("%-18s %-11s %-24s %8s %9s %7s %10s %12s\n", "batch", "state",
              "model", "tasks", "completed", "failed", "age", "cost");
  for (auto& b : rows)
    std::printf("%-18s %-11s %-24s %8s %9s %7s %10s %12s\n",
                shorten(b.id, 18).c_str(), to_string(b.state),
                shorten(b.model, 24).c_str(), grouped(b.tasks).c_str(),
                grouped(b.completed).c_str(), grouped(b.failed).c_str(),
                age_of(b.created_at).c_str(),
                ("$" + std::to_string(b.cost_usd)).c_str());
  return exit_code::ok;
}

int status_by_tag_command(const config& c, bool json) {
  store_session s(c, store::open_mode::must_exist, false);
  auto rows = ask<std::vector<tag_totals>>(s.self, s.checkpointer,
                                           status_atom::value,
                                           tags_atom::value);
  if (json) {
    for (auto& r : rows)
      std::cout << dump(to_json(r)) << "\n";
    return exit_code::ok;
  }
  std::printf("%s %9s %9s %9s %9s %11s %10s %12s\n", pad("tag", 24).c_str(),
              "pending", "running", "completed", "quarant.", "other",
              "tokens", "cost");
  for (auto& r : rows)
    std::printf("%s %9llu %9llu %9llu %9llu %11llu %10llu %12.6f\n",
                pad(shorten(r.tag, 24), 24).c_str(),
                (unsigned long long)r.tasks.pending,
                (unsigned long long)r.tasks.running,
                (unsigned long long)r.tasks.completed,
                (unsigned long long)r.tasks.quarantined,
                (unsigned long long)(r.tasks.retry_wait + r.tasks.cancelled),
                (unsigned long long)(r.prompt_tokens + r.completion_tokens),
                r.cost_usd);
  if (rows.empty())
    std::printf("(no task has tags)\n");
  return exit_code::ok;
}

namespace {

// One task's whole record, a field a line, nothing cut.
void print_record(const task_record& r) {
  auto line = [](const char* name, const std::string& value) {
    std::printf("%-18s %s\n", name, shorten(value, 1 << 20).c_str());
  };
  line("id", r.id);
  line("type", r.type);
  line("state", r.state);
  line("attempts", std::to_string(r.attempts));
  line("priority", std::to_string(r.priority));
  std::string tags;
  for (auto& t : r.tags)
    tags += (tags.empty() ? "" : ", ") + t;
  line("tags", tags);
  line("provider", r.provider);
  line("model", r.model);
  line("prompt_tokens", std::to_string(r.prompt_tokens));
  line("completion_tokens", std::to_string(r.completion_tokens));
  char cost[32];
  std::snprintf(cost, sizeof(cost), "$%.6f", r.cost_usd);
  line("cost", cost);
  line("updated_at", r.updated_at);
  line("result", r.result);
  line("error", r.error);
  if (!r.raw_answer.empty())
    line("raw_answer", r.raw_answer);
}

} // namespace

int results_command(const config& c, const results_query& q) {
  store_session s(c, store::open_mode::must_exist, false);
  auto rows = ask<std::vector<task_record>>(s.self, s.checkpointer,
                                            results_atom::value, q.state,
                                            q.tag, q.ids, q.limit);
  if (!q.ids.empty()) {
    std::string missing;
    for (auto& id : q.ids)
      if (std::none_of(rows.begin(), rows.end(),
                       [&](const task_record& r) { return r.id == id; }))
        missing += (missing.empty() ? "" : ", ") + shorten(id, 64);
    if (!missing.empty() && q.state.empty() && q.tag.empty() && q.limit < 0)
      throw usage_error("no task with id " + missing);
  }
  auto format = q.format;
  if (format == results_format::table && q.ids.size() == 1 && rows.size() == 1) {
    print_record(rows[0]);
    return exit_code::ok;
  }
  if (format == results_format::json) {
    for (auto& r : rows)
      std::cout << dump(to_json(r)) << "\n";
    return exit_code::ok;
  }
  if (format == results_format::openai_batch) {
    for (auto& r : rows)
      if (auto line = batch_output_line(r); !line.empty())
        std::cout << line << "\n";
    return exit_code::ok;
  }
  std::printf("%-20s %-17s %-11s %3s %7s %9s  %s\n", "id", "type", "state",
              "att", "tokens", "cost", "result / error");
  // The last column gets what the terminal has left (at least 30); piped
  // into a file or a program, nothing is cut.
  size_t last = 1 << 20;
  if (isatty(STDOUT_FILENO)) {
    winsize ws{};
    int columns = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0
                    ? ws.ws_col
                    : 80;
    last = static_cast<size_t>(std::max(30, columns - 74));
  }
  for (auto& r : rows)
    std::printf("%s %s %s %3u %7llu %9.6f  %s\n",
                pad(shorten(r.id, 20), 20).c_str(),
                pad(shorten(r.type, 64), 17).c_str(),
                pad(shorten(r.state, 64), 11).c_str(),
                r.attempts,
                (unsigned long long)(r.prompt_tokens + r.completion_tokens),
                r.cost_usd,
                (r.error.empty() ? shorten(r.result, last)
                                 : shorten_middle("error: " + r.error, last))
                  .c_str());
  return exit_code::ok;
}

int requeue_command(const config& c, const std::vector<std::string>& ids,
                    bool all, const std::string& from_state) {
  // A run holds fetched copies of pending tasks, not of completed ones: a
  // completed task requeued under a running run is found by its rescan.
  store_session s(c, store::open_mode::must_exist, true);
  // Each task_requeued is committed with the requeue.
  std::vector<std::string> unique;
  for (auto& id : ids)
    if (std::find(unique.begin(), unique.end(), id) == unique.end())
      unique.push_back(id);
  // All or nothing: an id that is not a `from_state` task changes nothing.
  auto done = ask<std::vector<std::string>>(
    s.self, s.checkpointer, requeue_atom::value, unique, all, from_state,
    make_event("task_requeued", {}, -1, from_state + " -> pending (CLI)"));
  if (!all && done.size() < unique.size()) {
    std::string missing;
    size_t n = 0;
    for (auto& id : unique)
      if (std::find(done.begin(), done.end(), id) == done.end() && n++ < 5)
        missing += (missing.empty() ? "" : ", ") + shorten(id, 64);
    throw usage_error(std::to_string(unique.size() - done.size()) +
                      " id(s) are not " + from_state + " tasks: " + missing +
                      (n > 5 ? ", ..." : "") + "; nothing was requeued");
  }
  std::printf("%zu task(s) requeued\n", done.size());
  return exit_code::ok;
}

} // namespace bgagent
