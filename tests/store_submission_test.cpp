// A submission into a store of several files (persistence/store_set.hpp,
// docs/plans/sharded-store.md 2a), on real SQLite files: nothing of it
// shows until it ends; a refusal leaves nothing in any file; a replaced
// task is held as it was; a kill -9 at each step leaves all of it or none
// after the next open, each task submitted once. Also the migration of a
// version-11 store to 12.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstring>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

#include "persistence/shard_map.hpp"
#include "persistence/store_set.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"
#include "tests/support/older_schema.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

using open_mode = store::open_mode;
using on_conflict = store::on_conflict;

std::vector<task> tasks_from(int first, int last) {
  std::vector<task> out;
  for (int i = first; i <= last; ++i)
    out.push_back(unit_task("s" + std::to_string(i)));
  return out;
}

// One SQL count summed over the files of a store of `n`.
long long summed(const std::string& db, uint32_t n, const std::string& sql) {
  long long total = 0;
  for (uint32_t k = 0; k < n; ++k)
    total += sql_int(shard_file(db, k), sql);
  return total;
}

// What a submission may leave behind besides its tasks.
void check_no_leftovers(const std::string& db, uint32_t n) {
  CHECK(summed(db, n, "SELECT COUNT(*) FROM tasks WHERE staged_by IS NOT "
                      "NULL OR state = 'staged'") == 0);
  CHECK(summed(db, n, "SELECT COUNT(*) FROM staged_outcomes") == 0);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM submissions") == 0);
}

// Every task has exactly one task_submitted event, and no event seq is
// used twice across the files.
void check_submitted_once(const std::string& db, uint32_t n,
                          long long tasks) {
  CHECK(summed(db, n, "SELECT COUNT(*) FROM events WHERE event = "
                      "'task_submitted'") == tasks);
  CHECK(summed(db, n, "SELECT COUNT(*) FROM (SELECT task_id FROM events "
                      "WHERE event = 'task_submitted' GROUP BY task_id "
                      "HAVING COUNT(*) > 1)") == 0);
  std::set<long long> seqs;
  long long events = 0;
  for (uint32_t k = 0; k < n; ++k) {
    auto file = shard_file(db, k);
    auto count = sql_int(file, "SELECT COUNT(*) FROM events");
    events += count;
    for (long long i = 0; i < count; ++i)
      seqs.insert(sql_int(file, "SELECT seq FROM events ORDER BY seq LIMIT 1 "
                                "OFFSET " + std::to_string(i)));
  }
  CHECK(static_cast<long long>(seqs.size()) == events);
}

// Runs `work` on the store at `db` in a child process that kills itself
// (SIGKILL, as kill -9) the `nth` time the submission reaches `step`:
// nothing after that point runs.
template <class Work>
void killed_at(const std::string& db, const char* step, int nth, Work work) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      store_set set(db, open_mode::must_exist);
      std::atomic<int> seen{0};
      set.on_step = [&](const char* reached) {
        if (std::strcmp(reached, step) == 0 && ++seen == nth)
          ::raise(SIGKILL);
      };
      work(set);
    } catch (...) {
    }
    ::_exit(3); // not killed: the checks below fail
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
}

void submit_whole(store_set& set, const std::vector<task>& tasks) {
  set.begin_submission("tasks.jsonl", on_conflict::error);
  REQUIRE(set.submit_part(tasks).error == "");
  REQUIRE(set.end_submission().error == "");
}

} // namespace

TEST_CASE("a submission across 4 files shows nothing until it ends, then "
          "every task once in submit order",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set set(db, open_mode::create_if_missing, 4);
  set.begin_submission("tasks.jsonl", on_conflict::error);
  REQUIRE(set.submit_part(tasks_from(1, 100)).error == "");
  REQUIRE(set.submit_part(tasks_from(101, 200)).error == "");
  CHECK(summed(db, 4, "SELECT COUNT(*) FROM tasks WHERE state = 'staged'") ==
        200);
  {
    // Another opener sees none of it, and leaves it to its living owner.
    store_set other(db, open_mode::must_exist);
    CHECK(other.recovered().left_to_owner == 1);
    CHECK(other.counts().total() == 0);
    CHECK(other.count_not_cancelled() == 0);
    CHECK(other.results("").empty());
    CHECK_FALSE(other.has_task("s1", "key-s1"));
    for (uint32_t k = 0; k < 4; ++k)
      CHECK(other.at(k).fetch_runnable({}, 100).empty());
  }
  CHECK(summed(db, 4, "SELECT COUNT(*) FROM events") == 0);
  auto counts = set.end_submission();
  CHECK(counts.error == "");
  CHECK(counts.inserted == 200);
  CHECK(set.counts().pending == 200);
  auto rows = set.results("");
  REQUIRE(rows.size() == 200);
  for (size_t i = 0; i < rows.size(); ++i)
    CHECK(rows[i].id == "s" + std::to_string(i + 1));
  check_submitted_once(db, 4, 200);
  check_no_leftovers(db, 4);
}

TEST_CASE("a refusal in a later part of a submission across files leaves "
          "nothing of it in any file",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set set(db, open_mode::create_if_missing, 4);
  submit_whole(set, tasks_from(1, 10));
  set.begin_submission("more.jsonl", on_conflict::error);
  REQUIRE(set.submit_part(tasks_from(11, 60)).error == "");
  auto part = tasks_from(61, 80);
  part[7].input = "other text"; // s68 is new: fine
  auto clash = unit_task("s5");
  clash.input = "other text of s5";
  part.insert(part.begin() + 12, clash); // index 50 + 12 of the submission
  auto rep = set.submit_part(part);
  CHECK(contains(rep.error, "task s5 was submitted before with other"));
  CHECK(rep.failed_index == 62);
  CHECK(set.submit_part(tasks_from(81, 90)).error == rep.error);
  CHECK(set.end_submission().error == rep.error);
  CHECK(set.counts().total() == 10);
  CHECK(summed(db, 4, "SELECT COUNT(*) FROM tasks") == 10);
  check_submitted_once(db, 4, 10);
  CHECK(summed(db, 4, "SELECT COUNT(*) FROM events") == 10);
  check_no_leftovers(db, 4);
  // The store takes the next submission as if nothing happened.
  submit_whole(set, tasks_from(11, 20));
  CHECK(set.counts().pending == 20);
  check_submitted_once(db, 4, 20);
}

TEST_CASE("a task a submission across files replaces is held as it was "
          "until the submission ends",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set set(db, open_mode::create_if_missing, 3);
  submit_whole(set, tasks_from(1, 20));
  auto& file = set.of("s3");
  auto newer = unit_task("s3");
  newer.input = "the new text of s3";
  set.begin_submission("again.jsonl", on_conflict::replace);
  REQUIRE(set.submit_part({newer, unit_task("s21")}).error == "");
  // Held: no run takes it, and it reads as it was.
  for (auto& t : file.fetch_runnable({}, 100))
    CHECK(t.id != "s3");
  CHECK_FALSE(file.mark_running("s3", 1));
  auto before = set.results("", {}, {"s3"});
  REQUIRE(before.size() == 1);
  CHECK(before[0].state == "pending");
  CHECK(sql_int(file.path(), "SELECT COUNT(*) FROM tasks WHERE id = 's3' "
                             "AND input = 'text of s3'") == 1);
  // The same content again in the same submission: a duplicate of it.
  REQUIRE(set.submit_part({newer}).error == "");
  auto counts = set.end_submission();
  CHECK(counts.replaced == 1);
  CHECK(counts.duplicates == 1);
  CHECK(counts.inserted == 1);
  CHECK(sql_int(file.path(), "SELECT COUNT(*) FROM tasks WHERE id = 's3' "
                             "AND input = 'the new text of s3' AND state = "
                             "'pending'") == 1);
  CHECK(summed(db, 3, "SELECT COUNT(*) FROM events WHERE event = "
                      "'task_replaced' AND task_id = 's3'") == 1);
  bool fetched = false;
  for (auto& t : file.fetch_runnable({}, 100))
    fetched = fetched || t.id == "s3";
  CHECK(fetched);
  CHECK(file.mark_running("s3", 1));
  check_no_leftovers(db, 3);
}

TEST_CASE("a task staged by another submission still open refuses the "
          "part that names it",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set first(db, open_mode::create_if_missing, 2);
  store_set second(db, open_mode::must_exist);
  first.begin_submission("a.jsonl", on_conflict::error);
  REQUIRE(first.submit_part(tasks_from(1, 5)).error == "");
  second.begin_submission("b.jsonl", on_conflict::skip);
  auto rep = second.submit_part(tasks_from(4, 8));
  CHECK(contains(rep.error, "task s4 is being submitted by another "
                            "submission"));
  CHECK(rep.failed_index == 0);
  CHECK(second.end_submission().error == rep.error);
  CHECK(first.end_submission().inserted == 5);
  CHECK(first.counts().pending == 5);
  check_submitted_once(db, 2, 5);
  check_no_leftovers(db, 2);
}

TEST_CASE("a kill -9 at each step of a submission across files leaves all "
          "of it or none after the next open, each task submitted once",
          "[store][shard][submission][crash]") {
  struct point {
    const char* step;
    int nth;                 // the nth time the step is reached
    bool kept;               // whether the submission is kept after reopen
  };
  // Files publish on threads of their own: at "published" #n, n files
  // have published, and others may be publishing too.
  for (auto p : {point{"staged", 1, false}, point{"staged", 2, false},
                 point{"committed", 1, true}, point{"published", 1, true},
                 point{"published", 3, true}}) {
    DYNAMIC_SECTION("killed at " << p.step << " #" << p.nth) {
      temp_dir dir;
      auto db = dir.path("bgagent.db");
      { store_set create(db, open_mode::create_if_missing, 4); }
      killed_at(db, p.step, p.nth, [](store_set& set) {
        set.begin_submission("tasks.jsonl", on_conflict::error);
        set.submit_part(tasks_from(1, 100));
        set.submit_part(tasks_from(101, 200));
        set.end_submission();
      });
      store_set set(db, open_mode::must_exist);
      CHECK(set.recovered().published == (p.kept ? 1u : 0u));
      CHECK(set.recovered().dropped == (p.kept ? 0u : 1u));
      CHECK(set.counts().pending == (p.kept ? 200u : 0u));
      CHECK(set.counts().total() == (p.kept ? 200u : 0u));
      check_submitted_once(db, 4, p.kept ? 200 : 0);
      check_no_leftovers(db, 4);
      // A second open finds nothing left to do.
      store_set again(db, open_mode::must_exist);
      CHECK(again.recovered().published == 0);
      CHECK(again.recovered().dropped == 0);
    }
  }
}

TEST_CASE("a version-11 store is migrated to 12 with its tasks unchanged",
          "[store][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  {
    store s(db, open_mode::create_if_missing);
    REQUIRE(s.submit(tasks_from(1, 3), "t.jsonl").error == "");
  }
  // What version 11 had: no staged_by, no staging tables.
  exec_sql(db, std::string(undo_v12_sql) +
                 "UPDATE meta SET value = '11' WHERE key = "
                 "'schema_version';");
  auto rows_before = task_rows(db);
  {
    store s(db, open_mode::must_exist);
    CHECK(s.counts().pending == 3);
  }
  CHECK(sql_int(db, "SELECT value FROM meta WHERE key = "
                    "'schema_version'") == 12);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE staged_by IS NULL") ==
        3);
  CHECK(sql_int(db, "SELECT COUNT(*) FROM submissions") == 0);
  CHECK(task_rows(db) == rows_before);
}

TEST_CASE("a kill -9 of a submission that replaces and repeats a task "
          "leaves the replacement whole or not at all",
          "[store][shard][submission][crash]") {
  struct point {
    const char* step;
    int nth;
    bool kept;
  };
  for (auto p : {point{"staged", 2, false}, point{"committed", 1, true},
                 point{"published", 1, true}}) {
    DYNAMIC_SECTION("killed at " << p.step << " #" << p.nth) {
      temp_dir dir;
      auto db = dir.path("bgagent.db");
      {
        store_set create(db, open_mode::create_if_missing, 4);
        submit_whole(create, tasks_from(1, 20));
      }
      auto newer = unit_task("s3");
      newer.input = "the new text of s3";
      killed_at(db, p.step, p.nth, [&](store_set& set) {
        set.begin_submission("again.jsonl", on_conflict::replace);
        auto first = tasks_from(21, 100);
        first.push_back(newer);
        set.submit_part(first);
        auto second = tasks_from(101, 150);
        second.push_back(newer); // the same again: a duplicate
        set.submit_part(second);
        set.end_submission();
      });
      store_set set(db, open_mode::must_exist);
      auto s3 = shard_file(db, shard_of("s3", 4));
      CHECK(set.counts().pending == (p.kept ? 150u : 20u));
      CHECK(sql_int(s3, "SELECT COUNT(*) FROM tasks WHERE id = 's3' AND "
                        "input = '" +
                          std::string(p.kept ? "the new text of s3"
                                             : "text of s3") +
                          "' AND state = 'pending'") == 1);
      CHECK(summed(db, 4, "SELECT COUNT(*) FROM events WHERE task_id = 's3' "
                          "AND event = 'task_replaced'") == (p.kept ? 1 : 0));
      CHECK(summed(db, 4, "SELECT COUNT(*) FROM events WHERE task_id = 's3' "
                          "AND event = 'task_duplicate'") == (p.kept ? 1 : 0));
      check_submitted_once(db, 4, p.kept ? 150 : 20);
      check_no_leftovers(db, 4);
      bool fetched = false;
      for (auto& t : set.of("s3").fetch_runnable({}, 1000))
        fetched = fetched || t.id == "s3";
      CHECK(fetched);
    }
  }
}

TEST_CASE("a task held by a submission is let go as it was when the "
          "submission is refused or abandoned, and cannot be cancelled "
          "while held",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set set(db, open_mode::create_if_missing, 3);
  submit_whole(set, tasks_from(1, 20));
  auto& file = set.of("s3");
  auto newer = unit_task("s3");
  newer.input = "the new text of s3";
  auto held = [&] {
    return sql_int(file.path(), "SELECT COUNT(*) FROM tasks WHERE id = "
                                "'s3' AND staged_by IS NOT NULL");
  };
  SECTION("abandoned") {
    set.begin_submission("again.jsonl", on_conflict::replace);
    REQUIRE(set.submit_part({newer}).error == "");
    CHECK(held() == 1);
    CHECK(file.cancel({"s3"}, {}).empty());
    CHECK(set.end_submission(false).error == "abandoned");
  }
  SECTION("refused") {
    set.begin_submission("again.jsonl", on_conflict::replace);
    REQUIRE(set.submit_part({newer}).error == "");
    auto odd = unit_task("s99");
    odd.type = "no_such_type";
    CHECK(contains(set.submit_part({odd}).error, "no_such_type"));
  }
  SECTION("the set closed with the submission open") {
    store_set other(db, open_mode::must_exist);
    other.begin_submission("again.jsonl", on_conflict::replace);
    REQUIRE(other.submit_part({newer}).error == "");
    CHECK(held() == 1);
  }
  CHECK(held() == 0);
  CHECK(sql_int(file.path(), "SELECT COUNT(*) FROM tasks WHERE id = 's3' "
                             "AND input = 'text of s3'") == 1);
  CHECK(file.mark_running("s3", 1));
  CHECK(set.counts().total() == 20);
  check_submitted_once(db, 3, 20);
  check_no_leftovers(db, 3);
}

TEST_CASE("a submission a recovery claimed is refused to its owner, and "
          "staged rows no record names are dropped at open",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set owner(db, open_mode::create_if_missing, 2);
  owner.begin_submission("a.jsonl", on_conflict::error);
  REQUIRE(owner.submit_part(tasks_from(1, 10)).error == "");
  {
    // What a recovery that took the owner for gone does first.
    store_set other(db, open_mode::must_exist);
    auto open = other.main().submissions();
    REQUIRE(open.size() == 1);
    REQUIRE(other.main().claim_submission(open[0].id, "open", "dropping"));
  }
  auto rep = owner.submit_part(tasks_from(11, 20));
  CHECK(contains(rep.error, "was dropped by a recovery meanwhile"));
  CHECK(owner.end_submission().error == rep.error);
  CHECK(owner.counts().total() == 0);
  check_no_leftovers(db, 2);

  // A commit after the claim is refused too, and nothing is kept.
  owner.begin_submission("b.jsonl", on_conflict::error);
  REQUIRE(owner.submit_part(tasks_from(1, 10)).error == "");
  auto id = owner.main().submissions().at(0).id;
  REQUIRE(owner.main().claim_submission(id, "open", "dropping"));
  CHECK_THROWS_AS(owner.end_submission(), store_error);
  CHECK(owner.counts().total() == 0);
  check_no_leftovers(db, 2);

  // Rows staged for a submission main no longer knows.
  exec_sql(shard_file(db, 1),
           "INSERT INTO tasks(seq, id, type, input, idempotency_key, "
           "max_tokens, created_at, updated_at, type_fingerprint, "
           "content_hash, staged_by, state) VALUES(9000, 'lost', "
           "'summarize', 'x', 'key-lost', 0, '', '', '', '', 999, 'staged');"
           "INSERT INTO staged_outcomes(submission, task_seq, task_id, event, "
           "detail) VALUES(999, 9000, 'lost', 'task_duplicate', '');");
  store_set reopened(db, open_mode::must_exist);
  CHECK(reopened.recovered().orphans_dropped == 1);
  check_no_leftovers(db, 2);
  CHECK(summed(db, 2, "SELECT COUNT(*) FROM tasks") == 0);
}

TEST_CASE("two openers of a store of several files, each submitting in "
          "turn, never number two events alike",
          "[store][shard][submission]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  store_set first(db, open_mode::create_if_missing, 2);
  store_set second(db, open_mode::must_exist); // its clock starts here
  submit_whole(first, tasks_from(1, 30));
  submit_whole(second, tasks_from(31, 60));
  submit_whole(first, tasks_from(61, 90));
  CHECK(first.counts().pending == 90);
  check_submitted_once(db, 2, 90);
}
