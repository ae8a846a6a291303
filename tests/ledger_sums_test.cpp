// The ledger's sums (store schema 11): spending per run and per UTC hour,
// folded from the ledger's rows at each commit instead of two indexes on
// every row. What a budget reads must not change: totals are the sums plus
// the rows not yet folded, whoever wrote them.
#include <catch2/catch.hpp>

#include "persistence/store.hpp"
#include "tests/support/job.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"
#include "tests/support/older_schema.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// A ledger row as any writer (an older bgagent) would insert it.
std::string ledger_row(int run, int tokens, double cost,
                       const std::string& ts) {
  return "INSERT INTO usage_ledger(run_id, task_id, attempt, prompt_tokens, "
         "completion_tokens, cost_usd, provider, model, ts) VALUES(" +
         std::to_string(run) + ", 't', 1, " + std::to_string(tokens) +
         ", 0, " + std::to_string(cost) + ", 'p', 'm', '" + ts + "');";
}

// What open_run reports as spent for `period` since `start` (the last run
// resumed: it is not finished).
std::pair<uint64_t, double> spent(store& db, const std::string& period,
                                  const std::string& start) {
  auto info = db.open_run(0, 0, period, start);
  return {info.tokens_used, info.cost_used};
}

} // namespace

TEST_CASE("ledger sums: version 10's ledger is summed per run and per hour "
          "by the migration, its two indexes dropped, and every total is "
          "the same",
          "[store][ledger]") {
  temp_dir dir;
  auto path = dir.path("v10.db");
  {
    store db(path, store::open_mode::create_if_missing);
    db.open_run(0, 0);
  }
  // Version 10's shape: the ledger indexed by run and by time, no sums.
  REQUIRE(sql_exec(
    path, std::string(undo_v12_sql) +
          "DROP TABLE ledger_runs; DROP TABLE ledger_hours;"
          "DELETE FROM meta WHERE key = 'ledger_summed_through';"
          "CREATE INDEX usage_ledger_run ON usage_ledger(run_id);"
          "CREATE INDEX usage_ledger_ts ON usage_ledger(ts);"
          "UPDATE meta SET value = '10' WHERE key = 'schema_version';" +
            ledger_row(1, 100, 0.25, "2026-01-01T10:15:00.000Z") +
            ledger_row(1, 20, 0.5, "2026-01-01T11:00:00.000Z") +
            ledger_row(2, 3, 0.125, "2026-01-01T11:59:59.999Z") +
            ledger_row(1, 4000, 1.0, "2026-01-02T00:00:00.000Z")));
  store db(path, store::open_mode::must_exist);
  CHECK(sql_int(path, "SELECT value FROM meta WHERE key = "
                      "'schema_version'") == store::schema_version);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
                      "('usage_ledger_run', 'usage_ledger_ts')") == 0);
  CHECK(sql_int(path, "SELECT tokens FROM ledger_runs WHERE run_id = 1") ==
        4120);
  CHECK(sql_int(path, "SELECT tokens FROM ledger_hours WHERE hour = "
                      "'2026-01-01T11'") == 23);
  CHECK(sql_int(path, "SELECT value FROM meta WHERE key = "
                      "'ledger_summed_through'") == 4);
  // Run 1 (the last run, resumed): all of its rows.
  auto run = spent(db, "run", "");
  CHECK(run.first == 4120);
  CHECK(run.second == Approx(1.75));
  // Since an hour's start: that hour's rows and later ones, any run's.
  auto day = spent(db, "day", "2026-01-01T11:00:00.000Z");
  CHECK(day.first == 4023);
  CHECK(day.second == Approx(1.625));
  // Since a time within an hour: the rows at or after it, exactly.
  auto within = spent(db, "day", "2026-01-01T11:30:00.000Z");
  CHECK(within.first == 4003);
  CHECK(within.second == Approx(1.125));
  CHECK(spent(db, "day", "2026-01-03T00:00:00.000Z").first == 0);
}

TEST_CASE("ledger sums: a commit folds the rows it wrote once, a rolled back "
          "one none, and rows another writer added after the fold are "
          "counted before they are folded and not twice after",
          "[store][ledger]") {
  temp_dir dir;
  auto path = dir.path("l.db");
  store db(path, store::open_mode::create_if_missing);
  REQUIRE(db.submit({unit_task("a")}).error.empty());
  auto info = db.open_run(0, 0);
  auto tokens_of_run = [&] {
    return sql_int(path, "SELECT COALESCE((SELECT tokens FROM ledger_runs "
                         "WHERE run_id = " +
                           std::to_string(info.id) + "), 0)");
  };
  db.begin();
  db.record_usage(info.id, "a", 1, usage{10, 5, 0.5}, "p", "m");
  db.record_usage(info.id, "a", 2, usage{1, 1, 0.25}, "p", "m");
  db.commit();
  CHECK(tokens_of_run() == 17);
  CHECK(spent(db, "run", "").first == 17);
  // Rolled back: neither the row nor its sum.
  db.begin();
  db.record_usage(info.id, "a", 3, usage{1000, 0, 1.0}, "p", "m");
  db.rollback();
  CHECK(tokens_of_run() == 17);
  CHECK(spent(db, "run", "").first == 17);
  // An older bgagent's row, after the mark: counted at once ...
  REQUIRE(sql_exec(path, ledger_row(static_cast<int>(info.id), 200, 2.0,
                                    "2026-01-01T10:00:00.000Z")));
  auto before_fold = spent(db, "run", "");
  CHECK(before_fold.first == 217);
  CHECK(before_fold.second == Approx(2.75));
  CHECK(tokens_of_run() == 17);
  // ... and folded by the next commit that writes the ledger, once.
  db.begin();
  db.record_usage(info.id, "a", 4, usage{3, 0, 0.0}, "p", "m");
  db.commit();
  CHECK(tokens_of_run() == 220);
  auto after_fold = spent(db, "run", "");
  CHECK(after_fold.first == 220);
  CHECK(after_fold.second == Approx(2.75));
  CHECK(sql_int(path, "SELECT value FROM meta WHERE key = "
                      "'ledger_summed_through'") ==
        sql_int(path, "SELECT MAX(id) FROM usage_ledger"));
  // The hours' sums hold every row, by the hour of its time.
  CHECK(sql_int(path, "SELECT SUM(tokens) FROM ledger_hours") == 220);
  CHECK(sql_int(path, "SELECT tokens FROM ledger_hours WHERE hour = "
                      "'2026-01-01T10'") == 200);
}

TEST_CASE("ledger sums: a row noted but gone by the commit is not summed, "
          "and the next row is counted",
          "[store][ledger]") {
  temp_dir dir;
  auto path = dir.path("l.db");
  store db(path, store::open_mode::create_if_missing);
  auto info = db.open_run(0, 0);
  // The row disappears inside the transaction that wrote it (as when
  // SQLite drops what a failed statement wrote).
  REQUIRE(sql_exec(path, "CREATE TRIGGER vanish AFTER INSERT ON "
                         "usage_ledger WHEN new.prompt_tokens = 100 BEGIN "
                         "DELETE FROM usage_ledger WHERE id = new.id; END;"));
  db.begin();
  db.record_usage(info.id, "a", 1, usage{100, 0, 1.0}, "p", "m");
  db.commit();
  CHECK(spent(db, "run", "").first == 0);
  REQUIRE(sql_exec(path, "DROP TRIGGER vanish"));
  db.begin();
  db.record_usage(info.id, "a", 2, usage{7, 0, 0.5}, "p", "m");
  db.commit();
  auto total = spent(db, "run", "");
  CHECK(total.first == 7);
  CHECK(total.second == Approx(0.5));
}
