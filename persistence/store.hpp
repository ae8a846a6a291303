// The durable store: one SQLite file (WAL) holding tasks, runs and the usage
// ledger. It is the checkpoint a crashed run resumes from.
//
// Contract:
// - Only the checkpointer actor (and short-lived CLI commands that spawn one)
//   owns a `store`; nothing else touches SQLite.
// - Every mutating call runs inside the caller's transaction when one is open
//   (begin()/commit() let the checkpointer group many changes into one
//   commit), else in its own.
// - State changes are fenced by attempt number: a stale worker can never
//   complete or fail an attempt that was superseded.
// - Errors throw store_error with one line naming the database file.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"

struct sqlite3;

namespace bgagent {

class store_error : public std::runtime_error {
public:
  // `bad_input`: the file itself is at fault (not SQLite, missing): exit 2.
  store_error(const std::string& what, bool bad_input)
    : std::runtime_error(what), bad_input_(bad_input) {}
  bool bad_input() const { return bad_input_; }

private:
  bool bad_input_;
};

class store {
public:
  enum class open_mode { create_if_missing, must_exist };

  store(const std::string& path, open_mode mode);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const std::string& path() const { return path_; }

  void begin();
  void commit();
  void rollback();
  bool in_transaction() const { return in_tx_; }

  // Inserts tasks whose idempotency key is new; reports the others as
  // duplicates. All or nothing: on error (an id reused for other content)
  // nothing is inserted and report.error says which task.
  submit_report submit(const std::vector<task>& tasks);

  // Resumes the last unfinished run (tasks found `running` go back to
  // `pending` and are listed in `interrupted`), or starts a new one.
  run_info open_run(uint64_t token_limit, double cost_limit);
  void finish_run(int64_t run_id, const std::string& state);
  void set_limits(int64_t run_id, uint64_t token_limit, double cost_limit);

  // Pending and retry_wait tasks with seq > after_seq, in seq order.
  std::vector<task> fetch_runnable(int64_t after_seq, uint32_t limit);

  // Fenced transitions; each returns false when the task is not in a state
  // that allows it for this attempt (cancelled, superseded, already done).
  // Completion needs the exact running attempt (a stale worker cannot
  // complete); retry and quarantine are the supervisor's decisions and also
  // apply to an attempt whose worker died before marking it running.
  bool mark_running(const std::string& id, uint32_t attempt);
  bool mark_completed(const std::string& id, uint32_t attempt,
                      const call_outcome& out);
  bool mark_retry_wait(const std::string& id, uint32_t attempt,
                       const std::string& error);
  bool mark_quarantined(const std::string& id, uint32_t attempt,
                        const std::string& error);
  // Back to pending without counting an attempt (budget denial after
  // running was marked, node lost before the call, drain).
  bool mark_pending(const std::string& id, uint32_t attempt);

  // Appends to the usage ledger and adds to the task's totals.
  void record_usage(int64_t run_id, const std::string& task_id,
                    uint32_t attempt, const usage& u,
                    const std::string& provider, const std::string& model);

  state_counts counts();
  status_report status();
  std::vector<task_record> results(const std::string& state_filter);

  // quarantined -> pending (ids, or every quarantined task when ids is
  // empty and all_quarantined). Returns the ids requeued.
  std::vector<std::string> requeue(const std::vector<std::string>& ids,
                                   bool all_quarantined);
  // pending/retry_wait/quarantined -> cancelled. Returns the ids cancelled.
  std::vector<std::string> cancel(const std::vector<std::string>& ids);

private:
  struct statements;
  void exec(const char* sql);
  // What the usage ledger holds for one run.
  void ledger_totals(int64_t run_id, uint64_t& tokens, double& cost);
  [[noreturn]] void fail(const std::string& what);

  std::string path_;
  sqlite3* db_ = nullptr;
  bool in_tx_ = false;
  std::unique_ptr<statements> st_;
};

} // namespace bgagent
