// The auditor over a store of several files, with real actors and files:
// one writer per file (app/store_writers), the auditor merging their events
// into one log in seq order. A flush right after the writers attach waits
// for every page of every file's catch-up; live events about tasks go to
// their tasks' files; a writer that ends does not hang a flush, and what
// it held back reaches the log at the next start, once.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "actors/auditor.hpp"
#include "app/store_writers.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/shard_map.hpp"
#include "persistence/store_set.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/job.hpp"
#include "tests/support/store_files.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

constexpr uint32_t files = 3;

// `n` tasks submitted into a new store of `files` files.
void submit(const std::string& db, int n, const std::string& prefix) {
  store_set set(db, store::open_mode::create_if_missing, files);
  set.begin_submission("test", store::on_conflict::error);
  std::vector<task> part;
  for (int i = 0; i < n; ++i) {
    part.push_back(unit_task(prefix + std::to_string(i)));
    if (part.size() == 2048 || i + 1 == n) {
      REQUIRE(set.submit_part(part).error.empty());
      part.clear();
    }
  }
  REQUIRE(set.end_submission().error.empty());
}

// `n` events committed into a new store of `files` files in turns of 100
// a file, numbered from the files' one clock: each file's seqs are spread
// over the whole range, as a run's are.
void add_interleaved(const std::string& db, int n) {
  store_set set(db, store::open_mode::create_if_missing, files);
  for (int i = 0; i < n;)
    for (uint32_t k = 0; k < files && i < n; ++k) {
      set.at(k).begin();
      for (int j = 0; j < 100 && i < n; ++j, ++i)
        set.at(k).add_event(make_event("alert", {}, -1, std::to_string(i)));
      set.at(k).commit();
    }
}

// An auditor and the files' writers, as a run has them.
struct writers_env {
  actor_env& e;
  auditor_actor aud;
  store_handles writers;
  writers_env(actor_env& env, const std::string& db, const std::string& log)
    : e(env) {
    aud = spawn_auditor(e.sys, log);
    auto set = std::make_unique<store_set>(
      db, store::open_mode::must_exist, 0, store::sync_mode::normal);
    set->clock()->raise(jsonl_writer::last_seq(log));
    writers = spawn_file_writers(e.sys, std::move(set), db,
                                 store::sync_mode::normal, aud);
  }
  ~writers_env() {
    for (auto& w : writers.files)
      e.self->send_exit(w, caf::exit_reason::user_shutdown);
    e.self->send_exit(aud, caf::exit_reason::user_shutdown);
  }
  bool flush() {
    return ask_for<flush_atom>(e.self, aud, flush_atom::value).has_value();
  }
};

} // namespace

TEST_CASE("audit merge: a flush right after the writers attach waits for "
          "every page of every file's catch-up",
          "[unit][auditor][shard]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  // About 20,000 events a file: five catch-up pages each (4,096 a page);
  // every file's flush round trip comes back after its first pages.
  add_interleaved(db, 60000);
  actor_env e;
  writers_env w(e, db, log);
  REQUIRE(w.flush());
  // The flush said every event is there: nothing is written after it.
  auto size_at_answer = std::filesystem::file_size(log);
  REQUIRE(w.flush());
  CHECK(std::filesystem::file_size(log) == size_at_answer);
  auto in_files = store_events(db, files);
  CHECK(in_files.size() == 60000);
  CHECK(log_seqs(log) == seqs_of(in_files));
}

TEST_CASE("audit merge: events about tasks go to their tasks' files and "
          "the log is the files' events in seq order",
          "[unit][auditor][shard]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  submit(db, 300, "t");
  actor_env e;
  writers_env w(e, db, log);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 300; i += 7)
      e.self->send(w.aud, make_event("task_requeued", "t" + std::to_string(i),
                                     1, std::to_string(round)));
    e.self->send(w.aud, make_event("alert", {}, -1, std::to_string(round)));
  }
  REQUIRE(w.flush());
  auto in_files = store_events(db, files);
  CHECK(log_seqs(log) == seqs_of(in_files));
  // Each event naming a task is in that task's file; the others in main.
  for (uint32_t k = 0; k < files; ++k) {
    for (auto& id : sql_text_all(shard_file(db, k),
                                 "SELECT IFNULL(task_id, '') FROM events")) {
      INFO(id);
      if (id.empty())
        CHECK(k == 0);
      else
        CHECK(shard_of(id, files) == k);
    }
  }
  CHECK(sql_int(db, "SELECT COUNT(*) FROM events WHERE event = 'alert'") ==
        20);
}

TEST_CASE("audit merge: a writer that ends does not hang a flush, and what "
          "it held back reaches the log once at the next start",
          "[unit][auditor][shard]") {
  temp_dir dir;
  auto db = dir.path("a.db"), log = dir.path("audit.jsonl");
  submit(db, 300, "t");
  // Ids in each file.
  std::map<uint32_t, std::vector<std::string>> ids;
  for (int i = 0; i < 300; ++i) {
    auto id = "t" + std::to_string(i);
    ids[shard_of(id, files)].push_back(id);
  }
  {
    actor_env e;
    writers_env w(e, db, log);
    REQUIRE(w.flush());
    // File 2's writer ends; the others go on writing.
    e.self->send_exit(w.writers.files[2], caf::exit_reason::kill);
    for (auto& id : ids[0])
      e.self->send(w.aud, make_event("task_requeued", id, 1, "after"));
    for (auto& id : ids[1])
      e.self->send(w.aud, make_event("task_requeued", id, 1, "after"));
    CHECK(w.flush()); // answered, not hung
    // Nothing numbered after the file's end is in the log yet: it may come
    // after an event file 2 committed and never sent.
    CHECK(log_seqs(log).size() == 300);
  }
  {
    actor_env e;
    writers_env w(e, db, log);
    REQUIRE(w.flush());
  }
  auto in_files = store_events(db, files);
  CHECK(in_files.size() == 300 + ids[0].size() + ids[1].size());
  CHECK(log_seqs(log) == seqs_of(in_files));
}
