// persistence/store_set: a store of several files, on real SQLite files in
// a temporary directory. Creating, reopening and refusing (every refusal
// names the file and changes nothing), and reads across files equal to one
// file's reads of the same tasks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "persistence/shard_map.hpp"
#include "persistence/store_set.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

using open_mode = store::open_mode;

// The bytes of a file, to show a refusal changed nothing.
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Tasks "s<i>", tagged "odd" or "even".
std::vector<task> sharded_tasks(int n) {
  std::vector<task> out;
  for (int i = 1; i <= n; ++i) {
    auto t = unit_task("s" + std::to_string(i));
    t.tags = {i % 2 ? "odd" : "even"};
    out.push_back(t);
  }
  return out;
}

void put_into(store_set& set, const std::vector<task>& tasks) {
  set.begin_submission("test", store::on_conflict::error);
  REQUIRE(set.submit_part(tasks).error == "");
  REQUIRE(set.end_submission().error == "");
}

std::vector<std::string> ids_of(const std::vector<task_record>& rows) {
  std::vector<std::string> out;
  for (auto& r : rows)
    out.push_back(r.id);
  return out;
}

// The store_error a constructor throws (bad_input), or "" when none.
template <class F>
std::string refusal(F open) {
  try {
    open();
  } catch (const store_error& e) {
    CHECK(e.bad_input());
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("a store of 4 files is created, names itself in each file and "
          "reopens as 4",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  std::string id;
  {
    store_set set(db, open_mode::create_if_missing, 4);
    REQUIRE(set.size() == 4);
    id = set.store_id();
    CHECK(id.size() == 32);
    for (uint32_t k = 0; k < 4; ++k) {
      CHECK(set.at(k).path() == shard_file(db, k));
      CHECK(set.at(k).meta_value("store_id") == id);
      CHECK(set.at(k).meta_value("shard_index") == std::to_string(k));
      CHECK(set.at(k).meta_value("shard_count") == "4");
    }
    CHECK(std::filesystem::exists(db + ".shard3"));
    CHECK_FALSE(std::filesystem::exists(db + ".shard4"));
    // A task's file is shard_of its id.
    for (auto t : {"a", "b", "task-1", "t-0123456789abcdef"})
      CHECK(&set.of(t) == &set.at(shard_of(t, 4)));
  }
  for (uint32_t asked : {0u, 4u}) {
    store_set again(db, open_mode::must_exist, asked);
    CHECK(again.size() == 4);
    CHECK(again.store_id() == id);
  }
  store_set reading(db, open_mode::read_only);
  CHECK(reading.size() == 4);
}

TEST_CASE("a store keeps the number of files it was created with",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  { store_set set(db, open_mode::create_if_missing, 4); }
  auto before = file_bytes(db);
  auto why = refusal([&] { store_set s(db, open_mode::must_exist, 2); });
  CHECK(why == "database " + db + " is a store of 4 files; 2 files were "
                                  "asked for: a store's number of files is "
                                  "fixed when it is created");
  why = refusal([&] { store_set s(db, open_mode::must_exist, 65); });
  CHECK(why.find("65 shards asked for; a store has 1 to 64") !=
        std::string::npos);
  CHECK(file_bytes(db) == before);

  SECTION("a store of one file that holds tasks stays one file") {
    auto one = dir.path("one.db");
    {
      store s(one, open_mode::create_if_missing);
      REQUIRE(s.submit({unit_task("x")}).error.empty());
    }
    why = refusal([&] { store_set s(one, open_mode::must_exist, 4); });
    CHECK(why == "database " + one + " is a store of 1 file; 4 were asked "
                                     "for: a store's number of files is "
                                     "fixed when it is created");
    CHECK_FALSE(std::filesystem::exists(one + ".shard1"));
    store_set as_is(one, open_mode::must_exist);
    CHECK(as_is.size() == 1);
    CHECK(as_is.store_id().empty());
    CHECK(as_is.take_seqs(10) == 0);
  }
}

TEST_CASE("a missing, foreign, misplaced or miscounted file of a store is "
          "refused, naming it, with nothing changed",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  auto other = dir.path("other.db");
  { store_set set(db, open_mode::create_if_missing, 3); }
  { store_set set(other, open_mode::create_if_missing, 3); }
  namespace fs = std::filesystem;
  auto reopen = [&] {
    return refusal([&] { store_set s(db, open_mode::must_exist); });
  };

  SECTION("missing") {
    fs::rename(db + ".shard2", dir.path("away"));
    CHECK(reopen() == "database " + db + ".shard2 is missing: " + db +
                        " is a store of 3 files");
    CHECK_FALSE(fs::exists(db + ".shard2"));
  }
  SECTION("from another store") {
    fs::copy_file(other + ".shard1", db + ".shard1",
                  fs::copy_options::overwrite_existing);
    auto why = reopen();
    CHECK(why.rfind("database " + db + ".shard1 belongs to another store", 0)
          == 0);
  }
  SECTION("in another file's place") {
    fs::rename(db + ".shard1", dir.path("swap"));
    fs::rename(db + ".shard2", db + ".shard1");
    fs::rename(dir.path("swap"), db + ".shard2");
    CHECK(reopen() == "database " + db + ".shard1 is not file 1 of its "
                                         "store (its shard_index is \"2\")");
  }
  SECTION("with another count") {
    {
      store f(db + ".shard2", open_mode::must_exist, store::sync_mode::full,
              store::membership::in_set);
      f.set_meta_value("shard_count", "4");
    }
    CHECK(reopen() == "database " + db + ".shard2 says its store has \"4\" "
                                         "files; " + db + " says 3");
  }
  SECTION("a main file whose count is not a number") {
    {
      store f(db, open_mode::must_exist, store::sync_mode::full,
              store::membership::in_set);
      f.set_meta_value("shard_count", "3x\nsecond line");
    }
    CHECK(reopen() == "database " + db + ": its shard_count \"3x second "
                                         "line\" is not a number from 1 to "
                                         "64");
  }
}

TEST_CASE("a creation cut short is taken up again, and a leftover file "
          "holding tasks is never overwritten",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  // As a kill -9 after the shard files but before main's rows leaves it.
  { store main_only(db, open_mode::create_if_missing); }
  { store leftover(db + ".shard1", open_mode::create_if_missing); }
  {
    store_set set(db, open_mode::must_exist, 2);
    CHECK(set.size() == 2);
    CHECK(set.at(1).meta_value("store_id") == set.store_id());
  }

  auto fresh = dir.path("fresh.db");
  {
    store stray(fresh + ".shard2", open_mode::create_if_missing);
    REQUIRE(stray.submit({unit_task("keep-me")}).error.empty());
  }
  auto before = file_bytes(fresh + ".shard2");
  auto why =
    refusal([&] { store_set s(fresh, open_mode::create_if_missing, 3); });
  CHECK(why == "database " + fresh + ".shard2 holds tasks, but " + fresh +
                 " does not name it as one of its files: move it away");
  CHECK(file_bytes(fresh + ".shard2") == before);
  // What the refused call made is gone: the main file and shard 1.
  namespace fs = std::filesystem;
  CHECK_FALSE(fs::exists(fresh));
  CHECK_FALSE(fs::exists(fresh + "-wal"));
  CHECK_FALSE(fs::exists(fresh + ".shard1"));
  CHECK(fs::exists(fresh + ".shard2"));
}

TEST_CASE("a file of a store of several opens only as one of its set, and seqs "
          "are taken in a transaction of their own and never handed out "
          "twice",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  { store_set set(db, open_mode::create_if_missing, 4); }
  for (auto path : {db, db + ".shard3"}) {
    auto why = refusal([&] { store s(path, open_mode::must_exist); });
    CHECK(why == "database " + path + " is one file of a store of several "
                                      "(shard_count 4), which this command "
                                      "cannot open; nothing was changed");
    why = refusal([&] { store s(path, open_mode::read_only); });
    CHECK_FALSE(why.empty());
  }

  store_set set(db, open_mode::must_exist);
  CHECK(set.take_seqs(3) == 1);
  set.main().begin();
  CHECK_THROWS_AS(set.take_seqs(1), std::logic_error);
  set.main().rollback();
  CHECK(set.take_seqs(1) == 4);

  // A seq already used is refused, naming the task, not silently dropped.
  auto f = shard_of("first", 4);
  std::string second;
  for (int i = 0; second.empty(); ++i)
    if (shard_of("second" + std::to_string(i), 4) == f)
      second = "second" + std::to_string(i);
  set.at(f).begin_submission("test", store::on_conflict::error);
  REQUIRE(set.at(f).submit_part({unit_task("first")}, {}, {}, {7}).error ==
          "");
  auto rep = set.at(f).submit_part({unit_task(second)}, {}, {}, {7});
  CHECK(rep.error == "task " + second + ": its seq 7 is another task's");
  CHECK_FALSE(set.at(f).in_transaction());
  set.at(f).end_submission();
  CHECK_FALSE(set.has_task("first", ""));

  // A number main cannot read: an error naming it, and no transaction
  // left open behind it.
  set.main().set_meta_value("task_seq_next", "12z");
  try {
    set.take_seqs(1);
    FAIL("no error");
  } catch (const store_error& e) {
    CHECK(std::string(e.what()) ==
          "database " + db + ": its task_seq_next \"12z\" is not a number");
  }
  CHECK_FALSE(set.main().in_transaction());
  set.main().set_meta_value("task_seq_next", "100");
  CHECK(set.take_seqs(1) == 100);
}

TEST_CASE("reads across 4 files equal one file's reads of the same tasks",
          "[store][shard]") {
  temp_dir dir;
  auto tasks = sharded_tasks(300);
  store_set set(dir.path("set.db"), open_mode::create_if_missing, 4);
  store_set one(dir.path("one.db"), open_mode::create_if_missing);
  put_into(set, tasks);
  put_into(one, tasks);
  // Every file holds some: the reads below really merge.
  for (uint32_t k = 0; k < 4; ++k)
    CHECK(set.at(k).counts().total() > 40);
  // Seqs continue across submissions.
  CHECK(set.take_seqs(5) == 301);
  CHECK(set.take_seqs(1) == 306);

  // Some cancelled, in their own file.
  for (int i = 1; i <= 300; i += 7) {
    auto id = "s" + std::to_string(i);
    CHECK(set.of(id).cancel({id}).size() == 1);
    CHECK(one.main().cancel({id}).size() == 1);
  }
  auto a = set.counts(), b = one.counts();
  CHECK(a.pending == b.pending);
  CHECK(a.cancelled == b.cancelled);
  CHECK(a.total() == 300);
  CHECK(set.count_not_cancelled() == one.count_not_cancelled());

  struct query {
    std::string state, tag;
    std::vector<std::string> ids;
    int64_t limit, after;
    bool newest;
  };
  std::vector<query> queries = {
    {"", "", {}, -1, 0, false},
    {"pending", "", {}, -1, 0, false},
    {"cancelled", "", {}, -1, 0, true},
    {"", "odd", {}, 25, 0, false},
    {"", "", {}, 10, 150, false},
    {"", "", {}, 10, 150, true},
    {"pending", "even", {}, 7, 40, true},
    {"", "", {"s5", "s250", "s8", "nope"}, -1, 0, false},
    {"", "", {}, 0, 0, false},
  };
  for (auto& q : queries) {
    INFO(q.state << " " << q.tag << " " << q.limit << " " << q.after << " "
                 << q.newest);
    auto merged =
      set.results(q.state, q.tag, q.ids, q.limit, q.after, q.newest);
    auto single =
      one.results(q.state, q.tag, q.ids, q.limit, q.after, q.newest);
    CHECK(ids_of(merged) == ids_of(single));
    for (size_t i = 0; i < std::min(merged.size(), single.size()); ++i)
      CHECK(merged[i].seq == single[i].seq);
  }
  // Paging through the merge by seq gives every task once, in submit order.
  std::vector<std::string> paged;
  int64_t after = 0;
  for (;;) {
    auto page = set.results("", "", {}, 64, after);
    if (page.empty())
      break;
    after = page.back().seq;
    for (auto& r : page)
      paged.push_back(r.id);
  }
  REQUIRE(paged.size() == 300);
  for (size_t i = 0; i < paged.size(); ++i)
    CHECK(paged[i] == "s" + std::to_string(i + 1));

  // A refusal names the task, and nothing of the submission stays in any
  // file (tests/store_submission_test.cpp has the rest).
  auto changed = unit_task("s42");
  changed.input = "other text";
  set.begin_submission("test", store::on_conflict::error);
  auto rep = set.submit_part({unit_task("s301"), changed});
  CHECK(rep.error.rfind("task s42 was submitted before with other content",
                        0) == 0);
  CHECK(rep.failed_index == 1);
  CHECK(set.end_submission().error == rep.error);
  CHECK_FALSE(set.has_task("s301", ""));

  // has_task finds an id in its file, and a key the user chose in another.
  CHECK(set.has_task("s17", ""));
  CHECK_FALSE(set.has_task("s999", "key-s999"));
  auto chosen = unit_task("mine", "a-key-of-my-own");
  put_into(set, {chosen});
  CHECK(set.has_task("", "a-key-of-my-own"));
  CHECK(set.has_task("mine", ""));
}

TEST_CASE("a run opened on 3 files charges what each file found running "
          "once, sums the ledger over the files, and leaves an open "
          "batch's members running",
          "[store][shard]") {
  temp_dir dir;
  auto db = dir.path("bgagent.db");
  std::vector<std::string> running;
  {
    store_set set(db, open_mode::create_if_missing, 3);
    put_into(set, sharded_tasks(30));
    set.open_run(0, 0);
    for (int i = 1; i <= 12; ++i) {
      auto id = "s" + std::to_string(i);
      REQUIRE(set.of(id).mark_running(
        id, 1, held_reservation{static_cast<uint64_t>(i), 100, 0.5}));
      if (i < 12)
        running.push_back(id);
    }
  }
  std::set<uint32_t> files;
  for (auto& id : running)
    files.insert(shard_of(id, 3));
  REQUIRE(files.size() == 3); // every file has some
  // An open provider batch, recorded in main, holds s12 wherever it lives.
  exec_sql(db, "INSERT INTO batches(id, state, provider, model, run_id, "
               "created_at) VALUES('b1', 'in_progress', 'openai', 'm', 1, "
               "'2026-11-29T00:00:00.000Z')");
  exec_sql(shard_file(db, shard_of("s12", 3)),
           "UPDATE tasks SET batch_id = 'b1' WHERE id = 's12'");
  store_set set(db, open_mode::must_exist);
  auto info = set.open_run(0, 0);
  CHECK(info.resumed);
  auto interrupted = info.interrupted;
  std::sort(interrupted.begin(), interrupted.end());
  std::sort(running.begin(), running.end());
  CHECK(interrupted == running);
  CHECK(info.tokens_used == 1100);
  CHECK(info.cost_used == Approx(5.5));
  CHECK(set.counts().running == 1);
  CHECK(set.counts().pending == 29);
  long long charged = 0, audited = 0;
  for (uint32_t k = 0; k < 3; ++k) {
    charged += sql_int(shard_file(db, k), "SELECT COUNT(*) FROM events "
                                          "WHERE event = 'budget_charged'");
    audited += sql_int(shard_file(db, k), "SELECT COUNT(*) FROM events "
                                          "WHERE event = 'task_interrupted'");
  }
  CHECK(charged == 11);
  CHECK(audited == 11);
  // Opened again: nothing is charged twice.
  auto again = set.open_run(0, 0);
  CHECK(again.interrupted.empty());
  CHECK(again.tokens_used == 1100);
  CHECK(again.cost_used == Approx(5.5));
}
