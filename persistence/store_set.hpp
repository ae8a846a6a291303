// A store of one file or of several (docs/plans/sharded-store.md). The main
// file `db` is shard 0; a store of S > 1 files also has db.shard1 ..
// db.shard{S-1} (persistence/shard_map.hpp), and a task lives in file
// shard_of(id, S) with everything written about it.
//
// Contract:
// - S is fixed when the store is created. Main's meta row `shard_count`
//   says it; a store without one has one file and is exactly a `store`.
// - Every file of a store of S > 1 carries the same random `store_id`, its
//   `shard_index` and `shard_count` in its meta. Opening refuses, with
//   store_error(bad_input) naming the file and nothing changed: a missing
//   file, a file of another store, a wrong index or count, a count asked
//   for that differs from the stored one, a count outside 1..64.
// - Creating writes the shard files first and main's rows last, in one
//   transaction, main's write lock held from the start (a concurrent
//   creation or submit waits or fails, never interleaves): that commit
//   makes the set. A creation cut short leaves a main without
//   `shard_count` and without tasks, which the next creation takes up
//   again; a leftover shard file holding tasks is refused, never
//   overwritten, and the files the refused call made are removed.
// - Known limit: a file is opened (which may switch it to WAL or migrate
//   its schema) before its identity is checked; a refusal leaves its rows
//   unchanged, not its bytes.
// - Tasks are numbered across the files: take_seqs() hands out blocks of
//   main's `task_seq_next`, so (priority, seq) orders every task of the
//   set as one file would.
// - A submission into several files is all or nothing (plan, section 2a):
//   main records it, its parts are staged in the files (invisible to runs
//   and reads), main's mark 'committed' is the commit point, then each
//   file publishes its share. Each file's slice of a part, and each
//   file's publishing, runs on a thread of its own. Opening the set (not read-only) finishes
//   what a crash or an error left: a committed submission is published
//   (by whoever opens; publishing twice changes nothing), an open one is
//   claimed and dropped once its owner process is gone (pid, start time
//   and boot; an owner in another pid namespace looks gone: the limit),
//   and staged rows no record names are dropped. A part or a commit after
//   such a claim is refused. Not built yet: free keys (a
//   user's key not derived from the task's id, or the id from it) are
//   checked against the task's own file only (main's task_keys, plan 2a).
// - With several files, the files share one event clock, caught up with
//   every file's last event at each submission: seqs are unique across
//   files for writers that take turns. Several processes writing at once
//   are plan step 4 (the clock's lock); until then each file's own seqs
//   stay unique, not the store's.
// - Reads that span files (counts, results, has_task) read each file in
//   its own snapshot: consistent within a file, not across files.
// - Not thread-safe; errors throw store_error naming the file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "persistence/store.hpp"

namespace bgagent {

class event_clock;

class store_set {
public:
  // Opens the store at `db`. `shards` 0 takes what the store says (1 for a
  // new one); N > 0 creates a store of N files, or checks that the
  // existing one has N.
  // `events_above`: the audit log's last seq; every event the set numbers
  // (from the opening's recovery on) goes above it.
  store_set(const std::string& db, store::open_mode mode, uint32_t shards = 0,
            store::sync_mode sync = store::sync_mode::full,
            uint64_t events_above = 0);
  ~store_set();
  store_set(const store_set&) = delete;
  store_set& operator=(const store_set&) = delete;

  uint32_t size() const { return static_cast<uint32_t>(files_.size()); }
  // Shard 0, the main file: runs, batches, prices, circuits, schedules.
  store& main() { return *files_.front(); }
  store& at(uint32_t k) { return *files_.at(k); }
  // The file that holds (or would hold) task `id`.
  store& of(const std::string& id);
  // "" for a store of one file.
  const std::string& store_id() const { return store_id_; }

  // The first of `n` seqs no task of the set has had, for tasks about to be
  // put into the files (store::submit_part's `seqs`), in a small
  // transaction of its own on main (std::logic_error inside one). 0 for a
  // store of one file: its tasks take the next free seq themselves.
  int64_t take_seqs(uint32_t n);
  // A submission into the set (see the contract above). With one file it
  // is that file's (store::begin_submission: one transaction). A refusal
  // (report.error; failed_index counts from the submission's first task)
  // or an exception drops what was staged at once; end_submission(false)
  // does too.
  void begin_submission(const std::string& source,
                        store::on_conflict conflict);
  submit_report submit_part(const std::vector<task>& tasks,
                            const std::vector<type_definition>& types = {});
  submit_counts end_submission(bool keep = true);
  // What opening the set finished of earlier submissions.
  struct recovery {
    uint32_t published = 0, dropped = 0, left_to_owner = 0;
    uint32_t orphans_dropped = 0; // staged shares no record named
  };
  const recovery& recovered() const { return recovered_; }
  // Tests only: called at "staged" (after each part), "committed" (the
  // commit point) and "published" (after each file, on the thread that
  // published it), so a test can kill the process exactly there.
  std::function<void(const char* step)> on_step;

  // Opens a run on every file (plan 2d): main resumes or starts it (and
  // settles its own interrupted tasks, as store::open_run), then each other
  // file, on a thread of its own, settles the tasks it found running that
  // no open batch of main holds. `interrupted` lists them all; the ledger
  // totals are summed over the files. A crash between the steps is
  // harmless: the next open resumes the run and settles the rest, nothing
  // charged twice (a task charged is pending).
  run_info open_run(uint64_t token_limit, double cost_limit,
                    const std::string& period = "run",
                    const std::string& period_start = {});

  // The clock the files number their events from (null with one file).
  const std::shared_ptr<event_clock>& clock() const { return clock_; }
  // Hands file k's connection to its writer (a run's checkpointer, on its
  // own thread). The set must not touch that file afterwards: only
  // size(), store_id() and clock() stay usable once any file is released.
  std::unique_ptr<store> release(uint32_t k);

  // The status over every file: main's run, limits, circuits and batches;
  // the counts and the run's (or the budget period's) spending summed.
  status_report status();
  // Summed over the files, by tag.
  std::vector<tag_totals> totals_by_tag();
  // Over the files, each name once, sorted.
  std::vector<std::string> completed_providers();
  std::vector<std::string> runnable_models();
  // Sums over the files.
  state_counts counts();
  uint64_t count_not_cancelled();
  // store::results over every file, merged by seq; `limit` and `after_seq`
  // apply to the merge as they would to one file.
  std::vector<task_record> results(const std::string& state_filter,
                                   const std::string& tag = {},
                                   const std::vector<std::string>& ids = {},
                                   int64_t limit = -1, int64_t after_seq = 0,
                                   bool newest_first = false);
  // Whether any file holds a task with this id or idempotency key (a key
  // the user chose may live in another file than its id).
  bool has_task(const std::string& id, const std::string& key);

private:
  void create_shards(const std::string& db, uint32_t shards,
                     store::sync_mode sync, bool main_existed);
  void open_shards(const std::string& db, uint32_t shards,
                   store::open_mode mode, store::sync_mode sync);
  void check_identity(store& file, uint32_t k, uint32_t shards);
  void share_event_clock();
  // Raises the clock past every file's last event (at each submission:
  // openers that write in turn never number two events alike).
  void catch_up_event_clock();
  std::shared_ptr<event_clock> clock_; // with several files
  void recover_submissions();
  void drop_submission();
  void step(const char* name) {
    if (on_step)
      on_step(name);
  }
  struct submission;
  std::unique_ptr<submission> sub_;
  recovery recovered_;

  std::vector<std::unique_ptr<store>> files_;
  std::string store_id_;
};

} // namespace bgagent
