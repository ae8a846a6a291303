#include "persistence/store.hpp"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "messages/fnv1a.hpp"
#include "messages/json_codec.hpp"
#include "policy/budget_period.hpp"
#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "persistence/cache_filter.hpp"
#include "persistence/event_clock.hpp"
#include "types/openai_batch.hpp"
#include "types/prompt_template.hpp"
#include "types/type_registry.hpp"

namespace bgagent {

namespace {

// A prepared statement that resets itself after each use.
class stmt {
public:
  stmt() = default;
  stmt(sqlite3* db, const char* sql, const std::string& path) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw store_error("database " + path + ": " + sqlite3_errmsg(db), false);
  }
  ~stmt() { sqlite3_finalize(s_); }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;

  stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // Returns true while a row is available.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    last_error_ = sqlite3_errmsg(db_);
    last_rc_ = rc;
    sqlite3_reset(s_);
    throw rc;
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) {
    return sqlite3_column_type(s_, col) == SQLITE_NULL;
  }
  double dbl(int col) { return sqlite3_column_double(s_, col); }
  std::string text(int col) {
    auto p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string{};
  }
  const std::string& last_error() const { return last_error_; }
  int last_rc() const { return last_rc_; }

private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
  std::string last_error_;
  int last_rc_ = 0;
};

// Runs `f` and resets the statement afterwards, turning SQLite failures into
// store_error.
template <class F>
auto with(stmt& s, const std::string& path, F f) -> decltype(f()) {
  try {
    auto res = f();
    s.reset();
    return res;
  } catch (int) {
    s.reset();
    throw store_error("database " + path + ": " + s.last_error(), false);
  }
}

// Every row's first column, as text.
std::vector<std::string> first_column_texts(stmt& s) {
  std::vector<std::string> out;
  while (s.step())
    out.push_back(s.text(0));
  return out;
}

// SQLite counts every allocation under one global mutex unless told not
// to before it initializes; nothing here reads those counts. Measured with
// bgagent-bench-store: 8-12 % less CPU per attempt.
void configure_sqlite_once() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); // refused once initialized
    return true;
  }();
  (void)configured;
}

// The audit outbox, new in version 2.
#define BGAGENT_EVENTS_TABLE_SQL                                              \
  "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, ts TEXT NOT "   \
  "NULL, event TEXT NOT NULL, task_id TEXT, attempt INTEGER, node TEXT, "     \
  "detail TEXT);\n"

// Version 2. Version 1 (bgagent before the events table) is the same
// without the reservation columns of `tasks` and without `events`.
const char* schema_v2 = R"SQL(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  idempotency_key TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  input TEXT NOT NULL,
  max_tokens INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  provider TEXT,
  model TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  reservation_id INTEGER NOT NULL DEFAULT 0,
  reserved_tokens INTEGER NOT NULL DEFAULT 0,
  reserved_cost REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  token_limit INTEGER NOT NULL DEFAULT 0,
  cost_limit REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS usage_ledger(
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  provider TEXT,
  model TEXT,
  ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_ledger_run ON usage_ledger(run_id);
)SQL" BGAGENT_EVENTS_TABLE_SQL R"SQL(
INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', '2');
)SQL";

// Version 1 -> 2, inside the caller's transaction.
const char* migrate_v1_v2 = R"SQL(
ALTER TABLE tasks ADD COLUMN reservation_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN reserved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN reserved_cost REAL NOT NULL DEFAULT 0;
)SQL" BGAGENT_EVENTS_TABLE_SQL R"SQL(
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)SQL";

// Version 2 -> 3: task types as data. Each task keeps its vars, the model
// it asks for and its type's fingerprint; the definitions are kept by
// fingerprint in task_types (the built-in ones are added, and version-2
// tasks get their built-in type's fingerprint, by store_builtin_types()).
const char* migrate_v2_v3 = R"SQL(
ALTER TABLE tasks ADD COLUMN vars TEXT;
ALTER TABLE tasks ADD COLUMN req_model TEXT;
ALTER TABLE tasks ADD COLUMN type_fingerprint TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS task_types(
  fingerprint TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  definition TEXT NOT NULL);
UPDATE meta SET value = '3' WHERE key = 'schema_version';
)SQL";

// Version 3 -> 4: each task's content hash (store::content_hash), so a key
// submitted again with other content is a conflict, not a merge. Existing
// rows get theirs from what they store (add_content_hashes()).
const char* migrate_v3_v4 = R"SQL(
ALTER TABLE tasks ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
UPDATE meta SET value = '4' WHERE key = 'schema_version';
)SQL";

// Version 4 -> 5: priorities and tags; the repair turn's last invalid
// answer and its validation error; chat tasks' whole provider answer. The
// index serves fetch_runnable's order (priority, then seq); it holds every
// task, not only runnable ones, so a state change never touches it (only
// an insert does).
const char* migrate_v4_v5 = R"SQL(
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN tags TEXT;
ALTER TABLE tasks ADD COLUMN raw_answer TEXT;
ALTER TABLE tasks ADD COLUMN answer_error TEXT;
ALTER TABLE tasks ADD COLUMN response TEXT;
CREATE INDEX IF NOT EXISTS tasks_order ON tasks(priority DESC, seq);
UPDATE meta SET value = '5' WHERE key = 'schema_version';
)SQL";

// Version 5 -> 6: the cancelled tasks indexed alone (a partial index: a
// task enters it only when cancelled, so an attempt's state changes never
// touch it), which makes "every task but the cancelled" two index counts
// instead of a scan of every row: a following run asks for it every 2 s.
const char* migrate_v5_v6 = R"SQL(
CREATE INDEX IF NOT EXISTS tasks_cancelled ON tasks(seq)
  WHERE state = 'cancelled';
UPDATE meta SET value = '6' WHERE key = 'schema_version';
)SQL";

// Version 6 -> 7: each task's own fallback_models (a JSON array), its
// attempts that count against no retry (429s, outages), and the cached
// prompt and reasoning tokens of its answer.
const char* migrate_v6_v7 = R"SQL(
ALTER TABLE tasks ADD COLUMN fallback_models TEXT;
ALTER TABLE tasks ADD COLUMN free_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
UPDATE meta SET value = '7' WHERE key = 'schema_version';
)SQL";

// Version 7 -> 8: a task's audit events found by its id (the HTTP API's
// GET /v1/tasks/{id}/events) without a scan of every event; each run's
// budget period, and the ledger by time (what a period has spent).
const char* migrate_v7_v8 = R"SQL(
CREATE INDEX IF NOT EXISTS events_task ON events(task_id)
  WHERE task_id IS NOT NULL;
ALTER TABLE runs ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'run';
CREATE INDEX IF NOT EXISTS usage_ledger_ts ON usage_ledger(ts);
UPDATE meta SET value = '8' WHERE key = 'schema_version';
)SQL";

// Version 8 -> 9: provider batches (DESIGN.md section 13): one row per
// batch, each task's batch while it is in one, and the response cache.
const char* migrate_v8_v9 = R"SQL(
CREATE TABLE IF NOT EXISTS batches(
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  tasks INTEGER NOT NULL DEFAULT 0,
  completed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  input_file_id TEXT NOT NULL DEFAULT '',
  provider_batch_id TEXT NOT NULL DEFAULT '',
  output_file_id TEXT NOT NULL DEFAULT '',
  error_file_id TEXT NOT NULL DEFAULT '',
  cost_usd REAL NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  submitted_at TEXT NOT NULL DEFAULT '',
  ended_at TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  remote_total INTEGER NOT NULL DEFAULT 0,
  remote_completed INTEGER NOT NULL DEFAULT 0,
  remote_failed INTEGER NOT NULL DEFAULT 0);
ALTER TABLE tasks ADD COLUMN batch_id TEXT;
CREATE INDEX IF NOT EXISTS tasks_batch ON tasks(batch_id)
  WHERE batch_id IS NOT NULL;
ALTER TABLE tasks ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS response_cache(
  fingerprint TEXT PRIMARY KEY,
  result TEXT NOT NULL,
  response TEXT,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  created_at TEXT NOT NULL);
UPDATE meta SET value = '9' WHERE key = 'schema_version';
)SQL";

// Version 9 -> 10: a task's audit events found by the task's seq, not its
// id. Ids are hashes: an index on them took every new event to a random
// page, and a group commit of 10,000 events rewrote most of that index
// (measured at 10,000 calls in flight: a third of the store thread's
// time). Seqs of the tasks being run are close together, so new entries
// share a few pages. An older bgagent still running when a newer one
// migrates the store keeps working: its events have no task_seq and are
// found by their task_id (an index of those rows only, which the events
// written here never enter), and the answers it caches have no key (a
// newer bgagent does not find them: a paid call, never a wrong answer).
const char* migrate_v9_v10 = R"SQL(
ALTER TABLE events ADD COLUMN task_seq INTEGER;
UPDATE events SET task_seq = (SELECT seq FROM tasks WHERE tasks.id =
  events.task_id) WHERE task_id IS NOT NULL;
DROP INDEX IF EXISTS events_task;
CREATE INDEX IF NOT EXISTS events_task_seq ON events(task_seq)
  WHERE task_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_task_unsequenced ON events(task_id)
  WHERE task_seq IS NULL AND task_id IS NOT NULL;
CREATE TABLE response_cache_v10(
  key INTEGER,
  fingerprint TEXT NOT NULL,
  result TEXT NOT NULL,
  response TEXT,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  created_at TEXT NOT NULL);
INSERT INTO response_cache_v10 SELECT 0, fingerprint, result, response,
  provider, model, created_at FROM response_cache;
DROP TABLE response_cache;
ALTER TABLE response_cache_v10 RENAME TO response_cache;
UPDATE meta SET value = '10' WHERE key = 'schema_version';
)SQL";

// Version 10 -> 11: the ledger's sums kept per run and per UTC hour, in
// place of its indexes by run and by time. Every attempt's ledger row
// entered both indexes, and an index that only grows at its end still
// rebalances its last pages on most commits: a sixth of the store's time
// per attempt (bgagent-bench-store). Each commit now folds the rows it
// wrote into the sums, once (store::fold_ledger); a total is the sums plus
// the rows after `ledger_summed_through` (none, but for rows an older
// bgagent still running wrote after this migration: counted all the same,
// and folded by the next commit here).
const char* migrate_v10_v11 = R"SQL(
CREATE TABLE IF NOT EXISTS ledger_runs(
  run_id INTEGER PRIMARY KEY,
  tokens INTEGER NOT NULL,
  cost REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_hours(
  hour TEXT PRIMARY KEY,
  tokens INTEGER NOT NULL,
  cost REAL NOT NULL) WITHOUT ROWID;
DELETE FROM ledger_runs;
DELETE FROM ledger_hours;
INSERT INTO ledger_runs SELECT run_id, SUM(prompt_tokens +
  completion_tokens), SUM(cost_usd) FROM usage_ledger GROUP BY run_id;
INSERT INTO ledger_hours SELECT substr(ts, 1, 13), SUM(prompt_tokens +
  completion_tokens), SUM(cost_usd) FROM usage_ledger GROUP BY 1;
INSERT OR REPLACE INTO meta(key, value) VALUES('ledger_summed_through',
  CAST((SELECT COALESCE(MAX(id), 0) FROM usage_ledger) AS TEXT));
DROP INDEX IF EXISTS usage_ledger_run;
DROP INDEX IF EXISTS usage_ledger_ts;
UPDATE meta SET value = '11' WHERE key = 'schema_version';
)SQL";

// Version 12: submissions that span the files of a store
// (persistence/store_set.hpp). Main records each one; every file holds
// its staged rows (state 'staged', or a task held for replacement: its
// staged_by set, its state kept) and what publishing them will do.
const char* migrate_v11_v12 = R"SQL(
ALTER TABLE tasks ADD COLUMN staged_by INTEGER;
CREATE INDEX IF NOT EXISTS tasks_staged ON tasks(staged_by)
  WHERE staged_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS staged_outcomes(
  id INTEGER PRIMARY KEY,
  submission INTEGER NOT NULL,
  task_seq INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  event TEXT NOT NULL,
  detail TEXT NOT NULL,
  replacement TEXT);
CREATE INDEX IF NOT EXISTS staged_outcomes_submission
  ON staged_outcomes(submission, id);
CREATE TABLE IF NOT EXISTS submissions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  state TEXT NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_start TEXT NOT NULL,
  started_at TEXT NOT NULL);
UPDATE meta SET value = '12' WHERE key = 'schema_version';
)SQL";

// The ledger rows not yet in the sums.
#define BGAGENT_LEDGER_TAIL                                                   \
  "id > COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = "       \
  "'ledger_summed_through'), 0)"

// After migrate_v9_v10 and rekey_response_cache(): the cache found by the
// fingerprint's 64-bit key. The fingerprint itself (64 hex digits) is no
// longer indexed: each answer stored still goes to a random page of the
// key's index, but that index is about five times smaller than the
// fingerprint's was (measured: a sixth of the store thread's time at
// 10,000 calls in flight).
const char* response_cache_index =
  "CREATE INDEX IF NOT EXISTS response_cache_key ON response_cache(key)";

// A fingerprint's key in the response cache: FNV-1a, stable across builds
// (it is stored), as a signed 64-bit integer (SQLite's). A collision only
// costs a look: lookups match the fingerprint too.
int64_t cache_key(const std::string& fingerprint) {
  uint64_t h = fnv1a(fingerprint);
  int64_t key;
  std::memcpy(&key, &h, sizeof(key));
  return key;
}

std::vector<std::string> parse_tags(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty())
    return out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_array())
    for (auto& v : j)
      if (v.is_string())
        out.push_back(v.get<std::string>());
  return out;
}

std::string tags_json(const std::vector<std::string>& tags) {
  if (tags.empty())
    return {};
  return nlohmann::json(tags).dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace);
}

// The columns fetch_runnable reads, in read_task's order.
#define BGAGENT_TASK_COLUMNS                                                  \
  "seq, id, type, input, idempotency_key, max_tokens, attempts, "             \
  "IFNULL(vars, ''), IFNULL(req_model, ''), type_fingerprint, priority, "     \
  "IFNULL(tags, ''), IFNULL(raw_answer, ''), IFNULL(answer_error, ''), "    \
  "IFNULL(fallback_models, ''), free_attempts"

task read_task(stmt& s) {
  task t;
  t.seq = s.i64(0);
  t.id = s.text(1);
  t.type = s.text(2);
  t.input = s.text(3);
  t.idempotency_key = s.text(4);
  t.max_tokens = static_cast<uint32_t>(s.i64(5));
  t.attempts = static_cast<uint32_t>(s.i64(6));
  auto vars = s.text(7);
  if (!vars.empty()) {
    auto j = nlohmann::json::parse(vars, nullptr, false);
    if (j.is_object())
      for (auto& [k, v] : j.items())
        if (v.is_string())
          t.vars[k] = v.get<std::string>();
  }
  t.model = s.text(8);
  t.type_fingerprint = s.text(9);
  t.priority = s.i64(10);
  t.tags = parse_tags(s.text(11));
  t.repair_answer = s.text(12);
  t.repair_error = s.text(13);
  t.fallback_models = parse_tags(s.text(14)); // a JSON array of strings
  t.free_attempts = static_cast<uint32_t>(s.i64(15));
  return t;
}

// A task submitted without a fingerprint is of the built-in type it names.
const std::string& fingerprint_of(const task& t) {
  if (!t.type_fingerprint.empty())
    return t.type_fingerprint;
  static const std::string none;
  auto* bt = type_registry::builtin_types().find(t.type);
  return bt ? bt->fingerprint : none;
}

std::string vars_json(const std::map<std::string, std::string>& vars) {
  if (vars.empty())
    return {};
  return nlohmann::json(vars).dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace);
}

std::string fmt_cost(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "$%.6f", x);
  return buf;
}

std::string fmt_charge(const usage& u) {
  return std::to_string(u.total_tokens()) + " tokens, " + fmt_cost(u.cost_usd);
}

std::string attempt_key(const std::string& id, uint32_t attempt) {
  return id + "#" + std::to_string(attempt);
}

// A chat task's whole answer, kept for `results --format openai-batch`
// only when it is a JSON object of a sane size (a node could send any
// bytes); otherwise the output shows the equivalent answer.
std::string kept_response(const std::string& response) {
  constexpr size_t max_response_bytes = 8 << 20;
  if (response.empty() || response.size() > max_response_bytes)
    return {};
  auto j = nlohmann::json::parse(response, nullptr, false);
  return j.is_object() ? response : std::string();
}

// The count of tasks in `state` (a stored state name).
void set_count(state_counts& c, const std::string& state, uint64_t n) {
  if (state == task_state::pending) c.pending = n;
  else if (state == task_state::running) c.running = n;
  else if (state == task_state::retry_wait) c.retry_wait = n;
  else if (state == task_state::completed) c.completed = n;
  else if (state == task_state::quarantined) c.quarantined = n;
  else if (state == task_state::cancelled) c.cancelled = n;
}

// Events of one transaction kept for take_committed_events().
constexpr size_t max_events_in_memory = 4096;

bool is_zero(const usage& u) {
  return u.total_tokens() == 0 && u.cost_usd <= 0;
}

} // namespace

struct store::submission {
  std::string source;
  on_conflict conflict = on_conflict::error;
  bool own_tx = false;      // begun by the submission (not inside another)
  bool keep_ids = false;    // submit(): the report lists the ids
  bool refused = false;
  std::string error;
  int64_t next_index = 0;   // of the next task, from the first one
  submit_counts counts;
  std::set<std::string> stored_types; // fingerprints stored by it
  std::string ts;
  // Staged (store_set's submission across files): the submission's id in
  // main. Its parts commit one by one as staged rows; its events wait in
  // staged_outcomes until publish_staged().
  int64_t staged_by = 0;
};

struct store::statements {
  stmt by_key, by_id, replace, insert_task, fetch_same, fetch_lower, row, raw_answer, running_free, running_free_at, running, completed, completed_at, settle,
    retry_wait,
    quarantined, pending, ledger, task_usage, insert_event, max_event,
    events_after, cache_put, cache_drop, cache_get, cache_complete,
    fold_runs, fold_hours, fold_mark, read_mark, add_run_sum, add_hour_sum,
    set_mark, stage_outcome;
};

// A task row's columns (state, attempts, reservation_id, reserved_tokens,
// reserved_cost, provider, model) from column `first` of a query.
template <class Row>
void read_row_columns(stmt& s, Row& r, int first = 1) {
  r.state = s.text(first);
  r.attempts = static_cast<uint32_t>(s.i64(first + 1));
  r.held.id = static_cast<uint64_t>(s.i64(first + 2));
  r.held.tokens = static_cast<uint64_t>(s.i64(first + 3));
  r.held.cost = s.dbl(first + 4);
  r.provider = s.text(first + 5);
  r.model = s.text(first + 6);
}

// A stored type definition, parsed once per store.
struct store::resolved_type {
  std::string system, prompt, schema, model;
  std::vector<std::string> fallback_models;
  double temperature = 0;
  uint32_t max_tokens = 0;
  bool raw = false; // chat: the task's input is the request body
};

struct store::task_row {
  std::string id;
  std::string state;
  uint32_t attempts = 0;
  held_reservation held;
  std::string provider, model;
};

namespace {

store_error not_sqlite(const std::string& path, const std::string& msg) {
  return store_error(
    "database " + path + " is not a SQLite database (" + msg + ")", true);
}

// `path` as a SQLite URI (file:...?immutable=1): '%', '?' and '#' escaped;
// an absolute path gets an empty authority ("file://" + "/…"), so even one
// that starts with "//" is a path.
std::string immutable_uri(const std::string& path) {
  std::string out = path.rfind('/', 0) == 0 ? "file://" : "file:";
  for (unsigned char ch : path) {
    if (ch == '%' || ch == '?' || ch == '#') {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "?immutable=1";
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool non_empty_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

bool store::writable_here() const {
  return access(path_.c_str(), W_OK) == 0 &&
         access(directory_of(path_).c_str(), W_OK) == 0;
}

void store::open_read_only() {
  if (!file_exists(path_))
    throw store_error("database " + path_ + " does not exist", true);
  // A WAL store is read through its -shm file. A reader that cannot write
  // the store must not create one (it would be the reader's, and could
  // lock the owner out): it uses the one a run keeps, or, when there is
  // none and the log holds nothing, reads the file as immutable.
  bool shm = file_exists(path_ + "-shm");
  if (!shm && non_empty_file(path_ + "-wal"))
    throw store_error("cannot read database " + path_ + ": its log (" +
                        path_ + "-wal) holds changes, and this user can "
                        "neither write the database nor open its -shm "
                        "file; run this as the database's owner",
                      true);
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  if (!shm)
    flags |= SQLITE_OPEN_URI;
  auto name = shm ? path_ : immutable_uri(path_);
  configure_sqlite_once();
  int rc = sqlite3_open_v2(name.c_str(), &db_, flags, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db_, 5000);
    rc = sqlite3_exec(db_, "SELECT COUNT(*) FROM sqlite_master", nullptr,
                      nullptr, nullptr);
    if (rc == SQLITE_OK)
      return;
  }
  std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
  sqlite3_close(db_);
  db_ = nullptr;
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
    throw not_sqlite(path_, msg);
  throw store_error("cannot read database " + path_ + ": " + msg, true);
}

store::store(const std::string& path, open_mode mode, sync_mode sync,
             membership member)
  : path_(path) {
  // Read-only where it has to be: a user who can write the store opens it
  // as usual (SQLite then removes its -shm and -wal when done, and an
  // older schema is migrated).
  read_only_ = mode == open_mode::read_only && !writable_here();
  if (read_only_) {
    open_read_only();
  } else {
    open_read_write(mode == open_mode::read_only ? open_mode::must_exist
                                                 : mode,
                    sync);
  }
  try {
    open_schema();
    if (member == membership::alone) {
      auto shards = meta_value("shard_count");
      if (!shards.empty() && shards != "1")
        throw store_error("database " + path_ + " is one file of a store "
                            "of several (shard_count " +
                            utf8_clip(one_line(shards), 8) +
                            "), which this command cannot open; nothing "
                            "was changed",
                          true);
    }
    prepare_statements();
  } catch (...) {
    st_.reset();
    if (in_tx_)
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

void store::open_read_write(open_mode mode, sync_mode sync) {
  const auto& path = path_;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == open_mode::create_if_missing)
    flags |= SQLITE_OPEN_CREATE;
  configure_sqlite_once();
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    if (mode == open_mode::must_exist && rc == SQLITE_CANTOPEN)
      throw store_error("database " + path + " does not exist", true);
    throw store_error("cannot open database " + path + ": " + msg, true);
  }
  sqlite3_busy_timeout(db_, 5000);
  // A new store gets 8 KiB pages (SQLite's default is 4 KiB): a task row
  // is about 450 bytes, and a group commit rewrites every page it touches,
  // so pages twice as large write fewer WAL frames per task and split less
  // (measured: submit -13 % wall time, an attempt -7 % CPU in
  // bgagent-bench-store). It only sets the size of a database still empty;
  // an existing store keeps its own, since WAL mode cannot change it.
  sqlite3_exec(db_, "PRAGMA page_size=8192", nullptr, nullptr, nullptr);
  // The first statement that reads the header: a file that is not SQLite
  // fails here, before anything is written to it.
  char* err = nullptr;
  rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    sqlite3_close(db_);
    db_ = nullptr;
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
      throw not_sqlite(path, msg);
    throw store_error("database " + path + ": " + msg, true);
  }
  try {
    // FULL: each commit is on disk (the WAL synced) before it is reported,
    // so a completion survives power loss. NORMAL in WAL mode survives a
    // crash of this process (kill -9); an OS crash may lose the last
    // commits.
    exec(sync == sync_mode::full ? "PRAGMA synchronous=FULL"
                                 : "PRAGMA synchronous=NORMAL");
    // Checkpoint the WAL into the database every 10,000 pages (~80 MB in a
    // new store's 8 KiB pages, ~40 MB in an older store's 4 KiB) rather
    // than every 1,000: a busy run rewrites the same task pages many times
    // between two checkpoints (measured: +30 % tasks/s with
    // synchronous=NORMAL).
    exec("PRAGMA wal_autocheckpoint=10000");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

void store::prepare_statements() {
  st_ = std::make_unique<statements>();
  auto prep = [&](stmt& s, const char* sql) {
    s.~stmt();
    new (&s) stmt(db_, sql, path_);
  };
  prep(st_->stage_outcome,
       "INSERT INTO staged_outcomes(submission, task_seq, task_id, event, "
       "detail, replacement) VALUES(?1, ?2, ?3, ?4, ?5, NULLIF(?6, ''))");
  prep(st_->by_key, "SELECT seq, id, content_hash, state, "
                    "IFNULL(staged_by, 0) FROM tasks WHERE "
                    "idempotency_key = ?1");
  prep(st_->by_id, "SELECT seq, id, content_hash, state, "
                   "IFNULL(staged_by, 0) FROM tasks WHERE id = ?1");
  prep(st_->replace,
       "UPDATE tasks SET type = ?2, input = ?3, max_tokens = ?4, "
       "vars = NULLIF(?5, ''), req_model = NULLIF(?6, ''), "
       "type_fingerprint = ?7, content_hash = ?8, state = 'pending', "
       "attempts = 0, free_attempts = 0, result = NULL, error = NULL, "
       "raw_answer = NULL, "
       "answer_error = NULL, response = NULL, updated_at = ?9, cached = 0, "
       "priority = ?10, tags = NULLIF(?11, ''), "
       "fallback_models = NULLIF(?12, '') WHERE seq = ?1");
  // OR IGNORE: a key or id stored already is not an error but the rarer
  // case, looked up after the insert changed nothing. A seq of 0 (NULL)
  // is the next free one.
  prep(st_->insert_task,
       "INSERT OR IGNORE INTO tasks(seq, id, type, input, idempotency_key, "
       "max_tokens, created_at, updated_at, vars, req_model, "
       "type_fingerprint, content_hash, priority, tags, fallback_models, "
       "staged_by, state) "
       "VALUES(NULLIF(?14, 0), ?1, ?2, ?3, ?4, ?5, ?6, ?6, NULLIF(?7, ''), "
       "NULLIF(?8, ''), ?9, ?10, ?11, NULLIF(?12, ''), NULLIF(?13, ''), "
       "NULLIF(?15, 0), CASE WHEN ?15 = 0 THEN 'pending' ELSE 'staged' END)");
  // Two seeks of the tasks_order index: the rest of the cursor's
  // priority, then the lower ones.
  // A task held by a submission still open (staged_by) waits for it.
  prep(st_->fetch_same, "SELECT " BGAGENT_TASK_COLUMNS " FROM tasks "
                        "WHERE state IN ('pending', 'retry_wait') AND "
                        "staged_by IS NULL AND priority = ?1 AND seq > ?2 ORDER BY priority "
                        "DESC, seq LIMIT ?3");
  prep(st_->fetch_lower, "SELECT " BGAGENT_TASK_COLUMNS " FROM tasks "
                         "WHERE state IN ('pending', 'retry_wait') AND "
                         "staged_by IS NULL AND priority < ?1 ORDER BY priority DESC, seq "
                         "LIMIT ?2");
  prep(st_->raw_answer,
       "UPDATE tasks SET raw_answer = ?2, answer_error = ?3 WHERE id = ?1");
  prep(st_->row, "SELECT state, attempts, reservation_id, reserved_tokens, "
                 "reserved_cost, IFNULL(provider, ''), IFNULL(model, '') "
                 "FROM tasks WHERE id = ?1");
  prep(st_->cache_put,
       "INSERT INTO response_cache(key, fingerprint, result, response, "
       "provider, model, created_at) VALUES(?7, ?1, ?2, NULLIF(?3, ''), "
       "?4, ?5, ?6)");
  prep(st_->cache_drop, "DELETE FROM response_cache WHERE key = ?1 AND "
                        "fingerprint = ?2");
  prep(st_->cache_get, "SELECT result, IFNULL(response, ''), provider, "
                       "model FROM response_cache WHERE key = ?2 AND "
                       "fingerprint = ?1 ORDER BY rowid DESC LIMIT 1");
  prep(st_->cache_complete,
       "UPDATE tasks SET state = 'completed', result = ?2, "
       "response = NULLIF(?3, ''), provider = ?4, model = ?5, error = NULL, "
       "raw_answer = NULL, answer_error = NULL, cached = 1, updated_at = ?6 "
       "WHERE id = ?1 AND state IN ('pending', 'retry_wait') AND "
       "staged_by IS NULL");
  // The running and completed marks, each found by id or, when the caller
  // knows it, by the task's seq (a rowid lookup, no index; the id still
  // checked).
  const std::string mark_running =
    "UPDATE tasks SET state = 'running', attempts = ?2, updated_at = ?3, "
    "reservation_id = ?4, reserved_tokens = ?5, reserved_cost = ?6, "
    "batch_id = NULL WHERE ";
  const std::string may_run = "id = ?1 AND state IN ('pending', "
                              "'retry_wait', 'running') AND attempts < ?2 "
                              "AND staged_by IS NULL";
  const std::string holds_nothing =
    " AND NOT (state = 'running' AND (reserved_tokens > 0 OR "
    "reserved_cost > 0))";
  prep(st_->running_free, (mark_running + may_run + holds_nothing).c_str());
  prep(st_->running_free_at,
       (mark_running + "seq = ?7 AND " + may_run + holds_nothing).c_str());
  prep(st_->running, (mark_running + may_run).c_str());
  const std::string mark_completed =
    "UPDATE tasks SET state = 'completed', result = ?3, error = NULL, "
    "raw_answer = NULL, answer_error = NULL, response = NULLIF(?10, ''), "
    "provider = ?4, model = ?5, updated_at = ?6, "
    "prompt_tokens = prompt_tokens + ?7, "
    "completion_tokens = completion_tokens + ?8, "
    "cost_usd = cost_usd + ?9, reservation_id = 0, "
    "reserved_tokens = 0, reserved_cost = 0, cached_tokens = ?12, "
    "reasoning_tokens = ?13, cached = 0 WHERE ";
  const std::string the_attempt = "id = ?1 AND state = 'running' AND "
                                  "attempts = ?2 AND (?11 = 0 OR "
                                  "reservation_id = ?11)";
  prep(st_->completed, (mark_completed + the_attempt).c_str());
  prep(st_->completed_at,
       (mark_completed + "seq = ?14 AND " + the_attempt).c_str());
  prep(st_->settle,
       "UPDATE tasks SET reservation_id = 0, reserved_tokens = 0, "
       "reserved_cost = 0, updated_at = ?3 "
       "WHERE id = ?1 AND state = 'running' AND attempts = ?2");
  prep(st_->retry_wait,
       "UPDATE tasks SET state = 'retry_wait', attempts = ?2, error = ?3, "
       "updated_at = ?4, reservation_id = 0, reserved_tokens = 0, "
       "reserved_cost = 0 WHERE id = ?1 AND state IN ('running', "
       "'pending', 'retry_wait') AND attempts <= ?2");
  prep(st_->quarantined,
       "UPDATE tasks SET state = 'quarantined', attempts = ?2, error = ?3, "
       "updated_at = ?4, reservation_id = 0, reserved_tokens = 0, "
       "reserved_cost = 0 WHERE id = ?1 AND state IN ('running', "
       "'retry_wait', 'pending') AND attempts <= ?2");
  prep(st_->pending,
       "UPDATE tasks SET state = 'pending', attempts = ?2, updated_at = ?3, "
       "reservation_id = 0, reserved_tokens = 0, reserved_cost = 0 "
       "WHERE id = ?1 AND state = 'running' AND attempts = ?2 + 1");
  prep(st_->ledger,
       "INSERT INTO usage_ledger(run_id, task_id, attempt, prompt_tokens, "
       "completion_tokens, cost_usd, provider, model, ts) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  prep(st_->task_usage,
       "UPDATE tasks SET prompt_tokens = prompt_tokens + ?2, "
       "completion_tokens = completion_tokens + ?3, "
       "cost_usd = cost_usd + ?4, provider = ?5, model = ?6 WHERE id = ?1");
  prep(st_->insert_event,
       "INSERT INTO events(seq, ts, event, task_id, attempt, node, detail, "
       "task_seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
       "COALESCE(?8, (SELECT seq FROM tasks WHERE id = ?4)))");
  prep(st_->max_event, "SELECT COALESCE(MAX(seq), 0) FROM events");
  // Folds the ledger rows after the mark into the sums, and moves the mark
  // past them (store::fold_ledger). "WHERE": SQLite's upsert after a
  // SELECT needs one.
  prep(st_->fold_runs,
       "INSERT INTO ledger_runs(run_id, tokens, cost) SELECT run_id, "
       "SUM(prompt_tokens + completion_tokens), SUM(cost_usd) FROM "
       "usage_ledger WHERE " BGAGENT_LEDGER_TAIL " GROUP BY run_id "
       "ON CONFLICT(run_id) DO UPDATE SET tokens = tokens + "
       "excluded.tokens, cost = cost + excluded.cost");
  prep(st_->fold_hours,
       "INSERT INTO ledger_hours(hour, tokens, cost) SELECT substr(ts, 1, "
       "13), SUM(prompt_tokens + completion_tokens), SUM(cost_usd) FROM "
       "usage_ledger WHERE " BGAGENT_LEDGER_TAIL " GROUP BY 1 "
       "ON CONFLICT(hour) DO UPDATE SET tokens = tokens + excluded.tokens, "
       "cost = cost + excluded.cost");
  prep(st_->read_mark, "SELECT (SELECT CAST(value AS INTEGER) FROM meta "
                       "WHERE key = 'ledger_summed_through'), (SELECT "
                       "COALESCE(MAX(id), 0) FROM usage_ledger)");
  prep(st_->add_run_sum,
       "INSERT INTO ledger_runs(run_id, tokens, cost) VALUES(?1, ?2, ?3) "
       "ON CONFLICT(run_id) DO UPDATE SET tokens = tokens + excluded.tokens, "
       "cost = cost + excluded.cost");
  prep(st_->add_hour_sum,
       "INSERT INTO ledger_hours(hour, tokens, cost) VALUES(?1, ?2, ?3) "
       "ON CONFLICT(hour) DO UPDATE SET tokens = tokens + excluded.tokens, "
       "cost = cost + excluded.cost");
  prep(st_->set_mark, "UPDATE meta SET value = ?1 WHERE key = "
                      "'ledger_summed_through'");
  prep(st_->fold_mark,
       "INSERT OR REPLACE INTO meta(key, value) VALUES("
       "'ledger_summed_through', CAST((SELECT COALESCE(MAX(id), 0) FROM "
       "usage_ledger) AS TEXT))");
  prep(st_->events_after,
       "SELECT seq, ts, event, IFNULL(task_id, ''), IFNULL(attempt, -1), "
       "IFNULL(node, ''), IFNULL(detail, '') FROM events WHERE seq > ?1 "
       "ORDER BY seq LIMIT ?2");
}

store::~store() {
  if (in_tx_)
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  st_.reset();
  if (db_)
    sqlite3_close(db_);
}

// The schema version recorded in `meta`: -1 when the file has no tables at
// all (new), 0 when it has tables but no version (not a bgagent store).
int store::read_version() {
  stmt tables(db_, "SELECT COUNT(*), SUM(name = 'meta') FROM sqlite_master "
                   "WHERE type = 'table'",
              path_);
  int64_t n = 0, meta = 0;
  with(tables, path_, [&] {
    if (tables.step()) {
      n = tables.i64(0);
      meta = tables.i64(1);
    }
    return 0;
  });
  if (n == 0)
    return -1;
  if (meta == 0)
    return 0;
  stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'", path_);
  std::string text;
  with(v, path_, [&] {
    if (v.step())
      text = v.text(0);
    return 0;
  });
  char* end = nullptr;
  long x = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || x < 1)
    return 0;
  return static_cast<int>(std::min<long>(x, 1000000));
}

void store::open_schema() {
  auto refuse = [&](int v) {
    if (v > schema_version)
      return store_error("database " + path_ + " has schema version " +
                           std::to_string(v) +
                           ", newer than this bgagent knows (" +
                           std::to_string(schema_version) +
                           "): use a newer bgagent; nothing was changed",
                         true);
    return store_error("database " + path_ +
                         " is not a bgagent store (no schema version); "
                         "nothing was changed",
                       true);
  };
  int v = read_version();
  if (v == schema_version)
    return;
  if (v > schema_version || v == 0)
    throw refuse(v);
  if (read_only_ && v == -1)
    throw store_error("database " + path_ + " is empty: no bgagent store "
                        "yet (run or submit creates it)",
                      true);
  if (read_only_)
    throw store_error("database " + path_ + " has schema version " +
                        std::to_string(v) +
                        ", older than this bgagent's (" +
                        std::to_string(schema_version) +
                        "), and is opened read-only: a command that writes "
                        "(run, submit) migrates it first; nothing was "
                        "changed",
                      true);
  // Create or migrate under the write lock, looking again: another process
  // may have done it meanwhile.
  begin();
  v = read_version();
  if (v == schema_version) {
    commit();
    return;
  }
  if (v == -1) {
    exec(schema_v2);
  } else if (v == 1) {
    exec(migrate_v1_v2);
  } else if (v < 2 || v > 11) {
    rollback();
    throw refuse(v);
  }
  if (v < 3) {
    exec(migrate_v2_v3);
    store_builtin_types();
  }
  if (v < 4) {
    exec(migrate_v3_v4);
    add_content_hashes();
  }
  if (v < 5)
    exec(migrate_v4_v5);
  if (v < 6)
    exec(migrate_v5_v6);
  if (v < 7)
    exec(migrate_v6_v7);
  if (v < 8)
    exec(migrate_v7_v8);
  if (v < 9)
    exec(migrate_v8_v9);
  if (v < 10) {
    exec(migrate_v9_v10);
    rekey_response_cache();
    exec(response_cache_index);
  }
  if (v < 11)
    exec(migrate_v10_v11);
  exec(migrate_v11_v12);
  commit();
}

void store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail(msg);
  }
}

void store::fail(const std::string& what) {
  throw store_error("database " + path_ + ": " + what, false);
}

// SQLite's busy handler: sleep a little and try again, for ever.
int store::on_busy(void* p, int count) {
  auto& s = *static_cast<store*>(p);
  auto now = std::chrono::steady_clock::now();
  if (count == 0) {
    s.wait_started_ = now;
    s.wait_reported_ = 0;
  }
  double waited = std::chrono::duration<double>(now - s.wait_started_).count();
  double next = s.wait_reported_ == 0 ? 5 : s.wait_reported_ + 30;
  if (waited >= next) {
    s.wait_reported_ = waited;
    if (s.lock_waiting_)
      s.lock_waiting_(waited);
  }
  // 1, 2, 4 ... ms, then every 20 ms: a short lock is taken at once.
  auto ms = count < 5 ? 1 << count : 20;
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return 1;
}

void store::wait_for_lock(std::function<void(double)> waiting) {
  lock_waiting_ = std::move(waiting);
  sqlite3_busy_handler(db_, &store::on_busy, this);
}

const std::string& store::tx_time() {
  if (tx_time_.empty() || !in_tx_)
    tx_time_ = now_rfc3339();
  return tx_time_;
}

void store::begin() {
  exec("BEGIN IMMEDIATE");
  in_tx_ = true;
  tx_time_.clear();
  next_event_seq_ = 0;
  clock_checked_in_tx_ = false;
  tx_events_.clear();
  tx_settlements_.clear();
  tx_charged_.clear();
}

void store::note_ledger_row(int64_t run_id, const usage& u,
                            const std::string& ts) {
  auto id = static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  if (ledger_rows_ == 0)
    ledger_first_ = id;
  ledger_last_ = id;
  ++ledger_rows_;
  auto add = [&](ledger_sum& sum) {
    sum.tokens += u.total_tokens();
    sum.cost += u.cost_usd;
  };
  add(tx_run_sums_[run_id]);
  add(tx_hour_sums_[ts.substr(0, 13)]);
}

void store::clear_ledger_rows() {
  ledger_rows_ = 0;
  tx_run_sums_.clear();
  tx_hour_sums_.clear();
}

void store::fold_ledger() {
  // Taken first: a fold that fails part-way is never added again (its
  // rows stay after the mark, counted by every total until a fold).
  auto runs = std::move(tx_run_sums_);
  auto hours = std::move(tx_hour_sums_);
  auto first = ledger_first_, last = ledger_last_, rows = ledger_rows_;
  clear_ledger_rows();
  // SQLite rolls a transaction back by itself on some errors (a full
  // disk): the rows noted are gone, so no sum of them may be added.
  if (sqlite3_get_autocommit(db_))
    fail("the transaction was rolled back before its commit");
  // The usual case: this transaction's rows follow the mark and are the
  // ledger's last (nothing else wrote the ledger since the last fold): its
  // sums, kept as it wrote them, are added. Otherwise the rows after the
  // mark are summed by SQL, whoever wrote them.
  int64_t mark = -1, max_id = -1;
  auto& rm = st_->read_mark;
  with(rm, path_, [&] {
    if (rm.step()) {
      mark = rm.is_null(0) ? -1 : rm.i64(0);
      max_id = rm.i64(1);
    }
    return 0;
  });
  bool ours_only = mark >= 0 && first == mark + 1 && last == max_id &&
                   last - first + 1 == rows;
  if (ours_only) {
    auto add = [&](stmt& a, const auto& sums) {
      for (auto& [key, sum] : sums) {
        a.bind(1, key).bind(2, static_cast<int64_t>(sum.tokens));
        a.bind(3, sum.cost);
        with(a, path_, [&] { return a.step(); });
      }
    };
    add(st_->add_run_sum, runs);
    add(st_->add_hour_sum, hours);
    auto& m = st_->set_mark;
    m.bind(1, std::to_string(last));
    with(m, path_, [&] { return m.step(); });
  } else {
    for (auto* f : {&st_->fold_runs, &st_->fold_hours, &st_->fold_mark})
      with(*f, path_, [&] { return f->step(); });
  }
}

void store::commit() {
  if (ledger_rows_ > 0)
    fold_ledger();
  exec("COMMIT");
  in_tx_ = false;
  tx_time_.clear();
  next_event_seq_ = 0;
  clock_checked_in_tx_ = false;
  if (committed_events_.empty())
    committed_events_.swap(tx_events_);
  else
    for (auto& e : tx_events_)
      committed_events_.push_back(std::move(e));
  tx_events_.clear();
  for (auto& s : tx_settlements_)
    committed_settlements_.push_back(s);
  tx_settlements_.clear();
  for (auto& kv : tx_charged_)
    charged_[kv.first] = kv.second;
  tx_charged_.clear();
}

void store::rollback() {
  if (in_tx_) {
    in_tx_ = false;
    clear_ledger_rows();
    next_event_seq_ = 0;
    clock_checked_in_tx_ = false;
    tx_events_.clear();
    tx_settlements_.clear();
    tx_charged_.clear();
    exec("ROLLBACK");
  }
}

namespace {

// Opens a transaction for one call unless the caller already holds one.
class auto_tx {
public:
  explicit auto_tx(store& s) : s_(s), own_(!s.in_transaction()) {
    if (own_)
      s_.begin();
  }
  ~auto_tx() {
    if (own_ && s_.in_transaction()) {
      try {
        s_.rollback();
      } catch (...) {
      }
    }
  }
  void commit() {
    if (own_)
      s_.commit();
  }

private:
  store& s_;
  bool own_;
};

} // namespace

void store::add_event(const audit_event& ev, int64_t task_seq) {
  auto_tx tx(*this);
  if (event_clock_) {
    // Another process may have numbered events in this file since the
    // clock was raised: never below the file's last, read once a
    // transaction (one rowid lookup). Unique across files for one process
    // at a time only (plan step 4: the clock's lock).
    if (!clock_checked_in_tx_) {
      event_clock_->raise(last_event_seq());
      clock_checked_in_tx_ = true;
    }
    next_event_seq_ = event_clock_->take();
  } else if (next_event_seq_ == 0) {
    auto& m = st_->max_event;
    uint64_t max = with(m, path_, [&] {
      return m.step() ? static_cast<uint64_t>(m.i64(0)) : uint64_t{0};
    });
    next_event_seq_ = std::max(max, event_floor_) + 1;
  }
  committed_event ce{next_event_seq_, tx_time(), ev};
  auto& s = st_->insert_event;
  s.bind(1, static_cast<int64_t>(ce.seq)).bind(2, ce.ts).bind(3, ev.event);
  if (ev.task_id.empty())
    s.bind_null(4);
  else
    s.bind(4, ev.task_id);
  if (ev.attempt < 0)
    s.bind_null(5);
  else
    s.bind(5, static_cast<int64_t>(ev.attempt));
  if (ev.node.empty())
    s.bind_null(6);
  else
    s.bind(6, ev.node);
  if (ev.detail.empty())
    s.bind_null(7);
  else
    s.bind(7, ev.detail);
  // Unknown (0): looked up by the task's id (cheap: the statements that
  // go with an event have just read that part of the index).
  if (task_seq > 0 && !ev.task_id.empty())
    s.bind(8, task_seq);
  else
    s.bind_null(8);
  with(s, path_, [&] { return s.step(); });
  ++next_event_seq_;
  // A huge transaction (a submission of 100,000 tasks) keeps only its last
  // events in memory: whoever writes them from take_committed_events()
  // sees the gap before them and reads the rest from the table.
  // With a shared clock the rest would look like other files' seqs
  // (policy/event_merge.hpp), so they are kept whole.
  if (tx_events_.size() >= max_events_in_memory && !event_clock_)
    tx_events_.clear();
  tx_events_.push_back(std::move(ce));
  tx.commit();
}

namespace {

// The rows of a query of (seq, ts, event, task_id, attempt, node, detail).
std::vector<committed_event> event_rows(stmt& s) {
  std::vector<committed_event> out;
  while (s.step()) {
    committed_event e;
    e.seq = static_cast<uint64_t>(s.i64(0));
    e.ts = s.text(1);
    e.event.event = s.text(2);
    e.event.task_id = s.text(3);
    e.event.attempt = static_cast<int32_t>(s.i64(4));
    e.event.node = s.text(5);
    e.event.detail = s.text(6);
    out.push_back(std::move(e));
  }
  return out;
}

} // namespace

std::vector<committed_event> store::events_after(uint64_t after_seq,
                                                 uint32_t limit) {
  auto& s = st_->events_after;
  s.bind(1, static_cast<int64_t>(after_seq))
    .bind(2, static_cast<int64_t>(limit));
  return with(s, path_, [&] { return event_rows(s); });
}

void store::use_event_clock(std::shared_ptr<event_clock> clock) {
  event_clock_ = std::move(clock);
  if (event_clock_)
    event_clock_->raise(std::max(last_event_seq(), event_floor_));
}

void store::raise_event_floor(uint64_t seq) {
  if (event_clock_)
    event_clock_->raise(seq);
  event_floor_ = std::max(event_floor_, seq);
  if (next_event_seq_ != 0)
    next_event_seq_ = std::max(next_event_seq_, seq + 1);
}

uint64_t store::last_event_seq() {
  auto& m = st_->max_event;
  return with(m, path_, [&] {
    return m.step() ? static_cast<uint64_t>(m.i64(0)) : uint64_t{0};
  });
}

std::vector<committed_event> store::take_committed_events() {
  std::vector<committed_event> out;
  out.swap(committed_events_);
  return out;
}

std::vector<settlement> store::take_settlements() {
  std::vector<settlement> out;
  out.swap(committed_settlements_);
  return out;
}

void store::begin_submission(const std::string& source,
                             on_conflict conflict) {
  sub_ = std::make_unique<submission>();
  sub_->source = source;
  sub_->conflict = conflict;
  sub_->own_tx = !in_tx_;
  if (sub_->own_tx)
    begin();
  sub_->ts = tx_time();
}

void store::begin_staged_submission(int64_t submission_id,
                                    const std::string& source,
                                    on_conflict conflict) {
  if (in_tx_)
    throw std::logic_error("a staged submission commits its own parts: "
                           "begin it outside a transaction");
  sub_ = std::make_unique<submission>();
  sub_->source = source;
  sub_->conflict = conflict;
  sub_->own_tx = true;
  sub_->staged_by = submission_id;
}

submit_report store::submit_part(const std::vector<task>& tasks,
                                 const std::vector<type_definition>& types,
                                 const std::vector<std::string>& hashes,
                                 const std::vector<int64_t>& seqs) {
  submit_report rep;
  if (!sub_ || sub_->refused) {
    rep.error = sub_ ? sub_->error : "no submission in progress";
    return rep;
  }
  auto& sub = *sub_;
  // A staged submission commits each part on its own, and lets its write
  // lock go at once on an error.
  if (sub.staged_by != 0) {
    begin();
    sub.ts = tx_time();
    try {
      return submit_part_body(tasks, types, hashes, seqs);
    } catch (...) {
      if (in_tx_)
        rollback();
      throw;
    }
  }
  return submit_part_body(tasks, types, hashes, seqs);
}

submit_report store::submit_part_body(const std::vector<task>& tasks,
                                      const std::vector<type_definition>& types,
                                      const std::vector<std::string>& hashes,
                                      const std::vector<int64_t>& seqs) {
  submit_report rep;
  auto& sub = *sub_;
  // The definitions given, and those of the built-in types named by tasks
  // without a fingerprint (this release's built-ins may be newer than the
  // store's).
  auto all = types;
  for (auto& t : tasks)
    if (t.type_fingerprint.empty())
      if (auto* bt = type_registry::builtin_types().find(t.type))
        if (!sub.stored_types.count(bt->fingerprint))
          all.push_back(type_definition{bt->fingerprint, bt->name,
                                        bt->canonical});
  store_types(all);
  for (auto& d : all)
    sub.stored_types.insert(d.fingerprint);
  for (size_t i = 0; i < tasks.size(); ++i)
    if (!submit_one(tasks[i],
                    i < hashes.size() ? hashes[i] : content_hash(tasks[i]),
                    i < seqs.size() ? seqs[i] : 0, rep))
      break;
  if (sub.staged_by != 0 && !sub.refused)
    commit();
  return rep;
}

submit_counts store::end_submission(bool keep) {
  submit_counts out;
  if (!sub_) {
    out.error = "no submission in progress";
    return out;
  }
  auto sub = std::move(sub_);
  if (sub->refused) {
    out.error = sub->error;
    return out;
  }
  if (!keep) {
    if (sub->own_tx && in_tx_)
      rollback();
    for (auto& fp : sub->stored_types)
      types_.erase(fp);
    out.error = "abandoned";
    return out;
  }
  if (sub->own_tx && sub->staged_by == 0)
    commit();
  return sub->counts;
}

void store::stage_outcome(int64_t task_seq, const std::string& task_id,
                          const char* event, const std::string& detail,
                          const std::string& replacement) {
  auto& s = st_->stage_outcome;
  s.bind(1, sub_->staged_by).bind(2, task_seq).bind(3, task_id);
  s.bind(4, std::string(event)).bind(5, detail).bind(6, replacement);
  with(s, path_, [&] { return s.step(); });
}

std::string store::staged_hash(int64_t task_seq) {
  stmt s(db_, "SELECT json_extract(replacement, '$.hash') FROM "
              "staged_outcomes WHERE submission = ?1 AND task_seq = ?2 AND "
              "replacement IS NOT NULL ORDER BY id DESC LIMIT 1",
         path_);
  s.bind(1, sub_->staged_by).bind(2, task_seq);
  return with(s, path_, [&] { return s.step() ? s.text(0) : std::string(); });
}

void store::publish_staged(int64_t submission, const std::string& source) {
  auto_tx tx(*this);
  // First task_submitted for each task it put in (in seq order, as one
  // file's submission numbers them), then its other outcomes in the order
  // it met them: an outcome about a task it put in comes after that
  // task's task_submitted.
  if (!source.empty()) {
    stmt added(db_, "SELECT seq, id FROM tasks WHERE staged_by = ?1 AND "
                    "state = 'staged' ORDER BY seq",
               path_);
    added.bind(1, submission);
    with(added, path_, [&] {
      while (added.step())
        add_event(make_event("task_submitted", added.text(1), -1, source),
                  added.i64(0));
      return 0;
    });
  }
  stmt outcomes(db_, "SELECT task_seq, task_id, event, detail, "
                     "IFNULL(replacement, '') FROM staged_outcomes WHERE "
                     "submission = ?1 ORDER BY id",
                path_);
  outcomes.bind(1, submission);
  with(outcomes, path_, [&] {
    while (outcomes.step()) {
      auto seq = outcomes.i64(0);
      auto replacement = outcomes.text(4);
      if (!replacement.empty()) {
        auto c = nlohmann::json::parse(replacement);
        auto& r = st_->replace;
        r.bind(1, seq).bind(2, c.at("type").get<std::string>());
        r.bind(3, c.at("input").get<std::string>());
        r.bind(4, c.at("max_tokens").get<int64_t>());
        r.bind(5, c.at("vars").get<std::string>());
        r.bind(6, c.at("model").get<std::string>());
        r.bind(7, c.at("fingerprint").get<std::string>());
        r.bind(8, c.at("hash").get<std::string>()).bind(9, tx_time());
        r.bind(10, c.at("priority").get<int64_t>());
        r.bind(11, c.at("tags").get<std::string>());
        r.bind(12, c.at("fallback_models").get<std::string>());
        with(r, path_, [&] { return r.step(); });
      }
      if (!source.empty())
        add_event(make_event(outcomes.text(2), outcomes.text(1), -1,
                             outcomes.text(3)),
                  seq);
    }
    return 0;
  });
  end_staging(submission, "UPDATE tasks SET state = 'pending', staged_by = "
                          "NULL WHERE staged_by = ?1 AND state = 'staged'");
  tx.commit();
}

void store::drop_staged(int64_t submission) {
  auto_tx tx(*this);
  end_staging(submission, "DELETE FROM tasks WHERE staged_by = ?1 AND "
                          "state = 'staged'");
  tx.commit();
}

void store::end_staging(int64_t submission, const char* new_rows_sql) {
  stmt new_rows(db_, new_rows_sql, path_);
  stmt release(db_, "UPDATE tasks SET staged_by = NULL WHERE staged_by = ?1",
               path_);
  stmt forget(db_, "DELETE FROM staged_outcomes WHERE submission = ?1",
              path_);
  for (auto* q : {&new_rows, &release, &forget}) {
    q->bind(1, submission);
    with(*q, path_, [&] { return q->step(); });
  }
}

int64_t store::open_submission(const std::string& source, int64_t owner_pid,
                               const std::string& owner_start) {
  auto_tx tx(*this);
  stmt s(db_, "INSERT INTO submissions(source, state, owner_pid, "
              "owner_start, started_at) VALUES(?1, 'open', ?2, ?3, ?4)",
         path_);
  s.bind(1, source).bind(2, owner_pid).bind(3, owner_start);
  s.bind(4, tx_time());
  with(s, path_, [&] { return s.step(); });
  auto id = sqlite3_last_insert_rowid(db_);
  tx.commit();
  return id;
}

void store::commit_submission(int64_t id) {
  auto_tx tx(*this);
  stmt s(db_, "UPDATE submissions SET state = 'committed' WHERE id = ?1 "
              "AND state = 'open'",
         path_);
  s.bind(1, id);
  with(s, path_, [&] { return s.step(); });
  if (sqlite3_changes(db_) != 1)
    throw store_error("database " + path_ + ": submission " +
                        std::to_string(id) + " is no longer open (a "
                        "recovery took it as abandoned); nothing of it "
                        "was kept",
                      false);
  tx.commit();
}

bool store::claim_submission(int64_t id, const std::string& from,
                             const std::string& to) {
  auto_tx tx(*this);
  stmt s(db_, "UPDATE submissions SET state = ?3 WHERE id = ?1 AND "
              "state = ?2",
         path_);
  s.bind(1, id).bind(2, from).bind(3, to);
  with(s, path_, [&] { return s.step(); });
  bool claimed = sqlite3_changes(db_) == 1;
  tx.commit();
  return claimed;
}

std::string store::submission_state(int64_t id) {
  stmt s(db_, "SELECT state FROM submissions WHERE id = ?1", path_);
  s.bind(1, id);
  return with(s, path_, [&] { return s.step() ? s.text(0) : std::string(); });
}

std::vector<int64_t> store::staged_submissions() {
  stmt s(db_, "SELECT staged_by FROM tasks WHERE staged_by IS NOT NULL "
              "UNION SELECT submission FROM staged_outcomes",
         path_);
  return with(s, path_, [&] {
    std::vector<int64_t> out;
    while (s.step())
      out.push_back(s.i64(0));
    return out;
  });
}

void store::forget_submission(int64_t id) {
  auto_tx tx(*this);
  stmt s(db_, "DELETE FROM submissions WHERE id = ?1", path_);
  s.bind(1, id);
  with(s, path_, [&] { return s.step(); });
  tx.commit();
}

std::vector<store::submission_record> store::submissions() {
  stmt s(db_, "SELECT id, source, state, owner_pid, owner_start FROM "
              "submissions ORDER BY id",
         path_);
  return with(s, path_, [&] {
    std::vector<submission_record> out;
    while (s.step())
      out.push_back({s.i64(0), s.text(1), s.text(2), s.i64(3), s.text(4)});
    return out;
  });
}

bool store::submit_one(const task& t, const std::string& hash, int64_t seq,
                       submit_report& rep) {
  auto& sub = *sub_;
  auto index = sub.next_index++;
  // A refusal undoes the whole submission, types stored by it included: a
  // definition read in this transaction is not known to be stored.
  auto refuse = [&](std::string why) {
    if (sub.own_tx)
      rollback();
    for (auto& fp : sub.stored_types)
      types_.erase(fp);
    rep = submit_report{};
    rep.error = why;
    rep.failed_index = index;
    sub.refused = true;
    sub.error = std::move(why);
    return false;
  };
  // Staged, an event (and a replacement's content) waits for publishing.
  auto event = [&](const char* name, const std::string& id,
                   const std::string& detail, int64_t seq,
                   const std::string& replacement = {}) {
    if (sub.staged_by != 0)
      stage_outcome(seq, id, name, detail, replacement);
    else if (!sub.source.empty())
      add_event(make_event(name, id, -1, detail), seq);
  };
  if (!find_type(fingerprint_of(t)))
    return refuse("task " + t.id + ": type \"" + t.type +
                  "\" has no stored definition (fingerprint \"" +
                  fingerprint_of(t) + "\")");
  // The stored task with the same key, else with the same id (a task an
  // earlier release keyed by its content): its content decides.
  struct found_row {
    int64_t seq = 0;
    std::string id, hash, state;
    int64_t staged_by = 0;
  } row;
  auto look = [&](stmt& q, const std::string& value) {
    q.bind(1, value);
    return with(q, path_, [&] {
      if (!q.step())
        return false;
      row = found_row{q.i64(0), q.text(1), q.text(2), q.text(3), q.i64(4)};
      return true;
    });
  };
  auto& s = st_->insert_task;
  s.bind(1, t.id).bind(2, t.type).bind(3, t.input).bind(4, t.idempotency_key);
  s.bind(5, static_cast<int64_t>(t.max_tokens)).bind(6, sub.ts);
  s.bind(7, vars_json(t.vars)).bind(8, t.model).bind(9, fingerprint_of(t));
  s.bind(10, hash).bind(11, t.priority).bind(12, tags_json(t.tags));
  s.bind(13, tags_json(t.fallback_models)).bind(14, seq);
  s.bind(15, sub.staged_by);
  with(s, path_, [&] { return s.step(); });
  if (sqlite3_changes(db_) == 1) {
    ++sub.counts.inserted;
    if (sub.keep_ids)
      rep.inserted.push_back(t.id);
    // Staged, its task_submitted comes from its row at publishing.
    if (sub.staged_by == 0)
      event("task_submitted", t.id, sub.source,
            sqlite3_last_insert_rowid(db_));
    return true;
  }
  if (!look(st_->by_key, t.idempotency_key) && !look(st_->by_id, t.id))
    return refuse("task " + t.id + (seq != 0 ? ": its seq " +
                                                 std::to_string(seq) +
                                                 " is another task's"
                                           : ": could not be stored"));
  if (row.staged_by != 0 && row.staged_by != sub.staged_by)
    return refuse("task " + row.id + " is being submitted by another "
                  "submission (" + std::to_string(row.staged_by) +
                  ") that has not ended");
  // Held by this submission: the content it will have is its last staged
  // replacement's.
  if (row.staged_by != 0)
    if (auto staged = staged_hash(row.seq); !staged.empty())
      row.hash = staged;
  if (row.hash == hash) {
    ++sub.counts.duplicates;
    if (sub.keep_ids)
      rep.duplicates.push_back(t.id);
    event("task_duplicate", t.id, "already submitted; not run again",
          row.id == t.id ? row.seq : 0);
    return true;
  }
  // The same key (or id) with other content: never a silent merge.
  if (sub.conflict == on_conflict::skip) {
    ++sub.counts.conflicts_skipped;
    if (sub.keep_ids)
      rep.conflicts_skipped.push_back(row.id);
    event("task_duplicate", row.id,
          "submitted again with other content; the stored task kept "
          "(--on-conflict skip)",
          row.seq);
    return true;
  }
  if (sub.conflict == on_conflict::error)
    return refuse("task " + t.id + " was submitted before with other "
                                   "content (input, vars, model, "
                                   "fallback_models, max_tokens or its "
                                   "type's definition): "
                                   "keep it with --on-conflict skip, or run "
                                   "the new one with --on-conflict replace");
  if (row.state == task_state::running)
    return refuse("task " + row.id + " is running: it can be replaced once "
                                     "it is not");
  if (sub.staged_by != 0) {
    // Held as it is (no run takes it) until the submission is published.
    stmt hold(db_, "UPDATE tasks SET staged_by = ?2 WHERE seq = ?1", path_);
    hold.bind(1, row.seq).bind(2, sub.staged_by);
    with(hold, path_, [&] { return hold.step(); });
    ++sub.counts.replaced;
    if (sub.keep_ids)
      rep.replaced.push_back(row.id);
    nlohmann::json content = {
      {"type", t.type}, {"input", t.input},
      {"max_tokens", t.max_tokens}, {"vars", vars_json(t.vars)},
      {"model", t.model}, {"fingerprint", fingerprint_of(t)},
      {"hash", hash}, {"priority", t.priority},
      {"tags", tags_json(t.tags)},
      {"fallback_models", tags_json(t.fallback_models)}};
    event("task_replaced", row.id,
          "submitted again with other content from " + sub.source +
            ": replaced, to run again",
          row.seq, content.dump());
    return true;
  }
  auto& r = st_->replace;
  r.bind(1, row.seq).bind(2, t.type).bind(3, t.input);
  r.bind(4, static_cast<int64_t>(t.max_tokens)).bind(5, vars_json(t.vars));
  r.bind(6, t.model).bind(7, fingerprint_of(t)).bind(8, hash);
  r.bind(9, sub.ts).bind(10, t.priority).bind(11, tags_json(t.tags));
  r.bind(12, tags_json(t.fallback_models));
  with(r, path_, [&] { return r.step(); });
  ++sub.counts.replaced;
  if (sub.keep_ids)
    rep.replaced.push_back(row.id);
  event("task_replaced", row.id,
        "submitted again with other content from " + sub.source +
          ": replaced, to run again",
        row.seq);
  return true;
}

submit_report store::submit(const std::vector<task>& tasks) {
  return submit(tasks, std::string{});
}

submit_report store::submit(const std::vector<task>& tasks,
                            const std::string& source,
                            const std::vector<type_definition>& types,
                            on_conflict conflict) {
  begin_submission(source, conflict);
  sub_->keep_ids = true;
  auto rep = submit_part(tasks, types);
  auto counts = end_submission();
  if (rep.error.empty() && !counts.error.empty())
    rep.error = counts.error;
  return rep;
}

// A running task that no open provider batch holds (those keep running
// across restarts: their batch is resumed, DESIGN.md section 13).
#define BGAGENT_NOT_IN_OPEN_BATCH                                             \
  "(batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE "      \
  "state NOT IN ('completed', 'failed', 'expired', 'cancelled')))"

run_info store::open_run(uint64_t token_limit, double cost_limit) {
  return open_run(token_limit, cost_limit, "run", "");
}

// Tasks left `running` were interrupted by a crash: their calls were
// abandoned (charged at their reservations: the provider may have billed
// them), and they go back to pending, their attempt already counted.
// `not_in_open_batch`: SQL that keeps the members of open provider batches
// out, ?2 being `open_batches` (a JSON array) where it names them.
std::vector<std::string> store::requeue_interrupted(
  const std::string& ts, const std::string& not_in_open_batch,
  const std::string& open_batches) {
  std::vector<std::string> interrupted;
  std::vector<task_row> rows;
  stmt sel(db_, ("SELECT id, state, attempts, reservation_id, "
                 "reserved_tokens, reserved_cost, IFNULL(provider, ''), "
                 "IFNULL(model, '') FROM tasks WHERE state = 'running' "
                 "AND " + not_in_open_batch + " ORDER BY seq")
                  .c_str(),
           path_);
  if (!open_batches.empty())
    sel.bind(2, open_batches);
  with(sel, path_, [&] {
    while (sel.step()) {
      task_row r;
      r.id = sel.text(0);
      read_row_columns(sel, r);
      rows.push_back(std::move(r));
    }
    return 0;
  });
  for (auto& r : rows) {
    charge_abandoned(r, "the process stopped with the call in flight",
                     false);
    add_event(make_event("task_interrupted", r.id,
                         static_cast<int32_t>(r.attempts),
                         "was running when an earlier process stopped; "
                         "back to pending"));
    interrupted.push_back(r.id);
  }
  stmt upd(db_, ("UPDATE tasks SET state = 'pending', updated_at = ?1, "
                 "reservation_id = 0, reserved_tokens = 0, "
                 "reserved_cost = 0 WHERE state = 'running' AND " +
                 not_in_open_batch)
                  .c_str(),
           path_);
  upd.bind(1, ts);
  if (!open_batches.empty())
    upd.bind(2, open_batches);
  with(upd, path_, [&] { return upd.step(); });
  return interrupted;
}

std::vector<std::string> store::open_batch_ids() {
  stmt s(db_, "SELECT id FROM batches WHERE state NOT IN ('completed', "
              "'failed', 'expired', 'cancelled') ORDER BY id",
         path_);
  return with(s, path_, [&] { return first_column_texts(s); });
}

run_info store::open_run_shard(int64_t run_id,
                               const std::vector<std::string>& open_batches,
                               const std::string& period,
                               const std::string& period_start) {
  auto_tx tx(*this);
  run_info info;
  info.id = run_id;
  run_id_ = run_id;
  info.interrupted = requeue_interrupted(
    now_rfc3339(),
    "(batch_id IS NULL OR batch_id NOT IN (SELECT value FROM "
    "json_each(?2)))",
    nlohmann::json(open_batches).dump());
  if (period == "run")
    ledger_totals(run_id, info.tokens_used, info.cost_used);
  else
    ledger_totals_since(period_start, info.tokens_used, info.cost_used);
  tx.commit();
  return info;
}

run_info store::open_run(uint64_t token_limit, double cost_limit,
                         const std::string& period,
                         const std::string& period_start) {
  auto_tx tx(*this);
  run_info info;
  auto ts = now_rfc3339();
  {
    stmt last(db_, "SELECT id, state, started_at FROM runs ORDER BY id DESC "
                   "LIMIT 1",
              path_);
    if (last.step() && last.text(1) != "finished") {
      info.id = last.i64(0);
      info.started_at = last.text(2);
      info.resumed = true;
    }
  }
  if (info.id == 0) {
    stmt ins(db_, "INSERT INTO runs(state, started_at, token_limit, "
                  "cost_limit, budget_period) VALUES('running', ?1, ?2, ?3, "
                  "?4)",
             path_);
    ins.bind(1, ts).bind(2, static_cast<int64_t>(token_limit)).bind(3, cost_limit);
    ins.bind(4, period);
    with(ins, path_, [&] { return ins.step(); });
    info.id = sqlite3_last_insert_rowid(db_);
    info.started_at = ts;
  } else {
    stmt upd(db_, "UPDATE runs SET state = 'running', finished_at = NULL, "
                  "token_limit = ?2, cost_limit = ?3, budget_period = ?4 "
                  "WHERE id = ?1",
             path_);
    upd.bind(1, info.id).bind(2, static_cast<int64_t>(token_limit)).bind(3, cost_limit);
    upd.bind(4, period);
    with(upd, path_, [&] { return upd.step(); });
  }
  run_id_ = info.id;
  info.state = "running";
  info.interrupted = requeue_interrupted(ts, BGAGENT_NOT_IN_OPEN_BATCH, {});
  if (period == "run")
    ledger_totals(info.id, info.tokens_used, info.cost_used);
  else
    ledger_totals_since(period_start, info.tokens_used, info.cost_used);
  {
    // The last run's circuits: this run finds out for itself.
    stmt forget(db_, "DELETE FROM meta WHERE key LIKE 'circuit %'", path_);
    with(forget, path_, [&] { return forget.step(); });
  }
  tx.commit();
  return info;
}

namespace {

// Tokens and dollars: the sums `sums` selects plus the ledger rows after
// the mark that `tail` selects (each with one ?1).
#define BGAGENT_LEDGER_SUM(sums, tail)                                        \
  "SELECT COALESCE(SUM(t), 0), COALESCE(SUM(c), 0) FROM (SELECT tokens AS "   \
  "t, cost AS c FROM " sums " UNION ALL SELECT prompt_tokens + "             \
  "completion_tokens, cost_usd FROM usage_ledger WHERE " BGAGENT_LEDGER_TAIL \
  " AND " tail ")"

void read_totals(stmt& sum, const std::string& path, uint64_t& tokens,
                 double& cost) {
  with(sum, path, [&] {
    if (sum.step()) {
      tokens = static_cast<uint64_t>(sum.i64(0));
      cost = sum.dbl(1);
    }
    return 0;
  });
}

// Whether `ts` (RFC 3339, UTC) is the start of an hour: the hours' sums
// then count exactly the rows at or after it.
bool starts_an_hour(const std::string& ts) {
  if (ts.size() < 20 || ts.compare(13, 6, ":00:00") != 0)
    return false;
  for (size_t i = 19; i < ts.size(); ++i)
    if (ts[i] != '.' && ts[i] != '0' && ts[i] != 'Z')
      return false;
  return true;
}

} // namespace

void store::ledger_totals_since(const std::string& ts, uint64_t& tokens,
                                double& cost) {
  // Budget periods start on the hour; any other time reads every row.
  if (!starts_an_hour(ts)) {
    stmt sum(db_, "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), "
                  "0), COALESCE(SUM(cost_usd), 0) FROM usage_ledger WHERE "
                  "ts >= ?1",
             path_);
    sum.bind(1, ts);
    read_totals(sum, path_, tokens, cost);
    return;
  }
  stmt sum(db_,
           BGAGENT_LEDGER_SUM("ledger_hours WHERE hour >= substr(?1, 1, 13)",
                              "ts >= ?1"),
           path_);
  sum.bind(1, ts);
  read_totals(sum, path_, tokens, cost);
}

void store::ledger_totals(int64_t run_id, uint64_t& tokens, double& cost) {
  stmt sum(db_,
           BGAGENT_LEDGER_SUM("ledger_runs WHERE run_id = ?1", "run_id = ?1"),
           path_);
  sum.bind(1, run_id);
  read_totals(sum, path_, tokens, cost);
}

void store::finish_run(int64_t run_id, const std::string& state) {
  stmt upd(db_, "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
           path_);
  upd.bind(1, run_id).bind(2, state).bind(3, now_rfc3339());
  with(upd, path_, [&] { return upd.step(); });
}

void store::set_limits(int64_t run_id, uint64_t token_limit,
                       double cost_limit) {
  stmt upd(db_, "UPDATE runs SET token_limit = ?2, cost_limit = ?3 WHERE "
                "id = ?1",
           path_);
  upd.bind(1, run_id).bind(2, static_cast<int64_t>(token_limit)).bind(3, cost_limit);
  with(upd, path_, [&] { return upd.step(); });
}

template <class Reads>
auto store::in_one_snapshot(Reads reads) -> decltype(reads()) {
  if (in_tx_ || read_only_)
    return reads();
  exec("BEGIN");
  try {
    auto out = reads();
    exec("COMMIT");
    return out;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<task> store::fetch_runnable(const fetch_cursor& after,
                                        uint32_t limit) {
  // Its two reads agree: else a task made runnable at the cursor's
  // priority between them would be skipped until the cursor resets.
  return in_one_snapshot([&] { return fetch_reads(after, limit); });
}

std::vector<task> store::fetch_reads(const fetch_cursor& after,
                                     uint32_t limit) {
  std::vector<task> out;
  auto& same = st_->fetch_same;
  same.bind(1, after.priority).bind(2, after.seq);
  same.bind(3, static_cast<int64_t>(limit));
  with(same, path_, [&] {
    while (same.step())
      out.push_back(read_task(same));
    return 0;
  });
  if (out.size() < limit) {
    auto& lower = st_->fetch_lower;
    lower.bind(1, after.priority);
    lower.bind(2, static_cast<int64_t>(limit - out.size()));
    with(lower, path_, [&] {
      while (lower.step())
        out.push_back(read_task(lower));
      return 0;
    });
  }
  for (auto& t : out)
    resolve(t);
  return out;
}

const store::resolved_type* store::find_type(const std::string& fp) {
  auto i = types_.find(fp);
  if (i != types_.end())
    return i->second.get();
  stmt q(db_, "SELECT definition FROM task_types WHERE fingerprint = ?1",
         path_);
  q.bind(1, fp);
  std::string text;
  with(q, path_, [&] {
    if (q.step())
      text = q.text(0);
    return 0;
  });
  if (text.empty())
    return nullptr;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object())
    return nullptr;
  auto r = std::make_unique<resolved_type>();
  r->raw = j.value("raw", false);
  r->system = j.value("system", "");
  r->prompt = j.value("prompt", "");
  if (j.contains("schema") && !j["schema"].is_null())
    r->schema = j["schema"].dump();
  r->model = j.value("model", "");
  if (j.contains("fallback_models") && j["fallback_models"].is_array())
    for (auto& m : j["fallback_models"])
      if (m.is_string())
        r->fallback_models.push_back(m.get<std::string>());
  r->temperature = j.value("temperature", 0.0);
  r->max_tokens = j.value("max_tokens", 0u);
  return (types_[fp] = std::move(r)).get();
}

// The request of a task, from its type's stored definition and its vars.
// A task whose definition cannot be used is left without system and prompt:
// its worker then fails it for good, naming the type.
void store::resolve(task& t) {
  auto* r = find_type(t.type_fingerprint);
  if (!r)
    return;
  if (r->raw) {
    // An OpenAI Batch line: its body, checked at submit, is the request;
    // a response_format's JSON Schema is what its answer must satisfy.
    t.raw = true;
    auto body = nlohmann::json::parse(t.input, nullptr, false);
    if (body.is_object())
      t.schema = chat_body_schema(body);
    return;
  }
  if (t.max_tokens == 0)
    t.max_tokens = r->max_tokens;
  t.schema = r->schema;
  t.type_model = r->model;
  t.type_fallbacks = r->fallback_models;
  t.temperature = r->temperature;
  try {
    t.system = render(r->system, t.input, t.vars);
    t.prompt = render(r->prompt, t.input, t.vars);
  } catch (const std::out_of_range&) {
    t.system.clear();
    t.prompt.clear();
  }
}

std::string store::content_hash(const task& t) {
  // JSON, not separators: no input can pass for vars. Written by hand when
  // every text is well-formed UTF-8 (always, for tasks read from JSON):
  // the same bytes as nlohmann's dump below, at a fraction of its cost
  // (it was a third of `submit`'s main thread).
  const auto& fp = fingerprint_of(t);
  bool valid = valid_utf8(fp) && valid_utf8(t.model) && valid_utf8(t.input);
  for (auto& kv : t.vars)
    valid = valid && valid_utf8(kv.first) && valid_utf8(kv.second);
  for (auto& m : t.fallback_models)
    valid = valid && valid_utf8(m);
  if (valid) {
    std::string s;
    s.reserve(fp.size() + t.model.size() + t.input.size() + 64);
    s += '[';
    append_json_string(s, fp);
    s += ',';
    append_json_string(s, t.model);
    s += ',';
    s += std::to_string(t.max_tokens);
    s += ',';
    append_json_string(s, t.input);
    s += ',';
    s += '{'; // an object, its keys in order (std::map, as nlohmann's)
    bool first = true;
    for (auto& kv : t.vars) {
      if (!first)
        s += ',';
      first = false;
      append_json_string(s, kv.first);
      s += ':';
      append_json_string(s, kv.second);
    }
    s += '}';
    if (!t.fallback_models.empty()) {
      s += ",[";
      for (size_t i = 0; i < t.fallback_models.size(); ++i) {
        if (i)
          s += ',';
        append_json_string(s, t.fallback_models[i]);
      }
      s += ']';
    }
    s += ']';
    return sha256_hex(s);
  }
  auto content = nlohmann::json::array(
    {fp, t.model, t.max_tokens, t.input, t.vars});
  // Only when given: the hashes of tasks without it stay as they were.
  if (!t.fallback_models.empty())
    content.push_back(t.fallback_models);
  return sha256_hex(content.dump(-1, ' ', false,
                                 nlohmann::json::error_handler_t::replace));
}

void store::add_content_hashes() {
  stmt sel(db_, "SELECT seq, id, type, input, idempotency_key, max_tokens, "
                "attempts, IFNULL(vars, ''), IFNULL(req_model, ''), "
                // read_task's later columns, which a version 3 store has
                // not got yet.
                "type_fingerprint, 0, '', '', '', '', 0 FROM tasks WHERE "
                "content_hash = ''",
           path_);
  stmt upd(db_, "UPDATE tasks SET content_hash = ?2 WHERE seq = ?1", path_);
  std::vector<std::pair<int64_t, std::string>> hashes;
  with(sel, path_, [&] {
    while (sel.step()) {
      auto t = read_task(sel);
      hashes.emplace_back(t.seq, content_hash(t));
    }
    return 0;
  });
  for (auto& [seq, hash] : hashes) {
    upd.bind(1, seq).bind(2, hash);
    with(upd, path_, [&] { return upd.step(); });
  }
}

void store::rekey_response_cache() {
  stmt sel(db_, "SELECT rowid, fingerprint FROM response_cache", path_);
  stmt upd(db_, "UPDATE response_cache SET key = ?2 WHERE rowid = ?1", path_);
  std::vector<std::pair<int64_t, int64_t>> keys;
  with(sel, path_, [&] {
    while (sel.step())
      keys.emplace_back(sel.i64(0), cache_key(sel.text(1)));
    return 0;
  });
  for (auto& [row, key] : keys) {
    upd.bind(1, row).bind(2, key);
    with(upd, path_, [&] { return upd.step(); });
  }
}

void store::store_types(const std::vector<type_definition>& defs) {
  stmt ins(db_, "INSERT OR IGNORE INTO task_types(fingerprint, name, "
                "definition) VALUES(?1, ?2, ?3)",
           path_);
  for (auto& d : defs) {
    ins.bind(1, d.fingerprint).bind(2, d.name).bind(3, d.definition);
    with(ins, path_, [&] { return ins.step(); });
  }
}

void store::store_builtin_types() {
  std::vector<type_definition> defs;
  stmt upd(db_, "UPDATE tasks SET type_fingerprint = ?1 WHERE type = ?2 AND "
                "type_fingerprint = ''",
           path_);
  for (auto* t : type_registry::builtin_types().all()) {
    defs.push_back(type_definition{t->fingerprint, t->name, t->canonical});
    upd.bind(1, t->fingerprint).bind(2, t->name);
    with(upd, path_, [&] { return upd.step(); });
  }
  store_types(defs);
}

bool store::read_row(const std::string& id, task_row& row) {
  auto& s = st_->row;
  s.bind(1, id);
  return with(s, path_, [&] {
    if (!s.step())
      return false;
    row.id = id;
    read_row_columns(s, row, 0);
    return true;
  });
}

void store::charge_abandoned(const task_row& row, const std::string& why,
                             bool settle) {
  if (row.state != task_state::running ||
      (row.held.tokens == 0 && row.held.cost <= 0))
    return;
  usage u{row.held.tokens, 0, row.held.cost};
  record_usage(run_id_, row.id, row.attempts, u, row.provider, row.model);
  add_event(make_event("budget_charged", row.id,
                       static_cast<int32_t>(row.attempts),
                       "abandoned call charged at its reservation: " +
                         fmt_charge(u) + " (" + why + ")"));
  if (settle && row.held.id != 0)
    tx_settlements_.push_back(settlement{row.held.id, u});
  tx_charged_[attempt_key(row.id, row.attempts)] = u;
}

void store::settle_stale(const std::string& id, uint32_t attempt,
                         const usage& spent, const std::string& provider,
                         const std::string& model, const std::string& what) {
  auto key = attempt_key(id, attempt);
  auto found = charged_.find(key);
  auto in_tx = tx_charged_.find(key);
  const usage* charged = in_tx != tx_charged_.end() ? &in_tx->second
                         : found != charged_.end()  ? &found->second
                                                    : nullptr;
  auto att = static_cast<int32_t>(attempt);
  if (!charged) {
    // Never charged (its reservation was not stored): charge what the
    // provider says it billed.
    if (is_zero(spent))
      return;
    record_usage(run_id_, id, attempt, spent, provider, model);
    add_event(make_event("budget_charged", id, att,
                         "late " + what + " of a superseded attempt "
                         "charged: " + fmt_charge(spent)));
    return;
  }
  // Charged at its reservation when it was abandoned: only what the
  // provider reports beyond that is charged now.
  usage excess;
  if (spent.total_tokens() > charged->total_tokens())
    excess.prompt_tokens = spent.total_tokens() - charged->total_tokens();
  if (spent.cost_usd > charged->cost_usd)
    excess.cost_usd = spent.cost_usd - charged->cost_usd;
  std::string detail = "late " + what + " of a superseded attempt: " +
                       fmt_charge(spent) +
                       " reported; its reservation was charged when it was "
                       "abandoned (" +
                       fmt_charge(*charged) + ")";
  if (is_zero(excess)) {
    detail += ", which covers it: nothing more charged";
  } else {
    record_usage(run_id_, id, attempt, excess, provider, model);
    detail += "; the excess charged: " + fmt_charge(excess);
  }
  add_event(make_event("budget_charged", id, att, detail));
  if (in_tx != tx_charged_.end())
    tx_charged_.erase(in_tx);
  else
    charged_.erase(found);
}

bool store::mark_running(const std::string& id, uint32_t attempt,
                         const held_reservation& r,
                         const audit_event& started, int64_t seq) {
  auto_tx tx(*this);
  const auto& ts = tx_time();
  auto update = [&](stmt& s, bool at_seq) {
    s.bind(1, id).bind(2, static_cast<int64_t>(attempt)).bind(3, ts);
    s.bind(4, static_cast<int64_t>(r.id));
    s.bind(5, static_cast<int64_t>(r.tokens)).bind(6, r.cost);
    if (at_seq)
      s.bind(7, seq);
    with(s, path_, [&] { return s.step(); });
    return sqlite3_changes(db_) == 1;
  };
  // The common case: no reservation held by an earlier attempt. A seq
  // that names another task (a caller's mistake) finds nothing here and
  // the task by its id below.
  bool done = seq > 0 ? update(st_->running_free_at, true)
                      : update(st_->running_free, false);
  if (!done) {
    task_row row;
    if (!read_row(id, row) || !update(st_->running, false))
      return false;
    seq = 0; // not verified: the event finds its task by id
    // A running attempt superseded by this one: its call was abandoned.
    charge_abandoned(row, "superseded by attempt " + std::to_string(attempt),
                     true);
  }
  if (!started.event.empty())
    add_event(started, seq);
  tx.commit();
  return true;
}

bool store::mark_completed(const std::string& id, uint32_t attempt,
                           const call_outcome& out, const usage& spent,
                           const audit_event& completed,
                           uint64_t reservation, int64_t seq) {
  auto_tx tx(*this);
  auto update = [&](uint64_t held) {
    // By seq (a rowid lookup) when the caller knows it; the id is checked
    // either way, so a seq of another task matches nothing.
    bool at_seq = seq > 0;
    auto& s = at_seq ? st_->completed_at : st_->completed;
    if (at_seq)
      s.bind(14, seq);
    s.bind(1, id).bind(2, static_cast<int64_t>(attempt)).bind(3, out.result);
    s.bind(4, out.provider).bind(5, out.model).bind(6, tx_time());
    s.bind(7, static_cast<int64_t>(spent.prompt_tokens));
    s.bind(8, static_cast<int64_t>(spent.completion_tokens));
    s.bind(9, spent.cost_usd).bind(10, kept_response(out.response));
    s.bind(11, static_cast<int64_t>(held));
    s.bind(12, static_cast<int64_t>(out.cached_tokens));
    s.bind(13, static_cast<int64_t>(out.reasoning_tokens));
    with(s, path_, [&] { return s.step(); });
    return sqlite3_changes(db_) == 1;
  };
  // The common case in one statement: the running attempt holds the
  // reservation the caller named.
  uint64_t held = reservation;
  if (reservation == 0 || !update(reservation)) {
    task_row row;
    bool found = read_row(id, row);
    if (!found || row.state != task_state::running ||
        row.attempts != attempt) {
      // A second report of the attempt that completed was billed once.
      bool duplicate = row.state == task_state::completed &&
                       row.attempts == attempt;
      if (found && !duplicate)
        settle_stale(id, attempt, spent, out.provider, out.model, "result");
      tx.commit();
      return false;
    }
    held = row.held.id;
    seq = 0; // by id now: a seq of another task must not hide this one
    if (!update(0))
      return false;
  }
  auto& l = st_->ledger;
  l.bind(1, run_id_).bind(2, id).bind(3, static_cast<int64_t>(attempt));
  l.bind(4, static_cast<int64_t>(spent.prompt_tokens));
  l.bind(5, static_cast<int64_t>(spent.completion_tokens));
  l.bind(6, spent.cost_usd).bind(7, out.provider).bind(8, out.model);
  const auto& ts = tx_time();
  l.bind(9, ts);
  with(l, path_, [&] { return l.step(); });
  note_ledger_row(run_id_, spent, ts);
  if (held != 0)
    tx_settlements_.push_back(settlement{held, spent});
  if (!out.fingerprint.empty() && out.ok) {
    // One answer per fingerprint, the newest: an older one is replaced
    // (the look finds the key's index page the insert then writes).
    auto key = cache_key(out.fingerprint);
    auto& drop = st_->cache_drop;
    drop.bind(1, key).bind(2, out.fingerprint);
    with(drop, path_, [&] { return drop.step(); });
    auto& put = st_->cache_put;
    put.bind(1, out.fingerprint).bind(2, out.result);
    put.bind(3, kept_response(out.response)).bind(4, out.provider);
    put.bind(5, out.model).bind(6, tx_time()).bind(7, key);
    with(put, path_, [&] { return put.step(); });
    if (cache_filter_)
      cache_filter_->add(out.fingerprint);
  }
  if (!completed.event.empty())
    add_event(completed, seq);
  tx.commit();
  return true;
}

std::shared_ptr<cache_filter> store::response_cache_filter() {
  if (!cache_filter_) {
    std::vector<std::string> stored;
    stmt all(db_, "SELECT fingerprint FROM response_cache", path_);
    with(all, path_, [&] {
      while (all.step())
        stored.push_back(all.text(0));
      return 0;
    });
    cache_filter_ = std::make_shared<cache_filter>(std::move(stored));
  }
  return cache_filter_;
}

std::vector<std::string> store::complete_from_cache(
  const std::vector<std::string>& ids,
  const std::vector<std::string>& fingerprints, const audit_event& each) {
  std::vector<std::string> done;
  // The ones the filter cannot rule out; none: no transaction at all.
  auto filter = response_cache_filter();
  std::vector<size_t> maybe;
  for (size_t i = 0; i < ids.size() && i < fingerprints.size(); ++i)
    if (!fingerprints[i].empty() && filter->may_contain(fingerprints[i]))
      maybe.push_back(i);
  if (maybe.empty())
    return done;
  auto_tx tx(*this);
  auto& get = st_->cache_get;
  auto& upd = st_->cache_complete;
  for (auto i : maybe) {
    get.bind(1, fingerprints[i]).bind(2, cache_key(fingerprints[i]));
    std::string result, response, provider, model;
    bool found = false;
    with(get, path_, [&] {
      if (get.step()) {
        found = true;
        result = get.text(0);
        response = get.text(1);
        provider = get.text(2);
        model = get.text(3);
      }
      return 0;
    });
    if (!found)
      continue;
    upd.bind(1, ids[i]).bind(2, result).bind(3, response);
    upd.bind(4, provider).bind(5, model).bind(6, tx_time());
    with(upd, path_, [&] { return upd.step(); });
    if (sqlite3_changes(db_) != 1)
      continue;
    done.push_back(ids[i]);
    if (!each.event.empty()) {
      auto ev = each;
      ev.task_id = ids[i];
      ev.detail = "answered from the response cache (request " +
                  fingerprints[i].substr(0, 12) + "..., " + model +
                  "): no call, no cost";
      add_event(ev);
    }
  }
  tx.commit();
  return done;
}

bool store::settle_failed(const std::string& id, uint32_t attempt,
                          const usage& spent, const std::string& provider,
                          const std::string& model,
                          const audit_event& failed,
                          const std::string& raw_answer,
                          const std::string& answer_error) {
  auto_tx tx(*this);
  task_row row;
  bool found = read_row(id, row);
  if (!found || row.state != task_state::running || row.attempts != attempt) {
    if (found)
      settle_stale(id, attempt, spent, provider, model, "failure");
    tx.commit();
    return false;
  }
  auto& s = st_->settle;
  s.bind(1, id).bind(2, static_cast<int64_t>(attempt)).bind(3, tx_time());
  with(s, path_, [&] { return s.step(); });
  if (!is_zero(spent))
    record_usage(run_id_, id, attempt, spent, provider, model);
  if (!raw_answer.empty()) {
    // Kept for the repair turn, and with the task if it ends quarantined.
    auto& a = st_->raw_answer;
    a.bind(1, id).bind(2, utf8_clip(sanitize_utf8(raw_answer),
                                 max_repair_answer_chars));
    a.bind(3, utf8_clip(sanitize_utf8(answer_error),
                                 max_repair_error_chars));
    with(a, path_, [&] { return a.step(); });
  }
  if (row.held.id != 0)
    tx_settlements_.push_back(settlement{row.held.id, spent});
  if (!failed.event.empty())
    add_event(failed);
  tx.commit();
  return true;
}

namespace {

// Both failure transitions bind (id, attempt, error, now).
bool mark_failed(sqlite3* db, stmt& s, const std::string& path,
                 const std::string& id, uint32_t attempt,
                 const std::string& error, const std::string& ts) {
  s.bind(1, id).bind(2, static_cast<int64_t>(attempt)).bind(3, error);
  s.bind(4, ts);
  with(s, path, [&] { return s.step(); });
  return sqlite3_changes(db) == 1;
}

} // namespace

bool store::mark_retry_wait(const std::string& id, uint32_t attempt,
                            const std::string& error,
                            const audit_event& scheduled, bool not_counted) {
  auto_tx tx(*this);
  if (!end_attempt(false, id, attempt, error, scheduled))
    return false;
  if (not_counted) {
    stmt s(db_, "UPDATE tasks SET free_attempts = free_attempts + 1 WHERE "
                "id = ?1",
           path_);
    s.bind(1, id);
    with(s, path_, [&] { return s.step(); });
  }
  tx.commit();
  return true;
}

bool store::mark_quarantined(const std::string& id, uint32_t attempt,
                             const std::string& error,
                             const audit_event& quarantined) {
  return end_attempt(true, id, attempt, error, quarantined);
}

bool store::end_attempt(bool quarantine, const std::string& id,
                        uint32_t attempt, const std::string& error,
                        const audit_event& ev) {
  auto_tx tx(*this);
  task_row row;
  if (!read_row(id, row) ||
      !mark_failed(db_, quarantine ? st_->quarantined : st_->retry_wait, path_,
                   id, attempt, error, tx_time()))
    return false;
  charge_abandoned(row, "its attempt ended without a result: " + error, true);
  if (!ev.event.empty())
    add_event(ev);
  tx.commit();
  return true;
}

bool store::mark_pending(const std::string& id, uint32_t attempt,
                         const audit_event& released) {
  auto_tx tx(*this);
  task_row row;
  if (!read_row(id, row))
    return false;
  // The attempt that was marked running did not happen: give it back.
  auto& s = st_->pending;
  s.bind(1, id).bind(2, static_cast<int64_t>(attempt) - 1).bind(3, tx_time());
  with(s, path_, [&] { return s.step(); });
  if (sqlite3_changes(db_) != 1)
    return false;
  charge_abandoned(row, "released back to pending", true);
  if (!released.event.empty())
    add_event(released);
  tx.commit();
  return true;
}

void store::record_usage(int64_t run_id, const std::string& task_id,
                         uint32_t attempt, const usage& u,
                         const std::string& provider,
                         const std::string& model) {
  auto& l = st_->ledger;
  l.bind(1, run_id).bind(2, task_id).bind(3, static_cast<int64_t>(attempt));
  l.bind(4, static_cast<int64_t>(u.prompt_tokens));
  l.bind(5, static_cast<int64_t>(u.completion_tokens));
  // One reading of the clock for the row and its hour's sum (outside a
  // transaction each tx_time() reads it again).
  const auto ts = tx_time();
  l.bind(6, u.cost_usd).bind(7, provider).bind(8, model).bind(9, ts);
  with(l, path_, [&] { return l.step(); });
  note_ledger_row(run_id, u, ts);
  auto& t = st_->task_usage;
  t.bind(1, task_id).bind(2, static_cast<int64_t>(u.prompt_tokens));
  t.bind(3, static_cast<int64_t>(u.completion_tokens)).bind(4, u.cost_usd);
  t.bind(5, provider).bind(6, model);
  with(t, path_, [&] { return t.step(); });
}

state_counts store::counts() {
  state_counts c;
  stmt s(db_, "SELECT state, COUNT(*) FROM tasks GROUP BY state", path_);
  with(s, path_, [&] {
    while (s.step()) {
      auto st = s.text(0);
      auto n = static_cast<uint64_t>(s.i64(1));
      set_count(c, st, n);
    }
    return 0;
  });
  return c;
}

uint64_t store::count_not_cancelled() {
  // One statement, one snapshot. COUNT(*) reads the smallest index; the
  // cancelled come from theirs.
  stmt s(db_, "SELECT (SELECT COUNT(*) FROM tasks) - (SELECT COUNT(*) FROM "
              "tasks WHERE state = 'cancelled') - (SELECT COUNT(*) FROM "
              "tasks WHERE staged_by IS NOT NULL AND state = 'staged')",
         path_);
  return with(s, path_, [&] {
    return s.step() ? static_cast<uint64_t>(std::max<int64_t>(0, s.i64(0)))
                    : uint64_t{0};
  });
}

status_report store::status() {
  return status(true);
}

status_report store::run_status() {
  return status(false);
}

status_report store::status(bool whole) {
  // The counts, the spending and the run must agree.
  return in_one_snapshot([&] { return status_reads(whole); });
}

status_report store::status_reads(bool whole) {
  status_report rep;
  if (whole) {
    rep.tasks = counts();
    rep.open_batches = batches(true);
  }
  stmt last(db_, "SELECT id, state, started_at, token_limit, cost_limit, "
                 "budget_period FROM runs ORDER BY id DESC LIMIT 1",
            path_);
  with(last, path_, [&] {
    if (last.step()) {
      rep.run.id = last.i64(0);
      rep.run.state = last.text(1);
      rep.run.started_at = last.text(2);
      rep.budget.tokens_limit = static_cast<uint64_t>(last.i64(3));
      rep.budget.cost_limit = last.dbl(4);
      rep.budget_period = last.text(5);
    }
    return 0;
  });
  // A calendar period's spending is the ledger's since the period began
  // (now), whichever runs spent it.
  if (!whole)
    return rep;
  auto period = parse_budget_period(rep.budget_period);
  if (rep.run.id != 0 && period && *period != budget_period::run)
    ledger_totals_since(
      rfc3339_utc(bgagent::period_start(*period, std::time(nullptr))),
      rep.budget.tokens_used, rep.budget.cost_used);
  else if (rep.run.id != 0)
    ledger_totals(rep.run.id, rep.budget.tokens_used, rep.budget.cost_used);
  if (rep.run.state == "running") {
    stmt c(db_, "SELECT substr(key, 9), value FROM meta WHERE key LIKE "
                "'circuit %' ORDER BY key",
           path_);
    with(c, path_, [&] {
      while (c.step())
        rep.circuits_open.push_back(c.text(0) + " " + c.text(1));
      return 0;
    });
  }
  return rep;
}

std::vector<task_record> store::results(const std::string& state_filter,
                                        const std::string& tag,
                                        const std::vector<std::string>& ids,
                                        int64_t limit, int64_t after_seq,
                                        bool newest_first) {
  std::string sql = "SELECT id, type, state, attempts, result, error, "
                    "prompt_tokens, completion_tokens, cost_usd, provider, "
                    "model, updated_at, priority, IFNULL(tags, ''), "
                    "IFNULL(raw_answer, ''), IFNULL(response, ''), seq, "
                    "cached_tokens, reasoning_tokens, cached FROM tasks WHERE "
                    "state != 'staged' AND (?1 = '' OR state = ?1) AND (?2 = '' "
                    "OR EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE "
                    "json_each.value = ?2)) AND (?3 = '' OR id IN (SELECT "
                    "value FROM json_each(?3))) AND ";
  sql += newest_first ? "(?5 = 0 OR seq < ?5) ORDER BY seq DESC LIMIT ?4"
                      : "seq > ?5 ORDER BY seq LIMIT ?4";
  stmt s(db_, sql.c_str(), path_);
  s.bind(1, state_filter).bind(2, tag);
  s.bind(3, ids.empty() ? std::string() : nlohmann::json(ids).dump());
  s.bind(4, limit).bind(5, after_seq);
  return with(s, path_, [&] {
    std::vector<task_record> out;
    while (s.step()) {
      task_record r;
      r.id = s.text(0);
      r.type = s.text(1);
      r.state = s.text(2);
      r.attempts = static_cast<uint32_t>(s.i64(3));
      r.result = s.text(4);
      r.error = s.text(5);
      r.prompt_tokens = static_cast<uint64_t>(s.i64(6));
      r.completion_tokens = static_cast<uint64_t>(s.i64(7));
      r.cost_usd = s.dbl(8);
      r.provider = s.text(9);
      r.model = s.text(10);
      r.updated_at = s.text(11);
      r.priority = s.i64(12);
      r.tags = parse_tags(s.text(13));
      r.raw_answer = s.text(14);
      r.response = s.text(15);
      r.seq = s.i64(16);
      r.cached_tokens = static_cast<uint64_t>(s.i64(17));
      r.reasoning_tokens = static_cast<uint64_t>(s.i64(18));
      r.cached = s.i64(19) != 0;
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<committed_event> store::events_of(const std::string& task_id,
                                              uint32_t limit) {
  // By the task's seq, and by its id those an older bgagent wrote while
  // this store was already at version 10 (no task_seq).
  stmt s(db_, "SELECT seq, ts, event, IFNULL(task_id, ''), "
              "IFNULL(attempt, -1), IFNULL(node, ''), IFNULL(detail, '') "
              "FROM events WHERE task_seq = (SELECT seq FROM tasks WHERE "
              "id = ?1) UNION ALL "
              "SELECT seq, ts, event, IFNULL(task_id, ''), "
              "IFNULL(attempt, -1), IFNULL(node, ''), IFNULL(detail, '') "
              "FROM events WHERE task_seq IS NULL AND task_id = ?1 "
              "ORDER BY 1 LIMIT ?2",
         path_);
  s.bind(1, task_id).bind(2, static_cast<int64_t>(limit));
  return with(s, path_, [&] { return event_rows(s); });
}

std::vector<std::string> store::completed_providers() {
  stmt s(db_, "SELECT DISTINCT provider FROM tasks WHERE state = 'completed' "
              "AND provider IS NOT NULL ORDER BY provider",
         path_);
  return with(s, path_, [&] { return first_column_texts(s); });
}

std::optional<cached_prices> store::cached_price_list(const std::string& url) {
  stmt s(db_, "SELECT value FROM meta WHERE key = ?1", path_);
  s.bind(1, "prices " + url);
  auto text = with(s, path_, [&] {
    return s.step() ? s.text(0) : std::string();
  });
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("fetched_at") ||
      !j["fetched_at"].is_number_integer() || !j.contains("prices") ||
      !j["prices"].is_string())
    return std::nullopt;
  return cached_prices{j["fetched_at"].get<int64_t>(),
                       j["prices"].get<std::string>()};
}

void store::cache_price_list(const std::string& url,
                             const cached_prices& list) {
  auto_tx tx(*this);
  stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
         path_);
  s.bind(1, "prices " + url);
  s.bind(2, nlohmann::json{{"fetched_at", list.fetched_at},
                           {"prices", list.prices}}
              .dump(-1, ' ', false,
                    nlohmann::json::error_handler_t::replace));
  with(s, path_, [&] { return s.step(); });
  tx.commit();
}

void store::set_circuit(const std::string& key, const std::string& since) {
  auto_tx tx(*this);
  stmt s(db_,
         since.empty()
           ? "DELETE FROM meta WHERE key = ?1"
           : "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
         path_);
  s.bind(1, "circuit " + key);
  if (!since.empty())
    s.bind(2, since);
  with(s, path_, [&] { return s.step(); });
  tx.commit();
}

std::string store::schedule_fired(const std::string& key) {
  return meta_value("schedule " + key);
}

void store::set_schedule_fired(const std::string& key, const std::string& at) {
  set_meta_value("schedule " + key, at);
}

std::string store::meta_value(const std::string& key) {
  stmt s(db_, "SELECT value FROM meta WHERE key = ?1", path_);
  s.bind(1, key);
  return with(s, path_, [&] { return s.step() ? s.text(0) : std::string(); });
}

void store::set_meta_value(const std::string& key, const std::string& value) {
  auto_tx tx(*this);
  stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", path_);
  s.bind(1, key).bind(2, value);
  with(s, path_, [&] { return s.step(); });
  tx.commit();
}

std::map<std::string, std::pair<double, uint64_t>> store::answer_lengths() {
  stmt s(db_, "SELECT type, AVG(completion_tokens), COUNT(*) FROM tasks "
              "WHERE state = 'completed' AND completion_tokens > 0 GROUP BY "
              "type",
         path_);
  return with(s, path_, [&] {
    std::map<std::string, std::pair<double, uint64_t>> out;
    while (s.step())
      out[s.text(0)] = {s.dbl(1), static_cast<uint64_t>(s.i64(2))};
    return out;
  });
}

bool store::has_task(const std::string& id, const std::string& key) {
  stmt s(db_, "SELECT 1 FROM tasks WHERE (id = ?1 OR idempotency_key = ?2) "
              "AND state != 'staged'",
         path_);
  s.bind(1, id).bind(2, key);
  return with(s, path_, [&] { return s.step(); });
}

std::vector<std::string> store::runnable_models() {
  stmt s(db_, "SELECT DISTINCT IFNULL(req_model, ''), type_fingerprint, "
              "IFNULL(fallback_models, '') FROM tasks WHERE state IN "
              "('pending', 'retry_wait', 'running')",
         path_);
  auto rows = with(s, path_, [&] {
    std::vector<task> out;
    while (s.step()) {
      task t;
      t.model = s.text(0);
      t.type_fingerprint = s.text(1);
      t.fallback_models = parse_tags(s.text(2));
      out.push_back(std::move(t));
    }
    return out;
  });
  std::set<std::string> models;
  for (auto& t : rows) {
    if (auto* r = find_type(t.type_fingerprint)) {
      t.type_model = r->model;
      t.type_fallbacks = r->fallback_models;
    }
    for (auto& m : model_chain(t))
      models.insert(m);
  }
  return {models.begin(), models.end()};
}

std::vector<tag_totals> store::totals_by_tag() {
  stmt s(db_, "SELECT json_each.value, state, COUNT(*), "
              "SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd) "
              "FROM tasks, json_each(tasks.tags) WHERE tasks.tags IS NOT "
              "NULL AND state != 'staged' GROUP BY json_each.value, state "
              "ORDER BY json_each.value",
         path_);
  return with(s, path_, [&] {
    std::vector<tag_totals> out;
    while (s.step()) {
      auto tag = s.text(0);
      if (out.empty() || out.back().tag != tag) {
        out.emplace_back();
        out.back().tag = tag;
      }
      auto& t = out.back();
      auto st = s.text(1);
      auto n = static_cast<uint64_t>(s.i64(2));
      set_count(t.tasks, st, n);
      t.prompt_tokens += static_cast<uint64_t>(s.i64(3));
      t.completion_tokens += static_cast<uint64_t>(s.i64(4));
      t.cost_usd += s.dbl(5);
    }
    return out;
  });
}

std::vector<std::string> store::requeue(const std::vector<std::string>& ids,
                                        bool all, const audit_event& each,
                                        const std::string& from_state,
                                        bool all_or_nothing) {
  if (from_state != task_state::quarantined &&
      from_state != task_state::completed)
    fail("requeue from state \"" + from_state + "\" is not supported");
  auto_tx tx(*this);
  std::vector<std::string> done;
  auto ts = now_rfc3339();
  // A requeued task gets a fresh set of attempts and no result: it runs
  // again as if new (its tokens and cost so far stay counted).
  const std::string reset =
    "UPDATE tasks SET state = 'pending', attempts = 0, free_attempts = 0, "
    "result = NULL, error = NULL, raw_answer = NULL, answer_error = NULL, "
    "response = NULL, cached = 0, "
    "updated_at = ?1 WHERE state = ?2 AND staged_by IS NULL";
  if (all) {
    stmt sel(db_, "SELECT id FROM tasks WHERE state = ?1 AND staged_by IS "
                  "NULL ORDER BY seq",
             path_);
    sel.bind(1, from_state);
    with(sel, path_, [&] {
      while (sel.step())
        done.push_back(sel.text(0));
      return 0;
    });
    stmt upd(db_, reset.c_str(), path_);
    upd.bind(1, ts).bind(2, from_state);
    with(upd, path_, [&] { return upd.step(); });
  } else {
    std::vector<std::string> unique;
    for (auto& id : ids)
      if (std::find(unique.begin(), unique.end(), id) == unique.end())
        unique.push_back(id);
    if (all_or_nothing) {
      // Those that can be requeued; if that is not all, nothing changes.
      stmt sel(db_, "SELECT 1 FROM tasks WHERE id = ?1 AND state = ?2 AND "
                    "staged_by IS NULL",
               path_);
      std::vector<std::string> can;
      for (auto& id : unique) {
        sel.bind(1, id).bind(2, from_state);
        if (with(sel, path_, [&] { return sel.step(); }))
          can.push_back(id);
      }
      if (can.size() < unique.size()) {
        tx.commit();
        return can;
      }
    }
    stmt upd(db_, (reset + " AND id = ?3").c_str(), path_);
    for (auto& id : unique) {
      upd.bind(1, ts).bind(2, from_state).bind(3, id);
      with(upd, path_, [&] { return upd.step(); });
      if (sqlite3_changes(db_) == 1)
        done.push_back(id);
    }
  }
  if (!each.event.empty())
    for (auto& id : done) {
      auto ev = each;
      ev.task_id = id;
      add_event(ev);
    }
  tx.commit();
  return done;
}

std::vector<std::string> store::cancel(const std::vector<std::string>& ids,
                                       const audit_event& each) {
  auto_tx tx(*this);
  std::vector<std::string> done;
  stmt upd(db_, "UPDATE tasks SET state = 'cancelled', updated_at = ?2 WHERE "
                "id = ?1 AND state IN ('pending', 'retry_wait', "
                "'quarantined') AND staged_by IS NULL",
           path_);
  auto ts = now_rfc3339();
  for (auto& id : ids) {
    upd.bind(1, id).bind(2, ts);
    with(upd, path_, [&] { return upd.step(); });
    if (sqlite3_changes(db_) == 1)
      done.push_back(id);
  }
  if (!each.event.empty())
    for (auto& id : done) {
      auto ev = each;
      ev.task_id = id;
      add_event(ev);
    }
  tx.commit();
  return done;
}

// -- provider batches --------------------------------------------------

std::vector<std::string> store::create_batch(
  batch_row row, const std::vector<batch_member>& members,
  const audit_event& created) {
  auto_tx tx(*this);
  std::vector<std::string> placed;
  stmt assign(db_, "UPDATE tasks SET batch_id = ?2 WHERE id = ?1", path_);
  for (auto& m : members) {
    held_reservation held{m.reservation, m.reserved_tokens, m.reserved_cost};
    // A batch places only tasks waiting to run, never one running live.
    task_row r;
    if (!read_row(m.t.id, r) ||
        (r.state != task_state::pending && r.state != task_state::retry_wait))
      continue;
    if (!mark_running(m.t.id, m.attempt, held, m.started))
      continue;
    assign.bind(1, m.t.id).bind(2, row.id);
    with(assign, path_, [&] { return assign.step(); });
    placed.push_back(m.t.id);
  }
  row.tasks = placed.size();
  if (placed.empty()) { // nothing to send: no batch
    tx.commit();
    return placed;
  }
  stmt ins(db_, "INSERT INTO batches(id, state, provider, model, run_id, "
                "tasks, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
           path_);
  ins.bind(1, row.id).bind(2, std::string(to_string(row.state)));
  ins.bind(3, row.provider).bind(4, row.model).bind(5, row.run_id);
  ins.bind(6, static_cast<int64_t>(row.tasks)).bind(7, row.created_at);
  with(ins, path_, [&] { return ins.step(); });
  if (!created.event.empty())
    add_event(created);
  tx.commit();
  return placed;
}

void store::update_batch(const batch_row& row,
                         const std::vector<batch_outcome>& outcomes,
                         const audit_event& ev) {
  auto_tx tx(*this);
  for (auto& o : outcomes) {
    if (o.verdict == batch_verdict::completed) {
      mark_completed(o.task_id, o.attempt, o.out, o.spent, o.ended,
                     o.reservation);
      continue;
    }
    if (!settle_failed(o.task_id, o.attempt, o.spent, o.out.provider,
                       o.out.model, o.ended, o.out.raw_answer,
                       o.out.answer_error))
      continue;
    if (o.verdict == batch_verdict::give_back)
      mark_pending(o.task_id, o.attempt, o.next); // released above: no charge
    else if (o.verdict == batch_verdict::retry)
      mark_retry_wait(o.task_id, o.attempt, o.out.error, o.next);
    else
      mark_quarantined(o.task_id, o.attempt, o.out.error, o.next);
  }
  stmt upd(db_, "UPDATE batches SET state = ?2, tasks = ?3, completed = ?4, "
                "failed = ?5, input_file_id = ?6, provider_batch_id = ?7, "
                "output_file_id = ?8, error_file_id = ?9, cost_usd = ?10, "
                "submitted_at = ?11, ended_at = ?12, error = ?13, "
                "remote_total = ?14, remote_completed = ?15, "
                "remote_failed = ?16 WHERE id = ?1",
           path_);
  upd.bind(1, row.id).bind(2, std::string(to_string(row.state)));
  upd.bind(3, static_cast<int64_t>(row.tasks));
  upd.bind(4, static_cast<int64_t>(row.completed));
  upd.bind(5, static_cast<int64_t>(row.failed));
  upd.bind(6, row.input_file_id).bind(7, row.provider_batch_id);
  upd.bind(8, row.output_file_id).bind(9, row.error_file_id);
  upd.bind(10, row.cost_usd).bind(11, row.submitted_at);
  upd.bind(12, row.ended_at).bind(13, row.error);
  upd.bind(14, static_cast<int64_t>(row.remote_total));
  upd.bind(15, static_cast<int64_t>(row.remote_completed));
  upd.bind(16, static_cast<int64_t>(row.remote_failed));
  with(upd, path_, [&] { return upd.step(); });
  if (!ev.event.empty())
    add_event(ev);
  tx.commit();
}

std::vector<batch_row> store::batches(bool open_only) {
  std::vector<batch_row> out;
  std::string sql =
    "SELECT id, state, provider, model, run_id, tasks, completed, failed, "
    "input_file_id, provider_batch_id, output_file_id, error_file_id, "
    "cost_usd, created_at, submitted_at, ended_at, error, remote_total, "
    "remote_completed, remote_failed FROM batches";
  if (open_only)
    sql += " WHERE state NOT IN ('completed', 'failed', 'expired', "
           "'cancelled')";
  sql += " ORDER BY created_at DESC, rowid DESC";
  stmt q(db_, sql.c_str(), path_);
  with(q, path_, [&] {
    while (q.step()) {
      batch_row b;
      b.id = q.text(0);
      parse_batch_state(q.text(1), b.state);
      b.provider = q.text(2);
      b.model = q.text(3);
      b.run_id = q.i64(4);
      b.tasks = static_cast<uint64_t>(q.i64(5));
      b.completed = static_cast<uint64_t>(q.i64(6));
      b.failed = static_cast<uint64_t>(q.i64(7));
      b.input_file_id = q.text(8);
      b.provider_batch_id = q.text(9);
      b.output_file_id = q.text(10);
      b.error_file_id = q.text(11);
      b.cost_usd = q.dbl(12);
      b.created_at = q.text(13);
      b.submitted_at = q.text(14);
      b.ended_at = q.text(15);
      b.error = q.text(16);
      b.remote_total = static_cast<uint64_t>(q.i64(17));
      b.remote_completed = static_cast<uint64_t>(q.i64(18));
      b.remote_failed = static_cast<uint64_t>(q.i64(19));
      out.push_back(std::move(b));
    }
    return 0;
  });
  return out;
}

std::vector<batch_member> store::batch_members(const std::string& id) {
  std::vector<batch_member> out;
  stmt q(db_, "SELECT " BGAGENT_TASK_COLUMNS ", reservation_id, "
              "reserved_tokens, reserved_cost FROM tasks WHERE batch_id = ?1 "
              "AND state = 'running' ORDER BY seq",
         path_);
  q.bind(1, id);
  with(q, path_, [&] {
    while (q.step()) {
      batch_member m;
      m.t = read_task(q);
      m.attempt = m.t.attempts;
      m.reservation = static_cast<uint64_t>(q.i64(16));
      m.reserved_tokens = static_cast<uint64_t>(q.i64(17));
      m.reserved_cost = q.dbl(18);
      out.push_back(std::move(m));
    }
    return 0;
  });
  for (auto& m : out)
    resolve(m.t);
  return out;
}

void store::set_reservation_ids(
  const std::vector<std::pair<std::string, uint64_t>>& ids) {
  auto_tx tx(*this);
  stmt upd(db_, "UPDATE tasks SET reservation_id = ?2 WHERE id = ?1 AND "
                "state = 'running'",
           path_);
  for (auto& [id, rid] : ids) {
    upd.bind(1, id).bind(2, static_cast<int64_t>(rid));
    with(upd, path_, [&] { return upd.step(); });
  }
  tx.commit();
}

} // namespace bgagent
