#include "actors/supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/head_handles.hpp"
#include "actors/node_gateway.hpp"
#include "actors/task_worker.hpp"
#include "messages/atoms.hpp"
#include "messages/call_outcome.hpp"
#include "messages/events.hpp"
#include "messages/mark_answer.hpp"
#include "messages/outcome_kind.hpp"
#include "messages/run.hpp"
#include "messages/supervisor_actor.hpp"
#include "messages/task.hpp"
#include "messages/utf8.hpp"
#include "messages/worker_context.hpp"
#include "policy/restart_window.hpp"
#include "policy/retry_policy.hpp"
#include "policy/run_end.hpp"
#include "policy/shard_merge.hpp"
#include "policy/worker_pool.hpp"
#include "persistence/store.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

// Where the run is; each phase but the first has its own behavior, and the
// phase names the behavior in force (helpers consult it).
enum class phase {
  starting,       // spawned, waiting for (run_atom)
  running,        // fetching and dispatching
  draining,       // stopping: calls in flight finish, nothing new starts
  finishing,      // nothing in flight: the summary is being made
  awaiting_nodes, // summary made, remote workers leaving (at most 3 s)
  over,           // the summary was delivered
};

using pool_type =
  worker_pool<caf::actor_addr, task_worker_actor, node_gateway_actor>;
using worker_slot = pool_type::slot;

struct supervisor_state {
  supervisor_settings settings;
  // Error text -> tasks quarantined with it here, for the summary (bounded:
  // errors that differ per task must not grow it without end).
  std::unordered_map<std::string, uint64_t> quarantine_errors;
  // Task id -> its attempts answered 429 in this run (they count against no
  // retry, up to a cap: retry_policy); erased when the task ends.
  std::unordered_map<std::string, uint32_t> rate_limited;
  // "provider/model" keys whose circuit is open (the rate_keeper says), and
  // the tasks held back for each while one of theirs is at its probe.
  std::unordered_set<std::string> down;
  std::unordered_map<std::string, std::deque<task>> parked;
  size_t parked_count = 0;
  // More were due to be parked than are kept: they stay in the store (not
  // held) and fetching waits until a circuit closes.
  bool parked_full = false;
  run_handles h;
  provider_ptr prov;
  // Workers by address; with the attempts whose answer is being stored
  // after their worker went on (their done or skipped follows, or their
  // gateway's end drops them).
  pool_type pool;
  // A failed outcome went to the monitor since the last completion it
  // heard of: the next completion goes to it as a message, in order.
  bool failure_streak = false;
  std::deque<task> queue;
  std::unordered_set<std::string> held; // queued, in flight or waiting
  std::unordered_map<std::string, task> waiting; // retry timers running
  // Run order (priority, then seq) over the store's feeds: one per store
  // file, so one today (docs/plans/sharded-store.md). It keeps each feed's
  // cursor, whether it is exhausted, and the ids let go while a fetch was
  // out (let_go()).
  shard_merge<task> feeds{1}; // set to the store's files at the start
  uint32_t fetches_out = 0; // answers not yet back, stale ones included
  bool rescanned = false; // final look for tasks added during the run
  uint32_t outstanding = 0; // store writes not yet acknowledged
  bool paused = false;
  // stay_on_budget: denied, waiting for the keeper's figures to change
  // from these (looked at on each poll).
  bool budget_wait = false;
  bool budget_asking = false;
  budget_snapshot denied_at;
  clock_type::time_point denied_when; // the last denial
  enum phase phase = phase::starting;
  run_stop stop;
  retry_policy retries{retry_settings{}};
  restart_window restarts{0, 0};
  uint32_t next_worker = 0;
  std::unordered_map<std::string, std::string> node_addresses; // joined nodes
  // The head's half of local attempts (supervisor_settings::local_gateways).
  std::vector<node_gateway_actor> local_gateways;
  // Cluster-edge actors (gatekeeper, remote gateways) watched for failure.
  std::unordered_map<caf::actor_addr, std::string> edges;
  run_summary summary;
  clock_type::time_point started = clock_type::now();
  caf::typed_response_promise<run_summary> rp;
  std::mt19937_64 rng{std::random_device{}()};
  static inline const char* name = "supervisor";
};

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;
using behavior_type = supervisor_actor::behavior_type;

void dispatch(supervisor_ptr self);
void maybe_finish(supervisor_ptr self);
behavior_type draining(supervisor_ptr self);
behavior_type finishing(supervisor_ptr self);
behavior_type awaiting_nodes(supervisor_ptr self);

// Draining or later: nothing new starts.
bool stopping(const supervisor_state& st) {
  return st.phase >= phase::draining;
}

// The summary is made or being made: workers' messages are stale.
bool finished(const supervisor_state& st) {
  return st.phase >= phase::finishing;
}

void deliver_summary(supervisor_ptr self) {
  auto& st = self->state;
  st.phase = phase::over;
  st.rp.deliver(st.summary);
}

// Tasks asked of the store at once: a few per worker, but at most 8,192,
// so one fetch never holds the store's reader long (40,000 tasks took
// ~50 ms at 10,000 workers).
uint32_t fetch_batch(const supervisor_state& st) {
  return std::clamp<uint32_t>(st.settings.workers * 4, 1024, 8192);
}

// Each file's share of a fetch (its feed buffers about that much).
uint32_t fetch_batch_per_file(const supervisor_state& st) {
  auto files = static_cast<uint32_t>(std::max<size_t>(st.h.store.size(), 1));
  return std::max<uint32_t>(fetch_batch(st) / files, 64);
}

// The queue is topped up below this: half a fetch, and at least one task
// per worker, so a round of answers finds the next tasks in memory.
size_t refill_below(const supervisor_state& st) {
  return std::max<size_t>(fetch_batch(st) / 2, st.settings.workers);
}

void audit(supervisor_ptr self, const std::string& event, const std::string& id,
           int32_t attempt, const std::string& detail,
           const std::string& node = {}) {
  self->send(self->state.h.auditor, make_event(event, id, attempt, detail,
                                               node));
}

void report_workers(supervisor_ptr self) {
  auto& st = self->state;
  std::unordered_set<std::string> nodes;
  for (auto& kv : st.pool)
    nodes.insert(kv.second.node);
  self->send(st.h.monitor, workers_atom::value,
             static_cast<uint64_t>(st.pool.size()),
             static_cast<uint64_t>(nodes.size()));
}

// A new local worker: worker N on gateway (N-1) % G at the start; a
// replacement on the gateway of the worker it replaces (`on`), so the
// spread stays even whatever dies.
void spawn_local_worker(supervisor_ptr self,
                        const node_gateway_actor* on = nullptr) {
  auto& st = self->state;
  auto n = ++st.next_worker;
  const auto gateway =
    on ? *on : st.local_gateways[(n - 1) % st.local_gateways.size()];
  worker_context ctx{gateway};
  worker_settings ws;
  ws.name = st.settings.node + "/worker-" + std::to_string(n);
  ws.node = st.settings.node;
  ws.timeout_seconds = st.settings.timeout_seconds;
  ws.heartbeat_seconds = st.settings.heartbeat_seconds;
  ws.alive = std::make_shared<std::atomic<int64_t>>(0);
  auto w = spawn_task_worker(self->system(), ctx, st.prov, ws);
  self->monitor(w);
  worker_slot slot;
  slot.handle = w;
  slot.gateway = gateway;
  slot.name = ws.name;
  slot.node = ws.node;
  slot.alive = ws.alive;
  st.pool.add(w.address(), std::move(slot));
}

void stop(supervisor_ptr self, run_stop why) {
  auto& st = self->state;
  if (st.phase == phase::running) {
    st.phase = phase::draining;
    self->become(draining(self));
    st.stop = std::move(why);
    // Calls still waiting for their turn do not go.
    if (st.h.rate_keeper)
      self->send(st.h.rate_keeper, drain_atom::value);
    spdlog::info("stopping: {}; waiting for {} call(s) in flight",
                 st.stop.text(), st.pool.busy() + st.pool.storing());
  }
  maybe_finish(self);
}

// A task no longer held (done, quarantined, cancelled, given back). The
// store reader answers fetches, from a snapshot that may predate what let
// the task go: a fetch out meanwhile could bring back a task completed
// since as pending, dispatched again only for the store to refuse it. So
// its id is noted, and that fetch's answer leaves it out.
void let_go(supervisor_state& st, const std::string& id) {
  st.held.erase(id);
  st.feeds.let_go(id);
}

// Whether a fetch is out (its answer may still bring tasks).
bool fetching(const supervisor_state& st) {
  return st.fetches_out > 0;
}

void fetch(supervisor_ptr self) {
  auto& st = self->state;
  if (stopping(st) || st.parked_full)
    return;
  for (auto k : st.feeds.to_fetch()) {
    auto ticket = st.feeds.fetching(k);
    auto after = st.feeds.cursor(k);
    auto batch = fetch_batch_per_file(st);
    ++st.fetches_out;
    self->request(st.h.store.files[k], caf::infinite, fetch_atom::value,
                  after.priority, after.seq, batch)
      .then([=](std::vector<task>& tasks) {
        auto& st = self->state;
        --st.fetches_out;
        bool exhausted = tasks.size() < batch;
        st.feeds.fetched(k, ticket, std::move(tasks), exhausted);
        while (auto t = st.feeds.next())
          if (st.held.insert(t->id).second)
            st.queue.push_back(std::move(*t));
        dispatch(self);
        maybe_finish(self);
      });
  }
}

// The rate_keeper's key for the model an attempt of `t` starts at.
std::string rate_key_of(const supervisor_state& st, const task& t) {
  auto chain = model_chain(t);
  auto& m = chain[std::min<size_t>(t.model_index, chain.size() - 1)];
  return st.prov->name() + "/" + (m.empty() ? st.prov->model() : m);
}

// Tasks parked in memory at most; more stay in the store until a circuit
// closes.
constexpr size_t max_parked = 10000;

// Whether an attempt of `t` can only go to `key` (no model after it).
bool only_on(const supervisor_state& st, const task& t,
             const std::string& key) {
  return t.model_index + 1 >= model_chain(t).size() &&
         rate_key_of(st, t) == key;
}

// Whether a worker holds a task that can only go to `key` (the one the
// probe comes from).
bool one_out(const supervisor_state& st, const std::string& key) {
  for (auto& kv : st.pool)
    if (kv.second.busy && only_on(st, kv.second.current, key))
      return true;
  return false;
}

// While its model's circuit is open, a task with no other model to try
// waits here if a worker already holds one of that model's tasks (the one
// the probe will come from): workers stay free for the other models. When
// none does, the longest parked goes instead of `t` (swapped), so each
// probe is another task's: one the provider cannot serve never holds the
// circuit open alone.
bool park(supervisor_state& st, task& t) {
  if (st.down.empty() || !st.prov)
    return false;
  auto key = rate_key_of(st, t);
  if (!st.down.count(key) || !only_on(st, t, key))
    return false;
  auto waiting = st.parked.find(key);
  if (!one_out(st, key)) {
    if (waiting != st.parked.end() && !waiting->second.empty()) {
      waiting->second.push_back(std::move(t));
      t = std::move(waiting->second.front());
      waiting->second.pop_front();
    }
    return false;
  }
  if (st.parked_count >= max_parked) {
    // Left in the store (pending or retry_wait): fetched again later.
    let_go(st, t.id);
    st.parked_full = true;
    return true;
  }
  st.parked[key].push_back(std::move(t));
  ++st.parked_count;
  return true;
}

// A down model none of whose tasks is out (the one at the probe failed,
// was cancelled or quarantined): its longest parked task goes next.
void release_probes(supervisor_state& st) {
  for (auto i = st.parked.begin(); i != st.parked.end();) {
    if (!i->second.empty() && st.pool.has_idle() && !one_out(st, i->first)) {
      st.queue.push_front(std::move(i->second.front()));
      i->second.pop_front();
      --st.parked_count;
    }
    i = i->second.empty() ? st.parked.erase(i) : std::next(i);
  }
}

// Every task parked for `key` goes back to the queue (its circuit closed),
// and what was left in the store is fetched again.
void unpark(supervisor_ptr self, const std::string& key) {
  auto& st = self->state;
  if (auto i = st.parked.find(key); i != st.parked.end()) {
    for (auto t = i->second.rbegin(); t != i->second.rend(); ++t)
      st.queue.push_front(std::move(*t));
    st.parked_count -= i->second.size();
    st.parked.erase(i);
  }
  if (st.parked_full) {
    st.parked_full = false;
    st.feeds.reset(); // from the top: tasks went back behind the cursor
  }
}

void dispatch(supervisor_ptr self) {
  auto& st = self->state;
  if (!st.parked.empty() && !stopping(st))
    release_probes(st);
  while (!st.paused && !st.budget_wait && !stopping(st) &&
         st.pool.has_idle() && !st.queue.empty()) {
    auto t = std::move(st.queue.front());
    st.queue.pop_front();
    if (park(st, t))
      continue;
    auto& slot = st.pool.assign(std::move(t), clock_type::now())->second;
    // Through the worker's gateway, which records what it may accept back
    // and passes it on anonymously: a remote worker never receives the
    // supervisor's handle (CAF would make it addressable from the network).
    self->send(slot.gateway, dispatch_atom::value, slot.handle, slot.current,
               slot.attempt);
  }
  if (st.queue.size() < refill_below(st))
    fetch(self);
}

// Who sent the current message (a gateway reports as itself).
caf::actor_addr sender_addr(supervisor_ptr self) {
  return self->current_sender()
           ? caf::actor_cast<caf::actor_addr>(self->current_sender())
           : caf::actor_addr{};
}

// The slot of `worker` if it is busy with exactly this attempt and the
// current message comes from its gateway; else null (a stale report, or
// one from any other actor).
worker_slot* reported_slot(supervisor_ptr self, const caf::actor_addr& worker,
                           const std::string& id, uint32_t attempt) {
  auto from = sender_addr(self);
  if (!worker || !from) // (a null address must not reach the pool's hash)
    return nullptr;
  auto* slot = self->state.pool.busy_with(worker, id, attempt);
  if (!slot || slot->gateway.address() != from)
    return nullptr;
  return slot;
}

// An attempt's done or skipped: settles its stored answer (reported by the
// gateway storing it), or idles `worker` still busy with it (null for a
// commit's answers, which only settle); false for a stale report.
bool attempt_reported(supervisor_ptr self, const caf::actor_addr& worker,
                      const std::string& id, uint32_t attempt) {
  auto& pool = self->state.pool;
  auto from = sender_addr(self);
  if (from && pool.settle(id, attempt, from))
    return true;
  return reported_slot(self, worker, id, attempt) && pool.release(worker);
}

void quarantine(supervisor_ptr self, const task& t, uint32_t attempt,
                const std::string& error) {
  auto& st = self->state;
  ++st.outstanding;
  // Audited in the store's transaction that quarantines it.
  self->request(st.h.store.of(t.id), caf::infinite, quarantine_atom::value, t.id,
                attempt, error,
                make_event("task_quarantined", t.id,
                           static_cast<int32_t>(attempt), error))
    .then([=](bool) {
      auto& st = self->state;
      --st.outstanding;
      ++st.summary.quarantined;
      // Keys are cut (a node's error text has no bound of its own); once
      // 1000 differ, only those already seen are counted.
      auto key = utf8_clip(error, 300, "...");
      if (auto i = st.quarantine_errors.find(key);
          i != st.quarantine_errors.end())
        ++i->second;
      else if (st.quarantine_errors.size() < 1000)
        st.quarantine_errors.emplace(std::move(key), 1);
      self->send(st.h.monitor, outcome_atom::value, outcome_kind::quarantined,
                 t.id);
      let_go(st, t.id);
      maybe_finish(self);
    });
}

void schedule_retry(supervisor_ptr self, task t, uint32_t attempt,
                    const call_outcome& out, const retry_decision& d,
                    bool not_counted) {
  auto& st = self->state;
  double delay = d.delay_seconds;
  ++st.outstanding;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "retry in %.3f s%s: ", delay,
                d.from_retry_after ? " (Retry-After)" : "");
  std::string why = buf + out.error;
  if (d.next_model) {
    auto chain = model_chain(t);
    auto& model = chain[std::min<size_t>(t.model_index, chain.size() - 1)];
    why = "falls back to model " + (model.empty() ? "MODEL" : model) +
          " at once: " + out.error;
  }
  // Audited in the store's transaction that schedules it.
  self->request(st.h.store.of(t.id), caf::infinite, retry_atom::value, t.id,
                attempt, out.error,
                make_event("task_retry_scheduled", t.id,
                           static_cast<int32_t>(attempt), why),
                not_counted)
    .then([=](bool) mutable {
      auto& st = self->state;
      --st.outstanding;
      ++st.summary.retries;
      self->send(st.h.monitor, outcome_atom::value, outcome_kind::retry, t.id);
      t.attempts = attempt;
      if (!out.raw_answer.empty()) {
        // The repair turn, as the store keeps it for a later run.
        t.repair_answer = utf8_clip(sanitize_utf8(out.raw_answer),
                                    max_repair_answer_chars);
        t.repair_error = utf8_clip(sanitize_utf8(out.answer_error),
                                   max_repair_error_chars);
      }
      auto id = t.id;
      st.waiting.emplace(id, std::move(t));
      self->delayed_send(self,
                         std::chrono::microseconds(
                           static_cast<int64_t>(delay * 1e6)),
                         retry_due_atom::value, id);
      maybe_finish(self);
    });
}

// One attempt of `t` failed: the retry policy decides between retry,
// quarantine and stopping the run.
void attempt_failed(supervisor_ptr self, const task& t, uint32_t attempt,
                    const call_outcome& out) {
  auto& st = self->state;
  // A failure that is the provider's being down was told once already
  // (provider_unavailable): it does not also escalate as the tasks'.
  if (!out.provider_fault) {
    self->send(st.h.monitor, outcome_atom::value, outcome_kind::failed,
               t.id);
    st.failure_streak = true;
  }
  // The provider's faults count against no retry: a run's first 429s of
  // the task, and its failures while the provider was down.
  bool free = out.provider_fault;
  if (out.http_status == 429 && out.error_class() == error_kind::retryable)
    free = free || st.retries.rate_limit_is_free(++st.rate_limited[t.id]);
  // Where the attempt's model is in the task's list (it may have fallen
  // back from the one it started at).
  auto chain = model_chain(t);
  auto used = static_cast<size_t>(t.model_index);
  // (Never before the one it started at: a node's word moves no task back.)
  for (size_t i = used; i < chain.size(); ++i)
    if (!out.model.empty() && chain[i] == out.model)
      used = i;
  auto d = st.retries.decide(out, attempt, st.rng,
                             t.free_attempts + (free ? 1 : 0),
                             used + 1 < chain.size());
  if (d.what != retry_decision::action::retry)
    st.rate_limited.erase(t.id);
  switch (d.what) {
    case retry_decision::action::stop_run: {
      // Not the task's fault: it goes back to pending, attempt not counted.
      self->send(st.h.monitor, alert_atom::value,
                 alert{severity::critical, "out_of_credits",
                       "provider refused for lack of credits: " + out.error,
                       t.id});
      ++st.outstanding;
      self->request(st.h.store.of(t.id), caf::infinite, give_back_atom::value,
                    t.id, attempt)
        .then([=](bool) {
          --self->state.outstanding;
          let_go(self->state, t.id);
          maybe_finish(self);
        });
      stop(self, run_stop{stop_reason::out_of_credits});
      return;
    }
    case retry_decision::action::quarantine:
      quarantine(self, t, attempt, d.error);
      return;
    case retry_decision::action::retry: {
      auto next = t;
      if (d.next_model)
        next.model_index = static_cast<uint32_t>(used + 1);
      // A model that refused counts against no retry either.
      if (free || d.next_model)
        ++next.free_attempts;
      schedule_retry(self, std::move(next), attempt, out, d,
                     free || d.next_model);
      return;
    }
  }
}

// A worker is gone mid-task (crashed, hung, or its node was lost).
// `crashed`: the worker itself failed (counts the attempt); otherwise its
// node was lost or left (the attempt is given back).
void worker_lost(supervisor_ptr self, worker_slot slot, const std::string& why,
                 bool crashed = true) {
  auto& st = self->state;
  if (slot.remote) {
    // The monitor stops watching its heartbeats: the node is gone.
    self->send(st.h.monitor, heartbeat_atom::value, slot.name, false,
               std::string{});
    if (!st.pool.has_node(slot.node) &&
        st.node_addresses.erase(slot.node) > 0) {
      audit(self, "node_lost", {}, -1, why, slot.node);
      self->send(st.h.monitor, alert_atom::value,
                 alert{severity::warning, "node_lost",
                       "worker node " + slot.node + " lost (" + why +
                         "); its tasks go back to the queue",
                       {}});
    }
  }
  if (slot.remote && !crashed) {
    // Not the task's fault: give the attempt back and run it elsewhere.
    if (slot.busy) {
      auto t = slot.current;
      ++st.outstanding;
      self->request(st.h.store.of(t.id), caf::infinite, give_back_atom::value, t.id,
                    slot.attempt)
        .then([=](bool) mutable {
          auto& st = self->state;
          --st.outstanding;
          st.queue.push_front(std::move(t));
          dispatch(self);
          maybe_finish(self);
        });
    }
    report_workers(self);
    return;
  }
  ++st.summary.restarts;
  audit(self, "worker_restarted", slot.busy ? slot.current.id : std::string{},
        slot.busy ? static_cast<int32_t>(slot.attempt) : -1,
        slot.name + " " + why);
  self->send(st.h.monitor, outcome_atom::value, outcome_kind::restart,
             slot.busy ? slot.current.id : std::string{});
  if (st.restarts.record(clock_type::now()) && !stopping(st)) {
    self->send(st.h.monitor, alert_atom::value,
               alert{severity::critical, "restart_intensity",
                     std::to_string(st.restarts.in_window()) +
                       " worker restarts within " +
                       std::to_string(static_cast<int>(
                         st.settings.restart_window_seconds)) +
                       " s (limit " +
                       std::to_string(st.settings.max_restarts) +
                       "): stopping the run",
                     {}});
    stop(self, run_stop{stop_reason::restart_intensity});
  }
  if (!slot.remote)
    spawn_local_worker(self, &slot.gateway); // a node replaces its own
  else
    report_workers(self);
  if (slot.busy)
    attempt_failed(self, slot.current, slot.attempt,
                   make_failure(error_kind::retryable, "worker " + why));
  dispatch(self);
}

void finish(supervisor_ptr self) {
  auto& st = self->state;
  st.phase = phase::finishing;
  self->become(finishing(self));
  // The run is over: the dead man's switch stops watching the supervisor.
  self->send(st.h.monitor, heartbeat_atom::value, std::string("supervisor"),
             false, std::string{});
  self->request(st.h.store.main(), caf::infinite, status_atom::value)
    .then(
      [=](const status_report& rep) {
        auto& st = self->state;
        st.summary.store = rep.tasks;
        for (auto& kv : st.quarantine_errors)
          st.summary.quarantine_errors.push_back({kv.first, kv.second});
        auto& errs = st.summary.quarantine_errors;
        std::sort(errs.begin(), errs.end(), [](auto& a, auto& b) {
          return a.tasks != b.tasks ? a.tasks > b.tasks : a.error < b.error;
        });
        if (errs.size() > 3)
          errs.resize(3);
        st.summary.stop_reason = st.stop.text();
        auto& c = rep.tasks;
        st.summary.exit_code = exit_code_for(
          st.stop, c.pending + c.retry_wait + c.running > 0);
        st.summary.wall_seconds =
          std::chrono::duration<double>(clock_type::now() - st.started)
            .count();
        // Remote workers too: their nodes see them end and leave cleanly.
        // The summary waits (at most 3 s) until every remote worker is
        // gone: a head that exited at once could close the connection
        // before the word reached the nodes, which would then take the
        // end of the run for a lost head.
        bool remote = false;
        for (auto& kv : st.pool) {
          caf::anon_send_exit(kv.second.handle,
                              caf::exit_reason::user_shutdown);
          remote |= kv.second.remote;
        }
        if (!remote) {
          deliver_summary(self);
          return;
        }
        st.phase = phase::awaiting_nodes;
        self->become(awaiting_nodes(self));
        self->delayed_send(self, std::chrono::seconds(3),
                           nodes_waited_atom::value);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        run_stop failed{stop_reason::internal, 0, to_string(err)};
        st.summary.exit_code = exit_code_for(failed, true);
        st.summary.stop_reason = failed.text();
        deliver_summary(self);
      });
}

void maybe_finish(supervisor_ptr self) {
  auto& st = self->state;
  if (st.phase == phase::starting || finished(st) || fetching(st) ||
      st.outstanding > 0)
    return;
  if (st.pool.busy() > 0 || st.pool.storing() > 0)
    return;
  if (stopping(st)) {
    finish(self);
    return;
  }
  if (!st.queue.empty() || !st.waiting.empty() || !st.parked.empty() ||
      st.parked_full || !st.feeds.drained())
    return;
  if (st.settings.follow)
    return; // the poll timer looks again
  if (!st.rescanned) {
    // Tasks submitted or requeued by another process during the run sit
    // behind the cursor: look once more from the start.
    st.rescanned = true;
    st.feeds.reset();
    fetch(self);
    return;
  }
  finish(self);
}

void cancelled(supervisor_ptr self, std::vector<std::string> done,
               caf::typed_response_promise<std::vector<std::string>> rp);

// Cancels pending / retry_wait / quarantined tasks and forgets them here;
// `each` (when named) is committed with each cancellation.
caf::typed_response_promise<std::vector<std::string>>
cancel_tasks(supervisor_ptr self, const std::vector<std::string>& ids,
             const audit_event& each) {
  auto& st = self->state;
  auto rp = self->make_response_promise<std::vector<std::string>>();
  // Each file cancels its own tasks; the answers are joined in `done`.
  auto files = st.h.store.size();
  std::vector<std::vector<std::string>> by_file(files);
  for (auto& id : ids)
    by_file[files == 1 ? 0 : shard_of(id, static_cast<uint32_t>(files))]
      .push_back(id);
  auto done = std::make_shared<std::vector<std::string>>();
  auto left = std::make_shared<size_t>(0);
  for (size_t k = 0; k < files; ++k)
    *left += by_file[k].empty() && k != 0 ? 0 : 1; // main's always asked
  for (size_t k = 0; k < files; ++k) {
    if (by_file[k].empty() && k != 0)
      continue;
    self->request(st.h.store.files[k], caf::infinite, cancel_atom::value,
                  by_file[k], each)
      .then([=](const std::vector<std::string>& part) mutable {
        done->insert(done->end(), part.begin(), part.end());
        if (--*left == 0)
          cancelled(self, std::move(*done), rp);
      });
  }
  return rp;
}

// The tasks cancelled in the store, forgotten here too.
void cancelled(supervisor_ptr self, std::vector<std::string> done,
               caf::typed_response_promise<std::vector<std::string>> rp) {
      auto& st = self->state;
      std::unordered_set<std::string> gone(done.begin(), done.end());
      st.queue.erase(std::remove_if(st.queue.begin(), st.queue.end(),
                                    [&](const task& t) {
                                      return gone.count(t.id) > 0;
                                    }),
                     st.queue.end());
      for (auto& id : done) {
        st.waiting.erase(id);
        let_go(st, id);
      }
      for (auto& [key, waiting] : st.parked) {
        auto before = waiting.size();
        waiting.erase(std::remove_if(waiting.begin(), waiting.end(),
                                     [&](const task& t) {
                                       return gone.count(t.id) > 0;
                                     }),
                      waiting.end());
        st.parked_count -= before - waiting.size();
      }
      rp.deliver(done);
      maybe_finish(self);
}

// -- handlers shared by several phases ---------------------------------------

// An attempt completed (its answer committed): false for a stale report.
bool completed(supervisor_ptr self, const caf::actor_addr& worker,
               const std::string& id, uint32_t attempt) {
  auto& st = self->state;
  if (!attempt_reported(self, worker, id, attempt))
    return false;
  let_go(st, id);
  st.rate_limited.erase(id);
  ++st.summary.completed;
  if (st.failure_streak) {
    // Ends the monitor's count of consecutive failures, in order.
    st.failure_streak = false;
    self->send(st.h.monitor, outcome_atom::value, outcome_kind::completed,
               id);
  } else {
    st.h.counters->completed();
  }
  return true;
}

// An attempt that ended with nothing stored: false for a stale report.
bool skipped(supervisor_ptr self, const caf::actor_addr& worker,
             const std::string& id, uint32_t attempt) {
  if (!attempt_reported(self, worker, id, attempt))
    return false;
  let_go(self->state, id);
  return true;
}

// An attempt's end (a cache hit), sent by the worker's gateway.
auto on_done(supervisor_ptr self) {
  return [=](done_atom, const caf::actor_addr& worker, const std::string& id,
             uint32_t attempt) {
    if (!completed(self, worker, id, attempt))
      return;
    dispatch(self);
    maybe_finish(self);
  };
}

// A gateway's answers from one commit of the store, for attempts it freed:
// one message, one dispatch, for all of them.
auto on_stored(supervisor_ptr self) {
  return [=](done_atom, const std::vector<mark_answer>& answers) {
    bool any = false;
    for (auto& m : answers)
      any |= m.written ? completed(self, {}, m.id, m.attempt)
                       : skipped(self, {}, m.id, m.attempt);
    if (!any)
      return;
    dispatch(self);
    maybe_finish(self);
  };
}

auto on_failed(supervisor_ptr self) {
  return [=](failed_atom, const caf::actor_addr& worker,
             const std::string& id, uint32_t attempt,
             const call_outcome& out) {
    auto* slot = reported_slot(self, worker, id, attempt);
    if (!slot)
      return; // stale: not the attempt it holds
    auto t = slot->current;
    self->state.pool.release(worker);
    attempt_failed(self, t, attempt, out);
    dispatch(self);
    maybe_finish(self);
  };
}

auto on_denied(supervisor_ptr self) {
  return [=](denied_atom, const caf::actor_addr& worker,
             const std::string& id, uint32_t attempt,
             const std::string& reason) {
    auto& st = self->state;
    auto* slot = reported_slot(self, worker, id, attempt);
    if (!slot)
      return; // stale: not the attempt it holds
    auto t = slot->current;
    st.pool.release(worker);
    if (st.settings.stay_on_budget && !stopping(st)) {
      // Still pending in the store; first in line once there is room.
      st.queue.push_front(std::move(t));
      st.denied_when = clock_type::now();
      if (!st.budget_wait) {
        st.budget_wait = true;
        spdlog::warn("budget exhausted: {}; waiting for more (a raised "
                     "limit or the next period)",
                     reason);
        self->send(st.h.monitor, pause_atom::value, true);
      }
      self->request(st.h.budget_keeper, caf::infinite, budget_atom::value)
        .then([=](const budget_snapshot& b) { self->state.denied_at = b; });
      return;
    }
    // Still pending in the store: it waits for a run with more budget.
    let_go(st, t.id);
    if (!stopping(st))
      spdlog::warn("budget exhausted: {}", reason);
    stop(self, run_stop{stop_reason::budget});
  };
}

// stay_on_budget: dispatching resumes once the keeper's figures show more
// room than at the last denial.
void look_at_budget(supervisor_ptr self) {
  auto& st = self->state;
  if (!st.budget_wait || st.budget_asking)
    return;
  st.budget_asking = true;
  self->request(st.h.budget_keeper, caf::infinite, budget_atom::value)
    .then([=](const budget_snapshot& b) {
      auto& st = self->state;
      st.budget_asking = false;
      auto& d = st.denied_at;
      bool more_room = b.tokens_limit > d.tokens_limit ||
                       b.cost_limit > d.cost_limit ||
                       b.tokens_used < d.tokens_used ||
                       b.cost_used < d.cost_used ||
                       b.tokens_reserved < d.tokens_reserved ||
                       b.cost_reserved < d.cost_reserved;
      // The figures at the denial were read just after it, so a change
      // between the two may hide in them: a try a minute settles it (at
      // most one budget_denied line a minute while nothing fits).
      bool a_while = clock_type::now() - st.denied_when >=
                     std::chrono::seconds(60);
      if ((!more_room && !a_while) || !st.budget_wait)
        return;
      st.budget_wait = false;
      spdlog::info("budget: room again (tokens {} of {}, cost ${:.6f} of "
                   "${:.2f}); dispatching",
                   b.tokens_used, b.tokens_limit, b.cost_used, b.cost_limit);
      if (!st.paused)
        self->send(st.h.monitor, pause_atom::value, false);
      dispatch(self);
    });
}

auto on_skipped(supervisor_ptr self) {
  return [=](skipped_atom, const caf::actor_addr& worker,
             const std::string& id, uint32_t attempt) {
    if (!skipped(self, worker, id, attempt))
      return;
    dispatch(self);
    maybe_finish(self);
  };
}

// An answer is being stored: its worker takes the next attempt now, while
// the store commits (two commits per attempt would otherwise idle it).
auto on_freed(supervisor_ptr self) {
  return [=](freed_atom, const caf::actor_addr& worker,
             const std::string& id, uint32_t attempt) {
    auto* slot = reported_slot(self, worker, id, attempt);
    if (!slot || !self->state.pool.freed(worker, id, attempt,
                                         slot->gateway.address()))
      return; // stale: not the attempt it holds
    dispatch(self);
  };
}

auto on_pause(supervisor_ptr self) {
  return [=](pause_atom) {
    self->state.paused = true;
    self->send(self->state.h.monitor, pause_atom::value, true);
    return true;
  };
}

auto on_resume(supervisor_ptr self) {
  return [=](resume_atom) {
    self->state.paused = false;
    if (!self->state.budget_wait)
      self->send(self->state.h.monitor, pause_atom::value, false);
    dispatch(self);
    return true;
  };
}

auto on_drain(supervisor_ptr self) {
  return [=](drain_atom) {
    stop(self, run_stop{stop_reason::drain});
    return true;
  };
}

auto on_signal(supervisor_ptr self) {
  return [=](drain_atom, int32_t signal) {
    stop(self, run_stop{stop_reason::signal, signal});
    return true;
  };
}

// Stop at once: calls in flight are abandoned and their tasks go back to
// pending (the attempt is not counted); nodes are told to leave.
auto on_shutdown(supervisor_ptr self) {
  return [=](shutdown_atom) {
    auto& st = self->state;
    auto busy = st.pool.keys_where([](auto& s) { return s.busy; });
    for (auto& addr : busy) {
      auto slot = *st.pool.remove(addr);
      self->demonitor(slot.handle.address());
      caf::anon_send_exit(slot.handle, caf::exit_reason::user_shutdown);
      auto t = slot.current;
      ++st.outstanding;
      self->request(st.h.store.of(t.id), caf::infinite, give_back_atom::value,
                    t.id, slot.attempt)
        .then([=](bool) {
          --self->state.outstanding;
          let_go(self->state, t.id);
          maybe_finish(self);
        });
    }
    stop(self, run_stop{stop_reason::shutdown});
    return true;
  };
}

// `each` (task_cancelled) is committed with each cancellation.
auto on_cancel(supervisor_ptr self) {
  return [=](cancel_atom, const std::vector<std::string>& ids,
             const audit_event& each) { return cancel_tasks(self, ids, each); };
}

auto on_workers(supervisor_ptr self) {
  return [=](workers_atom) {
    std::vector<std::string> out;
    for (auto& kv : self->state.pool)
      out.push_back(kv.second.node + " " + kv.second.name + " " +
                    (kv.second.busy ? "busy " + kv.second.current.id
                                    : std::string("idle")));
    std::sort(out.begin(), out.end());
    return out;
  };
}

auto on_watch(supervisor_ptr self) {
  return [=](watch_atom, const caf::actor& edge, const std::string& what) {
    if (!edge)
      return;
    self->state.edges.emplace(edge.address(), what);
    self->monitor(edge);
  };
}

// The dead man's switch hears from the supervisor; a local worker silent
// (no heartbeat) for far longer than its own timeout is presumed hung and
// replaced. One that beats is not hung, however long its attempt waits on
// the store (another process's large submit holds the write lock, or the
// store catches up after it).
auto on_tick(supervisor_ptr self) {
  return [=](tick_atom) {
    auto& st = self->state;
    self->send(st.h.monitor, heartbeat_atom::value,
               std::string("supervisor"), true, std::string{});
    auto now = clock_type::now();
    auto limit = std::chrono::duration<double>(
      st.settings.timeout_seconds +
      std::max(5.0, st.settings.timeout_seconds / 2) +
      st.settings.heartbeat_seconds);
    auto hung = st.pool.keys_where([&](auto& s) {
      return !s.remote && pool_type::silent_for(s, now, limit);
    });
    for (auto& addr : hung) {
      auto slot = *st.pool.remove(addr);
      self->send_exit(slot.handle, caf::exit_reason::kill);
      worker_lost(self, std::move(slot), "hung past its timeout");
    }
    self->delayed_send(self,
                       std::chrono::milliseconds(static_cast<int64_t>(
                         st.settings.heartbeat_seconds * 1000)),
                       tick_atom::value);
  };
}

auto already_running() {
  return [](run_atom) -> caf::result<run_summary> {
    return caf::make_error(caf::sec::runtime_error,
                           "the run has started already");
  };
}

// Nodes may join only a run that still starts work.
auto refuse_join() {
  return [](join_atom, const std::string&, const std::string&,
            const std::vector<task_worker_actor>&,
            const std::vector<std::string>&) { return false; };
}

// -- the phases --------------------------------------------------------------

// Looks for tasks submitted or requeued since (and, waiting for budget,
// whether there is room again).
void poll(supervisor_ptr self) {
  auto& st = self->state;
  look_at_budget(self);
  if (!fetching(st) && st.queue.empty()) {
    st.feeds.reset();
    fetch(self);
  }
}

// Following: the next poll in BG_AGENT_POLL_INTERVAL.
void arm_poll_timer(supervisor_ptr self) {
  auto& st = self->state;
  if (st.settings.follow)
    self->delayed_send(self,
                       std::chrono::milliseconds(static_cast<int64_t>(
                         st.settings.poll_interval_seconds * 1000)),
                       poll_timer_atom::value);
}

// Fetching and dispatching until the queue is drained (or, following, for
// good); a stop reason moves it to draining.
behavior_type running(supervisor_ptr self) {
  return {
    on_done(self), on_stored(self), on_failed(self), on_denied(self),
    on_skipped(self), on_freed(self), on_pause(self), on_resume(self),
    on_drain(self), on_signal(self),
    on_shutdown(self), on_cancel(self), on_workers(self), on_watch(self),
    on_tick(self), already_running(),
    [=](poll_atom) { poll(self); },
    [=](poll_timer_atom) {
      poll(self);
      arm_poll_timer(self);
    },
    [=](retry_due_atom, const std::string& id) {
      auto& st = self->state;
      auto i = st.waiting.find(id);
      if (i == st.waiting.end())
        return;
      st.queue.push_front(std::move(i->second));
      st.waiting.erase(i);
      dispatch(self);
    },
    // From a remote node's gateway, which vouches for the node and address.
    [=](join_atom, const std::string& node, const std::string& address,
        const std::vector<task_worker_actor>& remote_workers,
        const std::vector<std::string>& names) {
      auto& st = self->state;
      for (size_t k = 0; k < remote_workers.size(); ++k) {
        auto& w = remote_workers[k];
        if (!w || st.pool.find(w.address()))
          continue;
        self->monitor(w);
        worker_slot slot;
        slot.handle = w;
        slot.gateway =
          caf::actor_cast<node_gateway_actor>(self->current_sender());
        slot.name = k < names.size() ? names[k]
                                     : node + "/worker-" + std::to_string(k + 1);
        slot.node = node;
        slot.remote = true;
        st.pool.add(w.address(), std::move(slot));
      }
      bool first = st.node_addresses.emplace(node, address).second;
      auto n = remote_workers.size();
      audit(self, first ? "node_joined" : "node_workers_added", {}, -1,
            std::to_string(n) + " worker(s) from " + address, node);
      spdlog::info("node {} ({}) {} with {} worker(s)", node, address,
                   first ? "joined" : "added", n);
      report_workers(self);
      dispatch(self);
      return true;
    },
    [](nodes_waited_atom) {},
    [=](circuit_atom, const std::string& key, bool open) {
      auto& st = self->state;
      if (open) {
        st.down.insert(key);
        return;
      }
      st.down.erase(key);
      unpark(self, key);
      dispatch(self);
    },
    [=](outage_atom, const std::string& key, double seconds) {
      char secs[32];
      std::snprintf(secs, sizeof(secs), "%.0f", seconds);
      self->send(self->state.h.monitor, alert_atom::value,
                 alert{severity::critical, "provider_outage",
                       key + " has been down for " + secs +
                         " s (BG_AGENT_OUTAGE_MAX): the run stops, its "
                         "tasks wait for the next run",
                       {}});
      stop(self, run_stop{stop_reason::outage, 0, key});
    },
  };
}

// Stopping: calls in flight finish, nothing new starts; a task whose retry
// wait ends stays retry_wait in the store (resumable).
behavior_type draining(supervisor_ptr self) {
  return {
    on_done(self), on_stored(self), on_failed(self), on_denied(self),
    on_skipped(self), on_freed(self), on_pause(self), on_resume(self),
    on_drain(self), on_signal(self),
    on_shutdown(self), on_cancel(self), on_workers(self), on_watch(self),
    on_tick(self), already_running(), refuse_join(),
    [](poll_atom) {},
    [](poll_timer_atom) {},
    [=](retry_due_atom, const std::string& id) {
      auto& st = self->state;
      if (st.waiting.erase(id) == 0)
        return;
      let_go(st, id);
      maybe_finish(self);
    },
    [](nodes_waited_atom) {},
    [](outage_atom, const std::string&, double) {},
    [](circuit_atom, const std::string&, bool) {},
  };
}

// The handlers of a run whose work is over: commands are answered, nothing
// moves any more. `on_nodes_waited` is what the 3 s timer does.
template <class NodesWaited>
behavior_type ended(supervisor_ptr self, NodesWaited on_nodes_waited) {
  return {
    [](done_atom, const caf::actor_addr&, const std::string&, uint32_t) {},
    [](done_atom, const std::vector<mark_answer>&) {},
    [](failed_atom, const caf::actor_addr&, const std::string&, uint32_t,
       const call_outcome&) {},
    [](denied_atom, const caf::actor_addr&, const std::string&, uint32_t,
       const std::string&) {},
    [](skipped_atom, const caf::actor_addr&, const std::string&, uint32_t) {},
    [](freed_atom, const caf::actor_addr&, const std::string&, uint32_t) {},
    on_pause(self), on_resume(self), on_drain(self), on_signal(self),
    on_shutdown(self), on_cancel(self), on_workers(self), on_watch(self),
    already_running(), refuse_join(),
    [](tick_atom) {},
    [](poll_atom) {},
    [](poll_timer_atom) {},
    [](retry_due_atom, const std::string&) {},
    [](outage_atom, const std::string&, double) {},
    [](circuit_atom, const std::string&, bool) {},
    on_nodes_waited,
  };
}

// Nothing in flight: the store's counts for the summary are on their way.
behavior_type finishing(supervisor_ptr self) {
  return ended(self, [](nodes_waited_atom) {});
}

// The summary is made; remote workers are told to leave and the summary
// waits (at most 3 s) until every one is gone: a head that exited at once
// could close the connection before the word reached the nodes, which
// would then take the end of the run for a lost head.
behavior_type awaiting_nodes(supervisor_ptr self) {
  return ended(self, [=](nodes_waited_atom) { // slow to leave
    if (self->state.phase == phase::awaiting_nodes)
      deliver_summary(self);
  });
}

// Spawned: nothing happens until (run_atom); anything else waits for it.
behavior_type starting(supervisor_ptr self) {
  self->set_default_handler(caf::skip);
  return behavior_type{
    behavior_type::unsafe_init{},
    caf::behavior{
      [=](run_atom) {
        auto& st = self->state;
        self->set_default_handler(caf::print_and_drop);
        st.rp = self->make_response_promise<run_summary>();
        st.phase = phase::running;
        self->become(running(self));
        for (uint32_t i = 0; i < st.settings.workers; ++i)
          spawn_local_worker(self);
        report_workers(self);
        self->send(self, tick_atom::value);
        arm_poll_timer(self);
        fetch(self);
        return st.rp;
      },
    }};
}

behavior_type supervisor(supervisor_ptr self, supervisor_settings s,
                         run_handles h, provider_ptr p) {
  auto& st = self->state;
  st.settings = std::move(s);
  st.retries = retry_policy{retry_settings{
    st.settings.max_retries, st.settings.retry_initial_seconds,
    st.settings.retry_factor, st.settings.retry_cap_seconds,
    st.settings.retry_after_cap_seconds}};
  st.restarts = restart_window{st.settings.max_restarts,
                               st.settings.restart_window_seconds};
  st.h = std::move(h);
  st.feeds = shard_merge<task>(std::max<size_t>(st.h.store.size(), 1));
  if (!st.h.counters)
    st.h.counters = std::make_shared<call_counters>();
  st.prov = std::move(p);
  gateway_settings gs;
  gs.node = st.settings.node;
  gs.cache = st.settings.cache;
  gs.response_format = st.settings.response_format;
  gs.cache_known = st.settings.cache_known;
  auto gateways = st.settings.local_gateways;
  if (gateways == 0)
    gateways = std::clamp<uint32_t>(
      static_cast<uint32_t>(self->system().scheduler().num_workers()), 1,
      std::max<uint32_t>(st.settings.workers, 1));
  for (uint32_t k = 0; k < gateways; ++k) {
    st.local_gateways.push_back(spawn_node_gateway(
      self->system(),
      head_handles{caf::actor_cast<supervisor_actor>(self),
                   st.h.budget_keeper, st.h.store, st.h.auditor,
                   st.h.monitor, st.h.counters, st.h.rate_keeper, {}},
      gs));
    spdlog::debug("local gateway {} actor id {}", k + 1,
                  st.local_gateways.back().id());
  }
  // The gateways refuse exit messages; they end with the supervisor.
  self->attach_functor([gws = st.local_gateways](const caf::error&) {
    for (auto& gw : gws)
      caf::anon_send_exit(gw, caf::exit_reason::kill);
  });
  std::vector<caf::actor_addr> internal{
    st.h.budget_keeper.address(), st.h.auditor.address(),
    st.h.monitor.address()};
  for (auto& file : st.h.store.files) {
    internal.push_back(file.address());
    self->monitor(file);
  }
  for (auto& gw : st.local_gateways) {
    internal.push_back(gw.address());
    self->monitor(gw);
  }
  if (st.h.rate_keeper) {
    internal.push_back(st.h.rate_keeper.address());
    self->monitor(st.h.rate_keeper);
    // Told when a provider stays down past BG_AGENT_OUTAGE_MAX.
    self->send(st.h.rate_keeper, outage_atom::value,
               caf::actor_cast<supervisor_actor>(self));
  }
  self->monitor(st.h.budget_keeper);
  self->monitor(st.h.auditor);
  self->monitor(st.h.monitor);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (auto e = st.edges.find(dm.source); e != st.edges.end()) {
      // The cluster edge failed: the run carries on with what it has.
      auto what = e->second;
      st.edges.erase(e);
      // Answers that gateway was storing will not be reported: the store
      // has them or not, and the run's end does not wait for them.
      for (auto& id : st.pool.drop_storing_of(dm.source))
        let_go(st, id);
      maybe_finish(self);
      if (dm.reason == caf::exit_reason::normal || finished(st))
        return;
      auto msg = what + " ended (" + to_string(dm.reason) +
                 "); the run carries on with the workers it has";
      spdlog::critical("{}", msg);
      audit(self, "alert", {}, -1, "cluster_edge_failed: " + msg);
      self->send(st.h.monitor, alert_atom::value,
                 alert{severity::critical, "cluster_edge_failed", msg, {}});
      return;
    }
    if (std::find(internal.begin(), internal.end(), dm.source) !=
        internal.end()) {
      spdlog::critical("internal actor failed: {}", to_string(dm.reason));
      if (st.phase == phase::running || st.phase == phase::draining) {
        run_stop failed{stop_reason::internal, 0, to_string(dm.reason)};
        st.summary.exit_code = exit_code_for(failed, true);
        st.summary.stop_reason = failed.text();
        self->become(finishing(self));
        deliver_summary(self);
      }
      return;
    }
    auto* gone = st.pool.find(dm.source);
    if (gone && finished(st)) {
      st.pool.remove(dm.source);
      if (st.phase == phase::awaiting_nodes && st.pool.remote_count() == 0)
        deliver_summary(self);
      return;
    }
    if (!gone)
      return;
    // A remote worker ends with its node (link lost, node stopped) or on
    // its own (crashed: the attempt counts, as for a local worker).
    bool node_gone = dm.reason == caf::exit_reason::user_shutdown ||
                     dm.reason == caf::exit_reason::remote_link_unreachable ||
                     dm.reason == caf::exit_reason::kill;
    bool crashed = !gone->remote || !node_gone;
    auto why = gone->remote
                 ? (crashed ? "died on its node: " : "lost with its node: ") +
                     to_string(dm.reason)
                 : "died: " + to_string(dm.reason);
    auto slot = *st.pool.remove(dm.source);
    worker_lost(self, std::move(slot), why, crashed);
    maybe_finish(self);
  });
  return starting(self);
}

} // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_settings s, run_handles h,
                                  provider_ptr p) {
  return sys.spawn(supervisor, std::move(s), std::move(h), std::move(p));
}

} // namespace bgagent
