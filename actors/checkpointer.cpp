#include "actors/checkpointer.hpp"

#include <functional>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"

namespace bgagent {

namespace {

struct checkpointer_state {
  std::shared_ptr<store> db;
  int64_t run_id = 0;
  bool flush_scheduled = false;
  // Replies held back until the open transaction commits.
  std::vector<std::function<void()>> after_commit;
  static inline const char* name = "checkpointer";
};

using self_ptr = caf::stateful_actor<checkpointer_state>*;

// Runs `op` inside the group transaction and answers with its value once
// that transaction has committed.
template <class F>
caf::response_promise grouped(self_ptr self, F op) {
  auto& st = self->state;
  if (!st.flush_scheduled) {
    st.db->begin();
    st.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
  auto rp = self->make_response_promise();
  auto value = op();
  st.after_commit.emplace_back(
    [rp, value]() mutable { rp.deliver(std::move(value)); });
  return rp;
}

void commit_group(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  st.db->commit();
  auto replies = std::move(st.after_commit);
  st.after_commit.clear();
  for (auto& r : replies)
    r();
}

caf::behavior checkpointer(self_ptr self, std::shared_ptr<store> db) {
  self->state.db = std::move(db);
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        spdlog::critical("checkpointer: {}", e.what());
        return caf::make_error(caf::sec::runtime_error, e.what());
      }
    });
  auto& db_ = *self->state.db;
  return {
    [=](flush_atom) { commit_group(self); },
    [=, &db_](submit_atom, const std::vector<task>& tasks) {
      // Its own transaction: all or nothing, whatever is grouped around it.
      if (self->state.flush_scheduled)
        commit_group(self);
      return db_.submit(tasks);
    },
    [=, &db_](open_run_atom, uint64_t tokens, double cost) {
      if (self->state.flush_scheduled)
        commit_group(self);
      auto info = db_.open_run(tokens, cost);
      self->state.run_id = info.id;
      return info;
    },
    [=, &db_](finish_run_atom, int64_t run, const std::string& state) {
      return grouped(self, [&] {
        db_.finish_run(run, state);
        return true;
      });
    },
    [=, &db_](limits_atom, uint64_t tokens, double cost) {
      return grouped(self, [&] {
        db_.set_limits(self->state.run_id, tokens, cost);
        return true;
      });
    },
    [=, &db_](fetch_atom, int64_t after, uint32_t limit) {
      return db_.fetch_runnable(after, limit);
    },
    [=, &db_](running_atom, const std::string& id, uint32_t attempt) {
      return grouped(self, [&] { return db_.mark_running(id, attempt); });
    },
    [=, &db_](complete_atom, const std::string& id, uint32_t attempt,
              const call_outcome& out, const usage& u) {
      return grouped(self, [&] {
        bool ok = db_.mark_completed(id, attempt, out);
        // A stale attempt's tokens were spent all the same: ledger them.
        db_.record_usage(self->state.run_id, id, attempt, u, out.provider,
                         out.model);
        return ok;
      });
    },
    [=, &db_](retry_atom, const std::string& id, uint32_t attempt,
              const std::string& error) {
      return grouped(self,
                     [&] { return db_.mark_retry_wait(id, attempt, error); });
    },
    [=, &db_](quarantine_atom, const std::string& id, uint32_t attempt,
              const std::string& error) {
      return grouped(self,
                     [&] { return db_.mark_quarantined(id, attempt, error); });
    },
    [=, &db_](release_atom, const std::string& id, uint32_t attempt) {
      return grouped(self, [&] { return db_.mark_pending(id, attempt); });
    },
    [=, &db_](usage_atom, const std::string& id, uint32_t attempt,
              const usage& u, const std::string& provider,
              const std::string& model) {
      return grouped(self, [&] {
        db_.record_usage(self->state.run_id, id, attempt, u, provider, model);
        return true;
      });
    },
    [=, &db_](status_atom) { return db_.status(); },
    [=, &db_](results_atom, const std::string& state) {
      return db_.results(state);
    },
    [=, &db_](requeue_atom, const std::vector<std::string>& ids, bool all) {
      if (self->state.flush_scheduled)
        commit_group(self);
      return db_.requeue(ids, all);
    },
    [=, &db_](cancel_atom, const std::vector<std::string>& ids) {
      if (self->state.flush_scheduled)
        commit_group(self);
      return db_.cancel(ids);
    },
  };
}

} // namespace

caf::actor spawn_checkpointer(caf::actor_system& sys,
                              std::unique_ptr<store> db) {
  return sys.spawn(checkpointer, std::shared_ptr<store>(std::move(db)));
}

} // namespace bgagent
