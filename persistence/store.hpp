// The durable store: one SQLite file (WAL) holding tasks, runs, the usage
// ledger and the audit events. It is the checkpoint a crashed run resumes
// from, and the source the audit log is written from.
//
// Contract:
// - Only the checkpointer actor (and short-lived CLI commands that spawn one)
//   writes through a `store`; besides, a run's store reader
//   (actors/store_reader.hpp) and the HTTP API's threads read through
//   connections of their own.
// - Schema version 12 (`meta.schema_version`). A store of versions 1-11 is
//   migrated in place on first open, in one transaction; a newer version than this
//   binary knows is refused (store_error with bad_input: exit 2), unchanged.
// - open_mode::read_only opens an existing store to read it, also where
//   this user cannot write the file or its directory: then without creating
//   anything (through the -shm a run keeps, else as SQLite's immutable file
//   when its -wal holds nothing; refused, naming the -wal, when it does), and
//   an older schema is refused with a word on how to migrate it. A user who
//   can write it gets the usual open (an older schema is migrated).
// - synchronous=FULL by default (a commit survives power loss); NORMAL on
//   request (survives a crash of the process, not of the machine).
// - Every mutating call runs inside the caller's transaction when one is open
//   (begin()/commit() let the checkpointer group many changes into one
//   commit), else in its own.
// - State changes are fenced by attempt number: a stale worker can never
//   complete or fail an attempt that was superseded.
// - Audit events (`events` table) get their `seq` here, strictly increasing
//   across processes (max + 1 under the write lock, and never at or below
//   the floor raised by raise_event_floor; with a shared event clock, the
//   clock's next, never below the file's last: unique across the files of
//   one writing process), and are inserted in the same
//   transaction as the state change they describe. Events and reservation
//   settlements become visible through take_committed() only once their
//   transaction has committed.
// - A budget reservation is stored with the `running` mark. Leaving
//   `running` settles it: by the actual usage (completion, failure), or, when
//   the call was abandoned (retry / quarantine / pending decided by the
//   supervisor, or a crash found by open_run), by charging the reservation
//   at its worst case: a ledger row and a `budget_charged` event. Either way
//   a settlement (reservation id, usage) is queued for the budget keeper,
//   except at open_run, whose charges are part of the totals it returns.
// - Spending totals (a run's, a budget period's since an hour's start) are
//   the ledger's sums per run and per UTC hour plus the ledger rows after
//   `meta.ledger_summed_through`; each commit that wrote ledger rows folds
//   them into the sums (a row another writer added is folded too, never
//   twice). The ledger itself has no index but its rowid.
// - A file of a store of several files (persistence/store_set.hpp) is
//   opened only as a member of its set: alone, it would hide the other
//   files' tasks and number tasks the set numbers.
// - Errors throw store_error with one line naming the database file.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages/batch.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"

struct sqlite3;

namespace bgagent {

class cache_filter;
class event_clock;

class store_error : public std::runtime_error {
public:
  // `bad_input`: the file itself is at fault (not SQLite, missing, too
  // new): exit 2.
  store_error(const std::string& what, bool bad_input)
    : std::runtime_error(what), bad_input_(bad_input) {}
  bool bad_input() const { return bad_input_; }

private:
  bool bad_input_;
};

// A budget reservation held by a running attempt.
struct held_reservation {
  uint64_t id = 0;     // the budget keeper's reservation id
  uint64_t tokens = 0; // worst case
  double cost = 0;     // worst case, USD
};

// What the budget keeper must be told once a transaction has committed:
// (commit_atom, reservation_id, spent).
struct cached_prices {
  int64_t fetched_at = 0; // unix seconds
  std::string prices;     // JSON
};

class store {
public:
  enum class open_mode { create_if_missing, must_exist, read_only };
  enum class sync_mode { full, normal };
  static constexpr int schema_version = 12;

  // Whether the file may be one of a store of several files: only
  // persistence/store_set opens those (a file whose meta says its store
  // has more than one is refused otherwise, bad_input, nothing changed).
  enum class membership { alone, in_set };
  store(const std::string& path, open_mode mode,
        sync_mode sync = sync_mode::full,
        membership member = membership::alone);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const std::string& path() const { return path_; }

  void begin();
  void commit();
  void rollback();
  bool in_transaction() const { return in_tx_; }

  // From now on, wait as long as another process holds the write lock (a
  // large `submit` holds it for its whole transaction) instead of failing
  // after 5 s. `waiting(seconds)` is called (on this thread) after 5 s of
  // one wait and every 30 s after that, so a stuck holder is visible.
  // For a process whose own thread may block: the run's checkpointer.
  void wait_for_lock(std::function<void(double seconds)> waiting);

  // What to do with a task whose key (or id) is stored with other content.
  enum class on_conflict { error, skip, replace };

  // Inserts tasks whose idempotency key (and id) is new; one stored with
  // the same content hash is a duplicate; one stored with other content is
  // a conflict: `error` refuses the whole submission (report.error and
  // report.failed_index name it), `skip` keeps the stored task, `replace`
  // puts the new content in its place, back to pending with no attempts
  // (refused while it is running). All or nothing. With `source`, also
  // inserts `task_submitted` (detail: source) / `task_duplicate` /
  // `task_replaced` events, in the same transaction.
  // `types` are the definitions of the tasks' types (kept by fingerprint,
  // so a task runs as submitted even after its types file changed); tasks
  // of a type neither given nor stored before are refused (report.error).
  submit_report submit(const std::vector<task>& tasks);
  submit_report submit(const std::vector<task>& tasks,
                       const std::string& source,
                       const std::vector<type_definition>& types = {},
                       on_conflict conflict = on_conflict::error);

  // The same submission streamed in parts, so a file of a million tasks is
  // never held whole: begin_submission() opens its one transaction,
  // submit_part() adds tasks (with the definitions of types not given in
  // an earlier part) and keeps only counts, end_submission() commits.
  // A refusal rolls everything back: submit_part() returns the report with
  // `error` and `failed_index` (counted from the submission's first task),
  // and later parts and end_submission() are refused too.
  // end_submission(false) rolls it back (a fault found later in the file).
  void begin_submission(const std::string& source, on_conflict conflict);
  // `hashes`: each task's content_hash(), when the caller computed them
  // (on its own thread); else they are computed here. `seqs`: each new
  // task's seq, when the caller numbers tasks across the files of a store
  // (persistence/store_set.hpp); else (or 0) the next free one.
  submit_report submit_part(const std::vector<task>& tasks,
                            const std::vector<type_definition>& types,
                            const std::vector<std::string>& hashes = {},
                            const std::vector<int64_t>& seqs = {});
  submit_counts end_submission(bool keep = true);

  // One file's share of a submission across the files of a store
  // (persistence/store_set.hpp), `submission` being its id in main. Each
  // part commits on its own (begin it outside a transaction): new tasks as
  // 'staged' rows, a task it replaces held as it is (staged_by), the
  // events they will get kept aside. Runs, counts, results and has_task
  // see none of it until publish_staged(); drop_staged() undoes it. Both
  // are one transaction and safe to redo. A task staged by another
  // submission still open refuses this part.
  void begin_staged_submission(int64_t submission, const std::string& source,
                               on_conflict conflict);
  void publish_staged(int64_t submission, const std::string& source);
  void drop_staged(int64_t submission);

  // Main's record of those submissions: opened ('open'), committed (the
  // commit point: from then on it is published, by recovery if need be;
  // store_error once a recovery took it as abandoned), forgotten once
  // every file published or dropped it.
  struct submission_record {
    int64_t id = 0;
    std::string source, state;
    int64_t owner_pid = 0;
    std::string owner_start;
  };
  int64_t open_submission(const std::string& source, int64_t owner_pid,
                          const std::string& owner_start);
  void commit_submission(int64_t id);
  // Moves it from state `from` to `to` (recovery's claim before it acts);
  // false when it was not in `from`.
  bool claim_submission(int64_t id, const std::string& from,
                        const std::string& to);
  std::string submission_state(int64_t id); // "" once forgotten
  void forget_submission(int64_t id);
  std::vector<submission_record> submissions();
  // The submissions this file holds staged rows or outcomes of.
  std::vector<int64_t> staged_submissions();

  // SHA-256 of what a task asks for: its type's fingerprint, model,
  // max_tokens, input and vars.
  static std::string content_hash(const task& t);

  // Resumes the last unfinished run, or starts a new one. Tasks found
  // `running` were interrupted by a crash: each has its reservation charged
  // (ledger + `budget_charged`), is audited `task_interrupted`, goes back to
  // `pending` and is listed in `interrupted`. The ledger totals returned
  // include those charges.
  run_info open_run(uint64_t token_limit, double cost_limit);
  // The same with a budget period (policy/budget_period.hpp, by name): the
  // spending restored is the ledger's since `period_start` (RFC 3339, the
  // period's first second) across runs, unless the period is "run".
  run_info open_run(uint64_t token_limit, double cost_limit,
                    const std::string& period,
                    const std::string& period_start);
  // The second step of opening a run on a store of several files, for
  // each file but main (persistence/store_set.hpp): the run `run_id` is
  // main's; the tasks found running here that no open batch of
  // `open_batches` (main's open_batch_ids()) holds are charged, audited
  // and sent back to pending as open_run() does. Returns them and this
  // file's ledger totals for the run or the period. One transaction; safe
  // to redo (a task charged is pending).
  run_info open_run_shard(int64_t run_id,
                          const std::vector<std::string>& open_batches,
                          const std::string& period,
                          const std::string& period_start);
  std::vector<std::string> open_batch_ids();
  void finish_run(int64_t run_id, const std::string& state);
  void set_limits(int64_t run_id, uint64_t token_limit, double cost_limit);
  // The run that ledger rows are written to (open_run sets it).
  void set_run(int64_t run_id) { run_id_ = run_id; }

  // Pending and retry_wait tasks after `after` in run order (priority
  // descending, then seq), with their type resolved (system and user prompt
  // rendered with the task's vars, schema, model, temperature, max_tokens;
  // chat tasks: raw, with their response_format's schema), each with the
  // last answer that failed its schema and why (the repair turn), if any.
  std::vector<task> fetch_runnable(const fetch_cursor& after, uint32_t limit);

  // Fenced transitions; each returns false (and writes nothing) when the
  // task is not in a state that allows it for this attempt (cancelled,
  // superseded, already done). An event whose name is empty is not
  // inserted; any other is inserted only when the transition applies.
  //
  // Running: stores the reservation (none: a call that reserves nothing).
  // A running attempt this one supersedes has its reservation charged.
  // `seq`: the task's (task::seq), when the caller knows it: found by it
  // (its id still checked) instead of through the id's index; 0: by id.
  bool mark_running(const std::string& id, uint32_t attempt,
                    const held_reservation& r = {},
                    const audit_event& started = {}, int64_t seq = 0);
  // Completion needs the exact running attempt. Stores the result, adds
  // `spent` to the task and the ledger, settles the reservation. A stale
  // attempt (false) still had its call billed: see settle_stale().
  // `reservation`: the one the caller believes the attempt holds (0:
  // unknown); when the store agrees, the row is not read first.
  // `seq` as for mark_running.
  bool mark_completed(const std::string& id, uint32_t attempt,
                      const call_outcome& out, const usage& spent,
                      const audit_event& completed,
                      uint64_t reservation = 0, int64_t seq = 0);
  // A failed attempt of the exact running attempt: the ledger row (none for
  // zero usage), the reservation settled, the event; the task stays
  // `running` until the supervisor decides (retry, quarantine, pending).
  // A non-empty `raw_answer` (an answer that failed the schema: cut to
  // max_repair_answer_chars) is kept with `answer_error` for the repair turn,
  // and stays with the task if it ends quarantined.
  bool settle_failed(const std::string& id, uint32_t attempt,
                     const usage& spent, const std::string& provider,
                     const std::string& model, const audit_event& failed,
                     const std::string& raw_answer = {},
                     const std::string& answer_error = {});
  // Retry and quarantine are the supervisor's decisions and also apply to
  // an attempt whose worker died before marking it running. Leaving
  // `running` with a reservation still held charges it (abandoned call).
  // `not_counted`: the attempt counts against no retry (the provider's
  // fault: a 429, an outage); the task's free_attempts keeps the count
  // across runs.
  bool mark_retry_wait(const std::string& id, uint32_t attempt,
                       const std::string& error,
                       const audit_event& scheduled = {},
                       bool not_counted = false);
  bool mark_quarantined(const std::string& id, uint32_t attempt,
                        const std::string& error,
                        const audit_event& quarantined = {});
  // Back to pending without counting an attempt (budget denial after
  // running was marked, node lost, shutdown, out of credits).
  bool mark_pending(const std::string& id, uint32_t attempt,
                    const audit_event& released = {});

  // Appends to the usage ledger (current run) and adds to the task's
  // totals.
  void record_usage(int64_t run_id, const std::string& task_id,
                    uint32_t attempt, const usage& u,
                    const std::string& provider, const std::string& model);

  // -- the response cache (DESIGN.md section 13) ---------------------------
  // Each task waiting to run (pending, retry_wait) whose fingerprint has a
  // cached answer is completed from it: its result and answer copied, no
  // tokens, no cost, `cached` set, `each` (task_cached, its task_id set)
  // committed. Returns the ids completed. A completed attempt whose
  // outcome carries a fingerprint puts its answer in the cache
  // (mark_completed).
  std::vector<std::string> complete_from_cache(
    const std::vector<std::string>& ids,
    const std::vector<std::string>& fingerprints, const audit_event& each);
  // The cache's fingerprints in memory (persistence/cache_filter.hpp),
  // read from the cache on the first call; from then on every put adds to
  // it. complete_from_cache asks it first; callers on other threads may
  // too, to skip asking the store, and add what they are about to store.
  std::shared_ptr<cache_filter> response_cache_filter();

  // -- provider batches (messages/batch.hpp, DESIGN.md section 13) ---
  // Stores `row` and places each member in it, in one transaction with
  // `created` (batch_created): marked running at its attempt with its
  // reservation and batch_id, its task_started committed. A member no
  // longer pending or retry_wait (cancelled, run meanwhile) is left out;
  // the ids placed are returned (the caller releases the others'
  // reservations). row.tasks is set to how many were placed.
  std::vector<std::string> create_batch(batch_row row,
                                        const std::vector<batch_member>& members,
                                        const audit_event& created);
  // In one transaction: every field of `row` but id and created_at
  // written, each outcome applied as a live attempt's end would be
  // (completed: mark_completed; otherwise settle_failed, then
  // mark_retry_wait or mark_quarantined), `ev` committed (when named).
  // An outcome for a task no longer running in this batch is a late
  // report: billed once (settle_stale), never completed twice.
  void update_batch(const batch_row& row,
                    const std::vector<batch_outcome>& outcomes,
                    const audit_event& ev);
  // Every batch, newest first; only those not ended when `open_only`.
  std::vector<batch_row> batches(bool open_only);
  // The tasks still running in batch `id`, in submit order, resolved, each
  // with its attempt and reservation (started is left empty).
  std::vector<batch_member> batch_members(const std::string& id);
  // A restarted head holds the reservations of batch tasks again: their
  // new reservation ids.
  void set_reservation_ids(
    const std::vector<std::pair<std::string, uint64_t>>& ids);

  state_counts counts();
  // Every task but the cancelled: counts().total() - cancelled, from two
  // index counts instead of a scan of every row.
  uint64_t count_not_cancelled();
  status_report status();
  // The last run, its limits and budget period, and nothing else (task
  // counts and spending zero, no circuits or batches): what a run's start
  // needs, with no scan of every task.
  status_report run_status();
  // In submit order; "" (and no ids) filters nothing; at most `limit`
  // records (-1: all), only those submitted after the task of seq
  // `after_seq` (task_record::seq; 0: from the first).
  // `newest_first`: the other way, after_seq then bounding from above.
  std::vector<task_record> results(const std::string& state_filter,
                                   const std::string& tag = {},
                                   const std::vector<std::string>& ids = {},
                                   int64_t limit = -1, int64_t after_seq = 0,
                                   bool newest_first = false);
  // One task's committed audit events, in seq order, at most `limit`.
  std::vector<committed_event> events_of(const std::string& task_id,
                                         uint32_t limit);
  // The providers whose answers completed tasks (by name, sorted).
  std::vector<std::string> completed_providers();
  // A provider's price list as last fetched from `url` (unix seconds, and
  // the list as providers/openrouter_models.hpp writes it), kept in `meta`.
  std::optional<cached_prices> cached_price_list(const std::string& url);
  void cache_price_list(const std::string& url, const cached_prices& list);
  // A provider model's circuit opened at `since` (RFC 3339), or closed
  // (""), kept in `meta` for status(); open_run() forgets the last run's.
  void set_circuit(const std::string& key, const std::string& since);
  // A schedule's last firing (RFC 3339; "" when it never fired), kept in
  // `meta` under "schedule <key>".
  std::string schedule_fired(const std::string& key);
  void set_schedule_fired(const std::string& key, const std::string& at);
  // A row of `meta` ("" when absent), and setting one (in the open
  // transaction, else in its own): what a store file says of itself, such
  // as its place in a set of files (persistence/store_set.hpp).
  std::string meta_value(const std::string& key);
  void set_meta_value(const std::string& key, const std::string& value);
  // Per type name: the average completion tokens of its completed tasks
  // (those that reported any), and how many.
  std::map<std::string, std::pair<double, uint64_t>> answer_lengths();
  // Whether a task with this id or idempotency key is stored.
  bool has_task(const std::string& id, const std::string& key);
  // The models the pending, retry_wait and running tasks (interrupted by a
  // crash: they run again) ask for (their own, else
  // their type's; "" for the run's MODEL), sorted, each once.
  std::vector<std::string> runnable_models();
  // Per tag (in tag order): counts per state, tokens and dollars spent.
  std::vector<tag_totals> totals_by_tag();

  // `from_state` (quarantined or completed) -> pending, with no attempts
  // and no result (ids, each once, or every such task when `all`). Returns
  // the ids requeued. A non-empty `each` is inserted once per id requeued,
  // with that task_id. `all_or_nothing`: when any id is not in from_state,
  // nothing changes and the ids that are are returned (fewer than given).
  std::vector<std::string> requeue(const std::vector<std::string>& ids,
                                   bool all, const audit_event& each = {},
                                   const std::string& from_state =
                                     task_state::quarantined,
                                   bool all_or_nothing = false);
  // pending/retry_wait/quarantined -> cancelled. Returns the ids cancelled;
  // `each` as for requeue.
  std::vector<std::string> cancel(const std::vector<std::string>& ids,
                                  const audit_event& each = {});

  // Audit events. add_event inserts one (in the open transaction, else in
  // its own) with the next seq and the current time; `task_seq`, when the
  // caller knows it, is the seq of the task the event names (0: looked up
  // by the event's task_id).
  void add_event(const audit_event& ev, int64_t task_seq = 0);
  // Committed events with seq > after_seq, in seq order, at most `limit`.
  std::vector<committed_event> events_after(uint64_t after_seq,
                                            uint32_t limit);
  // Every event inserted from now on gets a seq above `seq` (an audit log
  // may hold seqs that never were in this table: written by version 1).
  void raise_event_floor(uint64_t seq);
  uint64_t last_event_seq();
  // The files of a sharded store number their events from one clock
  // (persistence/event_clock.hpp): with one, an event's seq is taken from
  // it, not the table's max + 1, and raise_event_floor raises it too; a
  // transaction's events are then handed over whole, however many (see
  // take_committed_events). Without one (a store of one file, the
  // default), nothing changes.
  void use_event_clock(std::shared_ptr<event_clock> clock);

  // What committed since the last call: events in seq order (of a huge
  // transaction only its last ones: read the rest with events_after), and
  // the reservations to settle with the budget keeper.
  std::vector<committed_event> take_committed_events();
  std::vector<settlement> take_settlements();

  // What this file's usage ledger holds for one run, or since a time (RFC
  // 3339): a store of several files sums them (store_set::status).
  void ledger_totals(int64_t run_id, uint64_t& tokens, double& cost);
  void ledger_totals_since(const std::string& ts, uint64_t& tokens,
                           double& cost);

private:
  struct resolved_type;
  const resolved_type* find_type(const std::string& fingerprint);
  void resolve(task& t);
  void store_types(const std::vector<type_definition>& defs);
  void store_builtin_types();
  void add_content_hashes();
  void rekey_response_cache(); // migration to version 10
  struct statements;
  struct task_row;
  // retry_wait or quarantined, for mark_retry_wait / mark_quarantined.
  bool end_attempt(bool quarantine, const std::string& id, uint32_t attempt,
                   const std::string& error, const audit_event& ev);
  void exec(const char* sql);
  void open_schema();
  int read_version();
  bool read_row(const std::string& id, task_row& row);
  std::vector<std::string> requeue_interrupted(
    const std::string& ts, const std::string& not_in_open_batch,
    const std::string& open_batches);
  // Charges the reservation of a running attempt that was abandoned.
  void charge_abandoned(const task_row& row, const std::string& why,
                        bool settle);
  // A result for an attempt that was superseded: the provider billed it.
  void settle_stale(const std::string& id, uint32_t attempt,
                    const usage& spent, const std::string& provider,
                    const std::string& model, const std::string& what);
  [[noreturn]] void fail(const std::string& what);
  void open_read_only();
  bool writable_here() const;
  void open_read_write(open_mode mode, sync_mode sync);
  status_report status(bool whole);
  status_report status_reads(bool whole);
  std::vector<task> fetch_reads(const fetch_cursor& after, uint32_t limit);
  // Runs `reads` in one snapshot: on a reader's connection the writer may
  // commit between two statements (within a caller's transaction they
  // share it already).
  template <class Reads>
  auto in_one_snapshot(Reads reads) -> decltype(reads());
  void prepare_statements();
  // The time of the open transaction (RFC 3339, ms), read from the clock
  // once per transaction: every row and event it writes carries it.
  const std::string& tx_time();

  std::string path_;
  std::string tx_time_; // empty: not read yet in this transaction
  // The submission in progress (begin_submission .. end_submission).
  struct submission;
  std::unique_ptr<submission> sub_;
  // One task of a submission; false (rolled back, report.error set) when
  // it is refused. `ids`: the report that keeps ids, else only counts.
  submit_report submit_part_body(const std::vector<task>& tasks,
                                 const std::vector<type_definition>& types,
                                 const std::vector<std::string>& hashes,
                                 const std::vector<int64_t>& seqs);
  bool submit_one(const task& t, const std::string& hash, int64_t seq,
                  submit_report& rep);
  // A staged submission's event (and replacement) kept for publishing, and
  // the content hash its last replacement of a task gives (or "").
  void stage_outcome(int64_t task_seq, const std::string& task_id,
                     const char* event, const std::string& detail,
                     const std::string& replacement);
  std::string staged_hash(int64_t task_seq);
  // The end of a submission's staging in this file (inside the caller's
  // transaction): `new_rows_sql` (?1: the submission) publishes or deletes
  // the rows it put in, then the tasks it held are let go and its outcomes
  // forgotten.
  void end_staging(int64_t submission, const char* new_rows_sql);
  // wait_for_lock(): the one wait in progress.
  std::function<void(double)> lock_waiting_;
  std::chrono::steady_clock::time_point wait_started_;
  double wait_reported_ = 0;
  static int on_busy(void* self, int count);
  bool read_only_ = false;
  sqlite3* db_ = nullptr;
  bool in_tx_ = false;
  // The ledger rows this transaction wrote (ids first..last; none while
  // ledger_rows_ is 0) and their sums by run and by hour: its commit folds
  // them into the ledger's sums first (version 11).
  struct ledger_sum {
    uint64_t tokens = 0;
    double cost = 0;
  };
  int64_t ledger_first_ = 0, ledger_last_ = 0, ledger_rows_ = 0;
  std::map<int64_t, ledger_sum> tx_run_sums_;
  std::map<std::string, ledger_sum> tx_hour_sums_;
  void note_ledger_row(int64_t run_id, const usage& u, const std::string& ts);
  void clear_ledger_rows();
  void fold_ledger();
  int64_t run_id_ = 0;
  uint64_t event_floor_ = 0;
  uint64_t next_event_seq_ = 0; // 0: not known in this transaction
  bool clock_checked_in_tx_ = false; // the clock raised to this file's last
  std::shared_ptr<event_clock> event_clock_;
  std::vector<committed_event> tx_events_, committed_events_;
  std::vector<settlement> tx_settlements_, committed_settlements_;
  // Attempts whose reservation was charged as abandoned (task id + "#" +
  // attempt -> what was charged), so a late result is not charged twice.
  std::map<std::string, usage> charged_, tx_charged_;
  std::unique_ptr<statements> st_;
  std::map<std::string, std::unique_ptr<resolved_type>> types_;
  std::shared_ptr<cache_filter> cache_filter_; // null until asked for
};

} // namespace bgagent
