// The SQLite store: idempotent submission, fenced transitions, resume.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "persistence/store.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using bgagent::testing::unit_task;

namespace {

task make_task(const std::string& id, const std::string& key) {
  return unit_task(id, key);
}

} // namespace

TEST_CASE("submitting the same key twice inserts it once", "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  auto r1 = db.submit({make_task("a", "k1"), make_task("b", "k2")});
  REQUIRE(r1.error.empty());
  CHECK(r1.inserted.size() == 2);
  auto r2 = db.submit({make_task("a", "k1"), make_task("c", "k3")});
  CHECK(r2.inserted == std::vector<std::string>{"c"});
  CHECK(r2.duplicates == std::vector<std::string>{"a"});
  CHECK(db.counts().pending == 3);
}

TEST_CASE("an id or key reused for other content is a conflict: refused, "
          "skipped or replaced, never merged",
          "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  REQUIRE(db.submit({make_task("a", "k1"), make_task("b", "k2")})
            .error.empty());
  auto changed = make_task("a", "other-key"); // same id, other input
  changed.input = "new text of a";
  auto changed_b = make_task("b2", "k2");     // same key, other input
  changed_b.input = "new text of b";
  // Refused: nothing of the submission stays, the fault is named.
  auto r = db.submit({make_task("z", "k9"), changed});
  CHECK(r.failed_index == 1);
  CHECK(r.error.find("task a was submitted before with other content") !=
        std::string::npos);
  CHECK(db.counts().total() == 2); // "z" was rolled back too
  // The same content under the same id (another key) is a duplicate.
  auto same = db.submit({make_task("a", "yet-another-key")});
  CHECK(same.duplicates == std::vector<std::string>{"a"});
  // Skipped: the stored tasks stay as they were.
  auto skip = db.submit({changed, changed_b}, "f", {},
                        store::on_conflict::skip);
  REQUIRE(skip.error.empty());
  CHECK(skip.conflicts_skipped == std::vector<std::string>{"a", "b"});
  CHECK(db.fetch_runnable(0, 10)[0].input == "text of a");
  // Replaced: the new content, pending again with no attempts.
  REQUIRE(db.mark_running("b", 1));
  auto running = db.submit({changed_b}, "f", {}, store::on_conflict::replace);
  CHECK(running.error.find("task b is running") != std::string::npos);
  REQUIRE(db.mark_retry_wait("b", 1, "x"));
  auto rep = db.submit({changed, changed_b}, "f", {},
                       store::on_conflict::replace);
  REQUIRE(rep.error.empty());
  CHECK(rep.replaced == std::vector<std::string>{"a", "b"});
  auto tasks = db.fetch_runnable(0, 10);
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].input == "new text of a");
  CHECK(tasks[1].input == "new text of b");
  CHECK(tasks[1].attempts == 0);
  // And that content is now the stored one.
  CHECK(db.submit({changed}).duplicates == std::vector<std::string>{"a"});
}

TEST_CASE("completion is fenced by attempt", "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  db.submit({make_task("a", "k1")});
  REQUIRE(db.mark_running("a", 1));
  REQUIRE(db.mark_running("a", 2)); // re-dispatched: attempt 1 is stale
  call_outcome out;
  out.ok = true;
  out.result = "{\"summary\":\"x\"}";
  CHECK_FALSE(db.mark_completed("a", 1, out, usage{}, audit_event{}));
  CHECK(db.mark_completed("a", 2, out, usage{}, audit_event{}));
  // never twice
  CHECK_FALSE(db.mark_completed("a", 2, out, usage{}, audit_event{}));
  CHECK(db.counts().completed == 1);
}

TEST_CASE("open_run resumes an unfinished run with its spending", "[store]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  int64_t first = 0;
  {
    store db(path, store::open_mode::create_if_missing);
    db.submit({make_task("a", "k1"), make_task("b", "k2")});
    auto run = db.open_run(1000, 1.0);
    first = run.id;
    db.mark_running("a", 1);
    db.record_usage(run.id, "a", 1, usage{100, 20, 0.01}, "offline", "m");
    // the process "crashes" here: no finish_run
  }
  store db(path, store::open_mode::create_if_missing);
  auto run = db.open_run(1000, 1.0);
  CHECK(run.id == first);
  CHECK(run.resumed);
  CHECK(run.tokens_used == 120);
  CHECK(run.cost_used == Approx(0.01));
  CHECK(run.interrupted == std::vector<std::string>{"a"});
  CHECK(db.counts().pending == 2);
  db.finish_run(run.id, "finished");
  CHECK(db.open_run(1000, 1.0).id != first); // a finished run is not resumed
}

TEST_CASE("a file that is not SQLite is refused without being changed",
          "[store]") {
  temp_dir dir;
  auto path = dir.path("junk.db");
  {
    std::ofstream f(path);
    f << "this is not a database, just some text that is long enough to "
         "fill a header of one hundred bytes or so .......................";
  }
  std::ifstream before_in(path);
  std::string before((std::istreambuf_iterator<char>(before_in)), {});
  try {
    store db(path, store::open_mode::create_if_missing);
    FAIL("opened a non-SQLite file");
  } catch (const store_error& e) {
    CHECK(e.bad_input());
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
  std::ifstream after_in(path);
  std::string after((std::istreambuf_iterator<char>(after_in)), {});
  CHECK(before == after);
}
