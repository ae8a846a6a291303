// The SQLite store: idempotent submission, fenced transitions, resume.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "messages/sha256.hpp"
#include "persistence/store.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using bgagent::testing::unit_task;

namespace {

task make_task(const std::string& id, const std::string& key) {
  return unit_task(id, key);
}

// A successful call's outcome with a one-line summary.
call_outcome summary_answer() {
  call_outcome out;
  out.ok = true;
  out.result = "{\"summary\":\"x\"}";
  return out;
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
  CHECK(db.fetch_runnable({}, 10)[0].input == "text of a");
  // Replaced: the new content, pending again with no attempts.
  REQUIRE(db.mark_running("b", 1));
  auto running = db.submit({changed_b}, "f", {}, store::on_conflict::replace);
  CHECK(running.error.find("task b is running") != std::string::npos);
  REQUIRE(db.mark_retry_wait("b", 1, "x"));
  auto rep = db.submit({changed, changed_b}, "f", {},
                       store::on_conflict::replace);
  REQUIRE(rep.error.empty());
  CHECK(rep.replaced == std::vector<std::string>{"a", "b"});
  auto tasks = db.fetch_runnable({}, 10);
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
  auto out = summary_answer();
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

TEST_CASE("the run status is the last run, its limits and period, without "
          "task counts or spending", "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  db.submit({make_task("a", "k1"), make_task("b", "k2")});
  auto run = db.open_run(1000, 2.5);
  db.mark_running("a", 1);
  db.record_usage(run.id, "a", 1, usage{100, 20, 0.01}, "offline", "m");
  db.finish_run(run.id, "stopped_budget");
  auto whole = db.status();
  auto quick = db.run_status();
  CHECK(quick.run.id == whole.run.id);
  CHECK(quick.run.state == "stopped_budget");
  CHECK(quick.budget.tokens_limit == 1000);
  CHECK(quick.budget.cost_limit == Approx(2.5));
  CHECK(quick.budget_period == "run");
  CHECK(whole.tasks.total() == 2);
  CHECK(whole.budget.tokens_used == 120);
  CHECK(quick.tasks.total() == 0);
  CHECK(quick.budget.tokens_used == 0);
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

TEST_CASE("runnable tasks come by priority, then seq, page by page",
          "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  std::vector<task> tasks;
  for (auto [id, p] : std::vector<std::pair<const char*, int>>{
         {"a", 0}, {"b", 5}, {"c", -1}, {"d", 5}, {"e", 0}}) {
    auto t = make_task(id, std::string("k-") + id);
    t.priority = p;
    tasks.push_back(t);
  }
  REQUIRE(db.submit(tasks).error.empty());
  std::vector<std::string> order;
  fetch_cursor cursor;
  for (;;) {
    auto page = db.fetch_runnable(cursor, 2);
    for (auto& t : page) {
      order.push_back(t.id);
      cursor = fetch_cursor{t.priority, t.seq};
    }
    if (page.size() < 2)
      break;
  }
  CHECK(order == std::vector<std::string>{"b", "d", "a", "e", "c"});
}

TEST_CASE("an answer that failed its schema is kept for the repair turn, "
          "fetched with the task, and cleared by completion",
          "[store]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  {
    store db(path, store::open_mode::create_if_missing);
    REQUIRE(db.submit({make_task("a", "k1")}).error.empty());
    REQUIRE(db.mark_running("a", 1));
    REQUIRE(db.settle_failed("a", 1, usage{}, "p", "m", {}, "{\"x\": 1}",
                             "at /x: not a string"));
    REQUIRE(db.mark_retry_wait("a", 1, "invalid model output"));
  }
  store db(path, store::open_mode::must_exist); // survives a restart
  auto t = db.fetch_runnable({}, 10);
  REQUIRE(t.size() == 1);
  CHECK(t[0].repair_answer == "{\"x\": 1}");
  CHECK(t[0].repair_error == "at /x: not a string");
  CHECK(db.results("")[0].raw_answer == "{\"x\": 1}");
  REQUIRE(db.mark_running("a", 2));
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"s"})";
  REQUIRE(db.mark_completed("a", 2, out, usage{}, {}));
  CHECK(db.results("")[0].raw_answer.empty());
}

TEST_CASE("totals by tag count each task once per tag", "[store]") {
  temp_dir dir;
  store db(dir.path("a.db"), store::open_mode::create_if_missing);
  auto a = make_task("a", "k1");
  a.tags = {"x", "y"};
  auto b = make_task("b", "k2");
  b.tags = {"y"};
  auto c = make_task("c", "k3");
  REQUIRE(db.submit({a, b, c}).error.empty());
  REQUIRE(db.mark_running("a", 1));
  call_outcome out;
  out.ok = true;
  out.result = R"({"summary":"s"})";
  REQUIRE(db.mark_completed("a", 1, out, usage{10, 5, 0.25}, {}));
  auto totals = db.totals_by_tag();
  REQUIRE(totals.size() == 2);
  CHECK(totals[0].tag == "x");
  CHECK(totals[0].tasks.completed == 1);
  CHECK(totals[0].prompt_tokens == 10);
  CHECK(totals[0].cost_usd == Approx(0.25));
  CHECK(totals[1].tag == "y");
  CHECK(totals[1].tasks.completed == 1);
  CHECK(totals[1].tasks.pending == 1);
  CHECK(totals[1].completion_tokens == 5);
  CHECK(db.results("", "y").size() == 2);
  CHECK(db.results("pending", "y").size() == 1);
  CHECK(db.results("", "none").empty());
}

TEST_CASE("every task but the cancelled, counted from the indexes, equals "
          "the full count",
          "[store]") {
  temp_dir dir;
  store db(dir.path("q.db"), store::open_mode::create_if_missing);
  std::vector<task> tasks;
  for (int i = 0; i < 50; ++i)
    tasks.push_back(make_task("t" + std::to_string(i),
                              "k" + std::to_string(i)));
  REQUIRE(db.submit(tasks).error.empty());
  CHECK(db.count_not_cancelled() == 50);
  db.cancel({"t1", "t2", "t3"}, audit_event{});
  auto c = db.counts();
  CHECK(c.cancelled == 3);
  CHECK(db.count_not_cancelled() == c.total() - c.cancelled);
  CHECK(db.count_not_cancelled() == 47);
}

TEST_CASE("content_hash is the SHA-256 of the task's content as nlohmann "
          "JSON writes it, for any well-formed or ill-formed text",
          "[store]") {
  // The reference: what every stored hash was computed with (a store
  // compares new hashes with stored ones to find changed resubmissions).
  auto reference = [](const task& t) {
    auto content = nlohmann::json::array(
      {t.type_fingerprint, t.model, t.max_tokens, t.input, t.vars});
    if (!t.fallback_models.empty())
      content.push_back(t.fallback_models);
    return sha256_hex(content.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  static const std::vector<std::string> parts{
    "a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f",
    std::string(1, '\0'), "\x01", "\x1f", "\x7f", "Ã©", "â¬",
    "ð", "\xc3", "\xff", "\xed\xa0\x80", "{", "]", ",", "\u2028"};
  std::mt19937 rng(12345);
  auto text = [&] {
    std::string s;
    for (int i = static_cast<int>(rng() % 10); i > 0; --i)
      s += parts[rng() % parts.size()];
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    auto t = unit_task("t" + std::to_string(i));
    t.type_fingerprint = text() + "fp";
    t.model = text();
    t.max_tokens = static_cast<uint32_t>(rng());
    t.input = text();
    for (int k = static_cast<int>(rng() % 3); k > 0; --k)
      t.vars[text()] = text();
    if (i % 3 == 0)
      t.fallback_models = {text(), text()};
    INFO("input: " << t.input);
    CHECK(store::content_hash(t) == reference(t));
  }
}

TEST_CASE("a new store has 8 KiB pages, and a store made with 4 KiB pages "
          "(an earlier release's) keeps them and works as before",
          "[store]") {
  temp_dir dir;
  auto fresh = dir.path("new.db");
  { store db(fresh, store::open_mode::create_if_missing); }
  CHECK(testing::sql_int(fresh, "PRAGMA page_size") == 8192);

  // The earlier release's file: the same schema in 4 KiB pages.
  auto old = dir.path("old.db");
  {
    store db(old, store::open_mode::create_if_missing);
    db.submit({make_task("a", "k1")});
  }
  REQUIRE(testing::sql_exec(old, "PRAGMA journal_mode=DELETE; "
                                 "PRAGMA page_size=4096; VACUUM; "
                                 "PRAGMA journal_mode=WAL;"));
  REQUIRE(testing::sql_int(old, "PRAGMA page_size") == 4096);
  {
    store db(old, store::open_mode::must_exist);
    db.submit({make_task("b", "k2")});
    REQUIRE(db.mark_running("a", 1));
    auto out = summary_answer();
    CHECK(db.mark_completed("a", 1, out, usage{}, audit_event{}));
    CHECK(db.counts().completed == 1);
    CHECK(db.counts().pending == 1);
  }
  CHECK(testing::sql_int(old, "PRAGMA page_size") == 4096);
  CHECK(testing::sql_int(old, "SELECT COUNT(*) FROM pragma_integrity_check "
                             "WHERE integrity_check != 'ok'") == 0);
}
