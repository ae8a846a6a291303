#include "actors/checkpointer.hpp"

#include "actors/store_reader.hpp"

#include <pthread.h>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/budget.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/node_gateway_actor.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/store.hpp"
#include "persistence/store_set.hpp"

namespace bgagent {

namespace {

// A reply held back until the open group commits: called with nullptr
// then, or with an error if this actor ends first (its requester gets an
// error, never silence). One closure per reply; an attempt's marks are not
// held this way but answered per commit (grouped_mark).
using held_reply = std::function<void(const caf::error*)>;

// A promise held with its value: the value at the commit, else the error.
template <class T>
held_reply hold(caf::typed_response_promise<T> rp, T value) {
  return [rp, value](const caf::error* err) mutable {
    if (err)
      rp.deliver(*err);
    else
      rp.deliver(std::move(value));
  };
}

struct checkpointer_state {
  std::shared_ptr<store> db;
  int64_t run_id = 0;
  bool flush_scheduled = false;
  // Replies held back until the open transaction commits.
  std::vector<held_reply> after_commit;
  // The open group's answers to marks, by the gateway that asked: one
  // message to each at the commit (a group holds dozens to hundreds).
  std::vector<std::pair<node_gateway_actor, std::vector<mark_answer>>> marks;
  auditor_actor auditor;      // gets the committed events
  // A file of a store of several: its index, the clock its events are
  // numbered from, and whether the auditor waits for its floor.
  store_file file;
  bool floor_asked = false;
  budget_keeper_actor keeper; // gets the settled reservations
  bool synced = false; // the auditor told us the log's last seq
  store_reader_actor reader; // null: this actor reads itself
  // Status requests not yet sent to the reader: they wait for the open
  // group's commit and for the scan in flight, then one scan answers them
  // all (a /metrics flood costs at most one scan at a time).
  std::vector<caf::typed_response_promise<status_report>> status_next;
  // The requests of the scan in flight (empty: none in flight).
  std::vector<caf::typed_response_promise<status_report>> status_asked;
  static inline const char* name = "checkpointer";

  // Run by on_exit, while this actor can still send: whatever is still
  // held gets an error (a requester without a timeout would wait forever).
  ~checkpointer_state() {
    auto down = caf::make_error(caf::sec::request_receiver_down);
    for (auto& r : after_commit)
      r(&down);
    for (auto* batch : {&status_next, &status_asked})
      for (auto& rp : *batch)
        rp.deliver(down);
  }
};

using checkpointer_ptr =
  checkpointer_actor::stateful_pointer<checkpointer_state>;
using behavior_type = checkpointer_actor::behavior_type;

// A state that handles a part of the interface, everything else waiting in
// the mailbox (the default handler skips it): CAF checks a full typed
// behavior only.
behavior_type partial(caf::behavior b) {
  return behavior_type{behavior_type::unsafe_init{}, std::move(b)};
}

// Opens the group transaction unless one is open, and queues its commit
// behind everything already in the mailbox.
void open_group(checkpointer_ptr self) {
  auto& st = self->state;
  if (!st.flush_scheduled) {
    st.db->begin();
    st.flush_scheduled = true;
    self->send(self, commit_group_atom::value);
  }
}

// Runs `op` inside the group transaction and answers with its value once
// that transaction has committed.
template <class F>
auto grouped(checkpointer_ptr self, F op) {
  auto& st = self->state;
  open_group(self);
  // The value first: if op() throws, no promise holds the request, and the
  // actor's failure answers it.
  auto value = op();
  auto rp = self->make_response_promise<decltype(op())>();
  st.after_commit.push_back(hold(rp, std::move(value)));
  return rp;
}

// Runs a mark inside the group transaction; its answer goes to the
// sending gateway with the group's others once that transaction commits.
template <class F>
void grouped_mark(checkpointer_ptr self, mark_answer answer, F op) {
  auto& st = self->state;
  open_group(self);
  answer.written = op();
  auto gateway = caf::actor_cast<node_gateway_actor>(self->current_sender());
  if (!gateway)
    return; // anonymous: no one to tell
  for (auto& [to, answers] : st.marks)
    if (to == gateway) {
      answers.push_back(std::move(answer));
      return;
    }
  st.marks.emplace_back(std::move(gateway),
                        std::vector<mark_answer>{std::move(answer)});
}

// What the last commit(s) made final: the events to the auditor (one
// message, seq order), the settled reservations to the budget keeper.
void publish(checkpointer_ptr self) {
  auto& st = self->state;
  auto events = st.db->take_committed_events();
  if (st.file.clock) {
    // No transaction is open here: every later event of this file takes
    // a seq at or above the clock's next().
    if (st.auditor && (!events.empty() || st.floor_asked))
      self->send(st.auditor, commit_atom::value, st.file.index,
                 std::move(events), st.file.clock->next());
    st.floor_asked = false;
  } else if (!events.empty() && st.auditor) {
    self->send(st.auditor, std::move(events));
  }
  auto settled = st.db->take_settlements();
  if (!settled.empty() && st.keeper)
    caf::anon_send(st.keeper, commit_atom::value, std::move(settled));
}

void send_status_scan(checkpointer_ptr self);

void commit_group(checkpointer_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  st.db->commit();
  publish(self);
  auto replies = std::move(st.after_commit);
  st.after_commit.clear();
  for (auto& r : replies)
    r(nullptr);
  auto marks = std::move(st.marks);
  st.marks.clear();
  for (auto& [gateway, answers] : marks)
    self->send(gateway, marks_atom::value, std::move(answers));
  send_status_scan(self);
}

// Before an operation that needs a transaction of its own.
void commit_open_group(checkpointer_ptr self) {
  if (self->state.flush_scheduled)
    commit_group(self);
}

// A read that scans: delegated to the reader when there is one, once what
// was asked for before it is committed; else `local()` here. A read never
// commits a group early (a flood of reads would split group commits into
// one per read): while a group is open, it waits for that group's commit,
// which is already queued behind the mailbox.
template <class Local, class... Ts>
auto read(checkpointer_ptr self, Local local, Ts... xs)
  -> caf::result<decltype(local())> {
  auto& st = self->state;
  if (!st.reader)
    return local();
  if (!st.flush_scheduled)
    return self->delegate(st.reader, xs...);
  auto rp = self->make_response_promise<decltype(local())>();
  st.after_commit.push_back(
    [self, rp, xs...](const caf::error* err) mutable {
      if (err)
        rp.deliver(*err);
      else
        rp.delegate(self->state.reader, xs...);
    });
  return rp;
}

// Sends the waiting status requests to the reader as one scan, unless a
// group is open (its commit calls this again) or a scan is in flight (its
// answer does). Each scan is sent after its requests arrived and after
// what was asked before them committed, so it sees all of that.
void send_status_scan(checkpointer_ptr self) {
  auto& st = self->state;
  if (!st.reader || !st.status_asked.empty() || st.flush_scheduled ||
      st.status_next.empty())
    return;
  st.status_asked = std::move(st.status_next);
  st.status_next.clear();
  // The answer goes to every request of the batch (held in the state, so
  // an actor that ends first answers them with an error).
  auto answer = [self](auto&& x) {
    auto asked = std::move(self->state.status_asked);
    self->state.status_asked.clear();
    for (auto& rp : asked)
      rp.deliver(x);
    send_status_scan(self);
  };
  self->request(st.reader, caf::infinite, status_atom::value)
    .then([answer](const status_report& rep) { answer(rep); },
          [answer](caf::error& err) { answer(err); });
}

// The status (every count, the budget, the run): as read(), but requests
// that arrive together share one scan, and at most one is in flight.
caf::result<status_report> read_status(checkpointer_ptr self) {
  auto& st = self->state;
  if (!st.reader)
    return st.db->status();
  auto rp = self->make_response_promise<status_report>();
  st.status_next.push_back(rp);
  send_status_scan(self);
  return rp;
}

std::vector<committed_event> catch_up(checkpointer_ptr self, uint64_t after,
                                      uint32_t limit) {
  auto& st = self->state;
  // Only committed events leave the store.
  commit_open_group(self);
  st.db->raise_event_floor(after);
  return st.db->events_after(after, limit);
}

store::on_conflict conflict_policy(const std::string& name) {
  return name == "skip"      ? store::on_conflict::skip
         : name == "replace" ? store::on_conflict::replace
                             : store::on_conflict::error;
}

// While a streamed submission is open: its transaction is the only one.
behavior_type submitting_behavior(checkpointer_ptr self) {
  auto& db_ = *self->state.db;
  return partial({
    [=, &db_](submit_part_atom, const std::vector<task>& tasks,
              const std::vector<type_definition>& types,
              const std::vector<std::string>& hashes) {
      return db_.submit_part(tasks, types, hashes);
    },
    [=, &db_](end_submit_atom, bool keep) {
      auto counts = db_.end_submission(keep);
      publish(self);
      self->set_default_handler(caf::print_and_drop);
      self->unbecome();
      return counts;
    },
  });
}

behavior_type running_behavior(checkpointer_ptr self) {
  auto& db_ = *self->state.db;
  return {
    // The hot paths first: CAF tries the handlers in order.
    [=, &db_](running_atom, const std::string& id, uint32_t attempt,
              uint64_t reservation_id, uint64_t tokens, double cost,
              const audit_event& started, int64_t seq) {
      grouped_mark(self, mark_answer{id, attempt, false, false, reservation_id},
                   [&] {
                     return db_.mark_running(
                       id, attempt,
                       held_reservation{reservation_id, tokens, cost},
                       started, seq);
                   });
    },
    [=, &db_](complete_atom, const std::string& id, uint32_t attempt,
              const call_outcome& out, const usage& u,
              const audit_event& completed, uint64_t reservation,
              int64_t seq) {
      grouped_mark(self, mark_answer{id, attempt, true, false, reservation},
                   [&] {
                     return db_.mark_completed(id, attempt, out, u, completed,
                                               reservation, seq);
                   });
    },
    [=, &db_](usage_atom, const std::string& id, uint32_t attempt,
              const usage& u, const std::string& provider,
              const std::string& model, const audit_event& failed,
              const std::string& raw_answer, const std::string& answer_error) {
      return grouped(self, [&] {
        return db_.settle_failed(id, attempt, u, provider, model, failed,
                                 raw_answer, answer_error);
      });
    },
    [=, &db_](audit_atom, const audit_event& ev) {
      open_group(self);
      db_.add_event(ev);
    },
    [=, &db_](audit_atom, const std::vector<audit_event>& events) {
      open_group(self);
      for (auto& ev : events)
        db_.add_event(ev);
    },
    [=](commit_group_atom) {
      if (self->state.flush_scheduled)
        commit_group(self);
    },
    [=, &db_](fetch_atom a, int64_t after_priority, int64_t after_seq,
              uint32_t limit) -> caf::result<std::vector<task>> {
      auto here = [&] {
        return db_.fetch_runnable(fetch_cursor{after_priority, after_seq},
                                  limit);
      };
      // While a status scan holds the reader (a count of millions of tasks
      // can outlast the queue), the writer reads it, in its open group.
      if (!self->state.status_asked.empty())
        return here();
      return read(self, here, a, after_priority, after_seq, limit);
    },
    [=, &db_](cached_atom, const std::vector<std::string>& ids,
              const std::vector<std::string>& fingerprints,
              const audit_event& each)
      -> caf::result<std::vector<std::string>> {
      open_group(self);
      auto done = db_.complete_from_cache(ids, fingerprints, each);
      // Nothing found, nothing written: the answer need not wait for the
      // commit (the common case: a lookup before every cacheable call).
      if (done.empty())
        return done;
      auto rp = self->make_response_promise<std::vector<std::string>>();
      self->state.after_commit.push_back(hold(rp, std::move(done)));
      return rp;
    },
    [=, &db_](batch_atom, const batch_row& row,
              const std::vector<batch_member>& members,
              const audit_event& created) {
      return grouped(self,
                     [&] { return db_.create_batch(row, members, created); });
    },
    [=, &db_](batch_atom, const batch_row& row,
              const std::vector<batch_outcome>& outcomes,
              const audit_event& ev) {
      return grouped(self, [&] {
        db_.update_batch(row, outcomes, ev);
        return true;
      });
    },
    [=, &db_](batches_atom, bool open_only) {
      commit_open_group(self);
      return db_.batches(open_only);
    },
    [=, &db_](batches_atom, const std::string& id) {
      commit_open_group(self);
      return db_.batch_members(id);
    },
    [=, &db_](batches_atom, const std::vector<std::string>& ids,
              const std::vector<uint64_t>& rids) {
      std::vector<std::pair<std::string, uint64_t>> pairs;
      for (size_t i = 0; i < ids.size() && i < rids.size(); ++i)
        pairs.emplace_back(ids[i], rids[i]);
      return grouped(self, [&] {
        db_.set_reservation_ids(pairs);
        return true;
      });
    },
    [=](flush_atom) {
      commit_open_group(self);
      if (self->state.file.clock) {
        self->state.floor_asked = true; // the floor goes before the answer
        publish(self);
      }
      return flush_atom::value;
    },
    [=](floor_atom) {
      auto& st = self->state;
      st.floor_asked = true;
      if (!st.flush_scheduled) // else the open group's commit sends it
        publish(self);
    },
    [=](attach_atom, const budget_keeper_actor& keeper) {
      self->state.keeper = keeper;
    },
    [=](catch_up_atom, uint64_t after, uint32_t limit) {
      return catch_up(self, after, limit);
    },
    [=, &db_](submit_atom, const std::vector<task>& tasks) {
      // Its own transaction: all or nothing, whatever is grouped around it.
      commit_open_group(self);
      return db_.submit(tasks);
    },
    [=, &db_](submit_atom, const std::vector<task>& tasks,
              const std::string& source) {
      commit_open_group(self);
      auto rep = db_.submit(tasks, source);
      publish(self);
      return rep;
    },
    [=, &db_](begin_submit_atom, const std::string& source,
              const std::string& on_conflict) {
      commit_open_group(self);
      db_.begin_submission(source, conflict_policy(on_conflict));
      // Until its end, only its parts: anything else waits its turn.
      self->set_default_handler(caf::skip);
      self->become(caf::keep_behavior, submitting_behavior(self));
      return true;
    },
    // Parts and ends outside a submission (between begin and end the
    // submitting behavior handles them).
    [=](submit_part_atom, const std::vector<task>&,
        const std::vector<type_definition>&,
        const std::vector<std::string>&) -> caf::result<submit_report> {
      return caf::make_error(caf::sec::runtime_error,
                             "a submission part without a begin");
    },
    [=](end_submit_atom, bool) -> caf::result<submit_counts> {
      return caf::make_error(caf::sec::runtime_error,
                             "a submission end without a begin");
    },
    [=, &db_](open_run_atom, uint64_t tokens, double cost) {
      commit_open_group(self);
      auto info = db_.open_run(tokens, cost);
      self->state.run_id = info.id;
      publish(self);
      return info;
    },
    [=, &db_](open_run_atom, uint64_t tokens, double cost,
              const std::string& period, const std::string& since) {
      commit_open_group(self);
      auto info = db_.open_run(tokens, cost, period, since);
      self->state.run_id = info.id;
      publish(self);
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
    [=, &db_](retry_atom, const std::string& id, uint32_t attempt,
              const std::string& error, const audit_event& scheduled,
              bool not_counted) {
      return grouped(self, [&] {
        return db_.mark_retry_wait(id, attempt, error, scheduled,
                                   not_counted);
      });
    },
    [=, &db_](quarantine_atom, const std::string& id, uint32_t attempt,
              const std::string& error, const audit_event& quarantined) {
      return grouped(self, [&] {
        return db_.mark_quarantined(id, attempt, error, quarantined);
      });
    },
    [=, &db_](give_back_atom, const std::string& id, uint32_t attempt) {
      return grouped(self, [&] { return db_.mark_pending(id, attempt); });
    },
    [=](status_atom) { return read_status(self); },
    [=, &db_](status_atom, run_atom) { return db_.run_status(); },
    [=, &db_](schedule_atom, const std::string& key) {
      return db_.schedule_fired(key);
    },
    [=, &db_](schedule_atom, const std::string& key, const std::string& at) {
      return grouped(self, [&] {
        db_.set_schedule_fired(key, at);
        return true;
      });
    },
    [=, &db_](circuit_atom, const std::string& key, const std::string& since) {
      open_group(self);
      db_.set_circuit(key, since);
    },
    [=, &db_](status_atom a, tags_atom b) {
      return read(self, [&] { return db_.totals_by_tag(); }, a, b);
    },
    [=, &db_](status_atom a, total_atom b) {
      return read(self, [&] { return db_.count_not_cancelled(); }, a, b);
    },
    [=, &db_](status_atom a, models_atom b) {
      return read(self, [&] { return db_.runnable_models(); }, a, b);
    },
    [=, &db_](status_atom a, provider_atom b) {
      return read(self, [&] { return db_.completed_providers(); }, a, b);
    },
    [=, &db_](results_atom a, const std::string& state) {
      return read(self, [&] { return db_.results(state); }, a, state);
    },
    [=, &db_](results_atom a, const std::string& state, const std::string& tag,
              const std::vector<std::string>& ids, int64_t limit) {
      return read(
        self, [&] { return db_.results(state, tag, ids, limit); }, a, state,
        tag, ids, limit);
    },
    [=, &db_](requeue_atom, const std::vector<std::string>& ids, bool all,
              const audit_event& each) {
      commit_open_group(self);
      auto done = db_.requeue(ids, all, each);
      publish(self);
      return done;
    },
    [=, &db_](requeue_atom, const std::vector<std::string>& ids, bool all,
              const std::string& from_state, const audit_event& each) {
      commit_open_group(self);
      auto done = db_.requeue(ids, all, each, from_state, true);
      publish(self);
      return done;
    },
    [=, &db_](cancel_atom, const std::vector<std::string>& ids,
              const audit_event& each) {
      commit_open_group(self);
      auto done = db_.cancel(ids, each);
      publish(self);
      return done;
    },
  };
}

behavior_type checkpointer(checkpointer_ptr self, std::shared_ptr<store> db,
                           auditor_actor auditor, store_reader_actor reader,
                           store_file file) {
  // Its own thread (detached): named for top, perf and the benches
  // (bg.checkpoint, or bg.checkpoint3 for file 3 of a store of several).
  auto name = std::string("bg.checkpoint") +
              (file.clock ? std::to_string(file.index) : std::string());
  pthread_setname_np(pthread_self(), name.c_str());
  self->state.db = std::move(db);
  self->state.file = std::move(file);
  self->state.run_id = self->state.file.run_id; // limits_atom's run
  if (reader) {
    self->state.reader = reader;
    self->link_to(reader);
  }
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        spdlog::critical("checkpointer: {}", e.what());
        return caf::make_error(caf::sec::runtime_error, e.what());
      }
    });
  auto main = running_behavior(self);
  if (!auditor) {
    self->state.synced = true;
    return main;
  }
  self->state.auditor = auditor;
  self->monitor(auditor);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.auditor.address())
      return;
    st.auditor = nullptr;
    // Events stay in the store; the next auditor writes them. But without
    // the log's last seq no event may be numbered.
    if (!st.synced)
      self->quit(caf::make_error(caf::sec::runtime_error,
                                 "the auditor ended before it told the "
                                 "checkpointer its log's last seq"));
  });
  // Until the auditor's first catch-up request (its answer to the
  // (audit_atom, checkpointer) that spawn_checkpointer sent it), everything
  // else waits in the mailbox.
  self->set_default_handler(caf::skip);
  return partial({
    [=](catch_up_atom, uint64_t after, uint32_t limit) {
      self->state.synced = true;
      self->set_default_handler(caf::print_and_drop);
      self->become(main);
      return catch_up(self, after, limit);
    },
  });
}

} // namespace

checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db) {
  return sys.spawn<caf::detached>(checkpointer,
                                  std::shared_ptr<store>(std::move(db)),
                                  auditor_actor{}, store_reader_actor{},
                                  store_file{});
}

checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      const auditor_actor& auditor,
                                      std::unique_ptr<store> reader) {
  auto cp = spawn_checkpointer(sys, std::move(db), auditor, std::move(reader),
                               store_file{});
  // From the caller's thread, before it returns: an event the caller sends
  // the auditor after this is already behind the pairing in its mailbox.
  if (auditor)
    caf::anon_send(auditor, attach_atom::value, cp);
  return cp;
}

checkpointer_actor spawn_checkpointer(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      const auditor_actor& auditor,
                                      std::unique_ptr<store> reader,
                                      store_file file) {
  store_reader_actor reads;
  if (reader)
    reads = file.clock ? spawn_store_reader(sys, std::move(reader),
                                            file.index, file.scans)
                       : spawn_store_reader(sys, std::move(reader));
  // Detached: SQLite blocks (commits, a busy store) on this actor's own
  // thread, never on one of the scheduler's.
  return sys.spawn<caf::detached>(checkpointer,
                                  std::shared_ptr<store>(std::move(db)),
                                  auditor, reads, std::move(file));
}

} // namespace bgagent
