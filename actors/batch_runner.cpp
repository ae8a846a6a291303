#include "actors/batch_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/batch.hpp"
#include "messages/json_codec.hpp"
#include "messages/task.hpp"
#include "policy/run_end.hpp"
#include "providers/batch_lines.hpp"
#include "providers/http_outcome.hpp"
#include "providers/http_provider.hpp"
#include "providers/task_request.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

// Outcomes written to the store per message: a 50,000-line batch is
// applied in ten transactions, never one that holds the store for long.
constexpr size_t apply_chunk = 5000;
// Tasks fetched from the queue per request.
constexpr uint32_t fetch_page = 4096;

int64_t unix_of(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 ||
      std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year,
                  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec) != 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::string local_batch_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[24];
  std::snprintf(buf, sizeof(buf), "b-%016llx",
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string money(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "$%.6f", x);
  return buf;
}

// One open batch and what the runner keeps about it between polls.
struct open_batch {
  batch_row row;
  std::string file;      // its request file, until uploaded
  bool overdue = false;  // batch_overdue raised
  std::string last_warning;
  // Taken up from the store (an earlier run, a crash): a provider batch
  // may exist that the row does not name yet.
  bool taken_up = false;
  // It cannot be followed (the provider does not know it any more, or
  // cannot say whether it made it): alerted once; the run does not wait
  // for it, and it stays open in the store.
  bool stuck = false;
};

// A task ready to go into a batch: its request line and worst case.
struct prepared {
  task t;
  std::string model;
  std::string fingerprint; // the response cache's key, "" none
  std::string line;
  uint64_t tokens = 0;
  double cost = 0;
};

class runner {
public:
  runner(caf::blocking_actor* self, batch_runner_settings s,
         batch_runner_handles h, provider_ptr p)
    : self_(self), s_(std::move(s)), h_(std::move(h)), prov_(std::move(p)),
      api_(s_.api) {}

  void main() {
    bool quit = false;
    self_->receive([&](run_atom) { rp_ = self_->make_response_promise(); },
                   [&](caf::exit_msg&) { quit = true; },
                   [&](drain_atom, int32_t) {
                     quit = true;
                     return true;
                   });
    if (quit)
      return; // the run ended before it began (an error at start)
    started_ = clock_type::now();
    try {
      take_up_open();
      loop();
    } catch (const std::exception& e) {
      spdlog::error("batch runner: {}", e.what());
      stop_ = run_stop(stop_reason::internal, 0, e.what());
    }
    publish_progress();
    rp_.deliver(summary());
  }

private:
  // -- asking the other actors (blocking) ------------------------------
  template <class T, class Dest, class... Ts>
  T ask(const Dest& dest, Ts&&... xs) {
    T out{};
    bool failed = false;
    std::string why;
    self_->request(dest, caf::infinite, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out = std::move(x); },
               [&](caf::error& e) {
                 failed = true;
                 why = self_->system().render(e);
               });
    if (failed)
      throw std::runtime_error("an actor of the head did not answer: " + why);
    return out;
  }

  void beat(bool busy) {
    self_->send(h_.monitor, heartbeat_atom::value,
                std::string("batch_runner"), busy, std::string());
  }

  void audit(audit_event ev) {
    ev.node = s_.node;
    self_->send(h_.auditor, std::move(ev));
  }

  void alert_of(severity level, const char* kind, const std::string& msg) {
    spdlog::warn("{}: {}", kind, msg);
    self_->send(h_.monitor, alert_atom::value,
                alert{level, kind, msg, std::string()});
  }

  // -- prices ----------------------------------------------------------
  model_price batch_price(const std::string& model) const {
    auto p = prov_->price_of(model);
    auto scale = [&](double batch, double live) {
      return batch >= 0 ? batch : live * s_.discount;
    };
    model_price b = p;
    b.prompt_per_million =
      scale(p.batch_prompt_per_million, p.prompt_per_million);
    b.completion_per_million =
      scale(p.batch_completion_per_million, p.completion_per_million);
    if (p.cached_prompt_per_million >= 0)
      b.cached_prompt_per_million = p.cached_prompt_per_million * s_.discount;
    if (p.reasoning_per_million >= 0)
      b.reasoning_per_million = p.reasoning_per_million * s_.discount;
    return b;
  }

  std::string model_of(const task& t) const {
    auto m = model_chain(t).front();
    return m.empty() ? prov_->model() : m;
  }

  // The exact body the live path would send, as a request line; "" when
  // the task cannot be sent (its stored type is unusable, a chat body
  // that is not an object).
  std::string line_of(const task& t, const std::string& model) const {
    auto req = request_for(t, model);
    if (req.unusable())
      return {};
    auto body = http_provider::request_body(model, req, s_.response_format);
    if (body.empty())
      return {};
    return batch_request_line(t.id, body);
  }

  // -- the store's batches ---------------------------------------------
  void save(open_batch& b, std::vector<batch_outcome> outcomes = {},
            audit_event ev = {}) {
    if (!ev.event.empty())
      ev.node = s_.node;
    ask<bool>(h_.checkpointer, batch_atom::value, b.row, std::move(outcomes),
              std::move(ev));
  }

  // Batches open in the store (a crash, a --detach, another run's). Their
  // tasks' reservations were held again before this run reserved anything
  // (hold_open_batch_reservations, run_command).
  void take_up_open() {
    auto rows = ask<std::vector<batch_row>>(h_.checkpointer,
                                            batches_atom::value, true);
    std::reverse(rows.begin(), rows.end()); // oldest first
    for (auto& row : rows) {
      spdlog::info("batch {} ({}, {} task(s), {}) taken up from an earlier "
                   "run",
                   row.id, to_string(row.state), row.tasks, row.model);
      open_batch b;
      b.row = std::move(row);
      b.taken_up = true;
      open_.push_back(std::move(b));
    }
  }

  // -- the loop --------------------------------------------------------
  void loop() {
    for (;;) {
      beat(true);
      for (auto& b : open_)
        if (!draining_)
          advance(b);
      open_.erase(std::remove_if(open_.begin(), open_.end(),
                                 [](const open_batch& b) {
                                   return is_ended(b.row.state);
                                 }),
                  open_.end());
      bool more = false;
      // No new batch while one waits to be uploaded or created (the
      // provider refuses or is down): they would pile up in memory.
      bool blocked = std::any_of(open_.begin(), open_.end(),
                                 [](const open_batch& b) {
                                   return b.row.state < batch_state::submitted;
                                 });
      if (s_.submit && !draining_ && !budget_stopped_ && !blocked &&
          stop_.reason == stop_reason::none)
        more = submit_pending();
      publish_progress();
      if (draining_)
        return;
      bool waiting = std::any_of(open_.begin(), open_.end(),
                                 [](const open_batch& b) { return !b.stuck; });
      if (!s_.follow) {
        if (s_.detach && !more && !blocked)
          return;
        if (!waiting && !more)
          return;
      }
      if (more)
        continue; // what did not fit in this round's batches
      wait(s_.poll_seconds);
    }
  }

  // Waits, answering drain and cancel, until the time is up or a drain.
  void wait(double seconds) {
    beat(false); // waiting for the provider is not silence
    auto deadline = clock_type::now() +
                    std::chrono::duration_cast<clock_type::duration>(
                      std::chrono::duration<double>(seconds));
    while (!draining_) {
      auto left = deadline - clock_type::now();
      if (left <= clock_type::duration::zero())
        return;
      self_->receive(
        [&](drain_atom, int32_t sig) {
          draining_ = true;
          signal_ = sig;
          return true;
        },
        [&](cancel_atom, const std::string& id) { return cancel(id); },
        [&](caf::exit_msg&) { draining_ = true; },
        caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(
                     left) +
                   std::chrono::milliseconds(1)) >>
          [] {});
    }
  }

  // Messages that arrived while it worked (a drain, a cancel).
  void look_at_mailbox() {
    bool any = true;
    while (any && !draining_) {
      any = false;
      self_->receive(
        [&](drain_atom, int32_t sig) {
          any = true;
          draining_ = true;
          signal_ = sig;
          return true;
        },
        [&](cancel_atom, const std::string& id) {
          any = true;
          return cancel(id);
        },
        [&](caf::exit_msg&) { draining_ = true; },
        caf::after(std::chrono::milliseconds(0)) >> [] {});
    }
  }

  std::string cancel(const std::string& id) {
    if (id.empty())
      return "no batch id given";
    for (auto& b : open_) {
      if (b.row.id != id && b.row.provider_batch_id != id)
        continue;
      if (is_ended(b.row.state) || b.row.state == batch_state::cancelling)
        return "batch " + id + " is " + to_string(b.row.state) + " already";
      auto cancelled = [&](const std::string& how) {
        return make_event("batch_cancelled", {}, -1,
                          "batch " + b.row.id + " (" +
                            b.row.provider_batch_id + "): " + how);
      };
      try {
        beat(false);
        // Created just before a crash? Then the provider has it.
        remote_batch rb;
        if (b.row.provider_batch_id.empty() && b.taken_up &&
            b.row.state == batch_state::uploaded &&
            find_created(b, rb)) {
          b.row.provider_batch_id = rb.id;
          b.row.submitted_at = now_rfc3339();
        }
        if (b.row.provider_batch_id.empty()) {
          // Never reached the provider: nothing of it will be done.
          b.row.state = batch_state::cancelling;
          save(b, {}, cancelled("never sent, cancelled here"));
          collect(b, remote_batch{}, batch_state::cancelled);
          return {};
        }
        api_.cancel(b.row.provider_batch_id);
        b.row.state = batch_state::cancelling;
        save(b, {}, cancelled("cancel asked of the provider"));
        return {};
      } catch (const std::exception& e) {
        return e.what();
      }
    }
    return "no open batch " + id;
  }

  // -- one batch, one step ---------------------------------------------
  void advance(open_batch& b) {
    look_at_mailbox();
    if (draining_ || is_ended(b.row.state))
      return;
    try {
      if (b.row.state == batch_state::preparing)
        upload(b);
      if (b.row.state == batch_state::uploaded)
        create(b);
      else if (!is_ended(b.row.state))
        poll(b);
    } catch (const batch_api_error& e) {
      remote_error(b, e);
    } catch (const std::exception& e) {
      // An answer or a file it cannot read (or memory): the batch stays
      // open in the store for a later run, never failed here.
      follow_no_more(b, std::string("cannot read what the provider sent: ") +
                          e.what());
    }
    look_overdue(b);
  }

  void remote_error(open_batch& b, const batch_api_error& e) {
    if (e.retryable()) {
      if (b.last_warning != e.what())
        spdlog::warn("batch {}: {} (tried again in {} s)", b.row.id,
                     e.what(), s_.poll_seconds);
      b.last_warning = e.what();
      return;
    }
    if (!b.row.provider_batch_id.empty() ||
        (b.taken_up && b.row.state == batch_state::uploaded)) {
      // The provider has it (or may have it): failing it here would send
      // its tasks again while the provider runs and bills them.
      follow_no_more(b, e.what());
      return;
    }
    // Refused before any provider batch existed (the file, the create):
    // nothing was sent, nothing is billed. Its tasks go back to the queue
    // without an attempt counted, and no new batch is made: the same
    // refusal would follow.
    spdlog::error("batch {}: {}", b.row.id, e.what());
    b.row.error = e.what();
    give_back(b);
    bool credits = e.status() == 402 ||
                   contains_text(e.what(), "insufficient_quota");
    stop_ = credits ? run_stop(stop_reason::out_of_credits)
                    : run_stop(stop_reason::outage, 0,
                               prov_->name() + " refused the batch: " +
                                 e.what());
    alert_of(severity::critical,
             credits ? "out_of_credits" : "batch_refused",
             "batch " + b.row.id + ": " + e.what() +
               "; its tasks are back in the queue, no new batch is made");
  }

  static bool contains_text(const std::string& s, const char* part) {
    return s.find(part) != std::string::npos;
  }

  // A batch that cannot be followed: alerted once, left open in the store.
  void follow_no_more(open_batch& b, const std::string& why) {
    if (b.stuck)
      return;
    b.stuck = true;
    b.row.error = why;
    alert_of(severity::critical, "batch_unreachable",
             "batch " + b.row.id +
               (b.row.provider_batch_id.empty()
                  ? std::string()
                  : " (" + b.row.provider_batch_id + ")") +
               ": " + why +
               "; it stays open with its tasks running and their "
               "reservations held; a later run tries again (admin "
               "cancel-batch gives its tasks back)");
    try {
      save(b);
    } catch (const std::exception&) {
    }
  }

  // A batch still open an hour past its window (from its creation while
  // it has not reached the provider): one critical alert.
  void look_overdue(open_batch& b) {
    if (b.overdue || is_ended(b.row.state))
      return;
    auto since = unix_of(b.row.submitted_at.empty() ? b.row.created_at
                                                    : b.row.submitted_at);
    if (since <= 0 || std::time(nullptr) - since <= s_.window_seconds + 3600)
      return;
    b.overdue = true;
    alert_of(severity::critical, "batch_overdue",
             "batch " + b.row.id + " (" + b.row.provider_batch_id +
               ") is still " + to_string(b.row.state) + " " +
               std::to_string((std::time(nullptr) - since) / 3600) +
               " h after it was " +
               (b.row.submitted_at.empty() ? "made" : "submitted") +
               " (window " +
               std::to_string(static_cast<int64_t>(s_.window_seconds / 3600)) +
               " h)");
  }

  // Every task of a batch the provider never had back to the queue, its
  // attempt not counted, its reservation released at no charge.
  void give_back(open_batch& b) {
    auto members = ask<std::vector<batch_member>>(
      h_.checkpointer, batches_atom::value, b.row.id);
    std::vector<batch_outcome> outcomes;
    for (auto& m : members) {
      batch_outcome o;
      o.task_id = m.t.id;
      o.attempt = m.attempt;
      o.reservation = m.reservation;
      o.verdict = batch_verdict::give_back;
      o.out = make_failure(error_kind::retryable,
                           "batch " + b.row.id + " not taken by the "
                           "provider: " + b.row.error);
      o.out.provider = prov_->name();
      o.out.model = b.row.model;
      o.ended = make_event("task_failed", m.t.id,
                           static_cast<int32_t>(m.attempt),
                           o.out.error + "; back to pending, not counted",
                           s_.node);
      outcomes.push_back(std::move(o));
    }
    b.row.state = batch_state::failed;
    b.row.failed = members.size();
    b.row.ended_at = now_rfc3339();
    save(b, std::move(outcomes),
         make_event("batch_ended", {}, -1,
                    "batch " + b.row.id + " failed before the provider had "
                    "it: " + b.row.error));
  }

  void upload(open_batch& b) {
    if (b.file.empty()) { // taken up after a crash: the same lines again
      auto members = ask<std::vector<batch_member>>(
        h_.checkpointer, batches_atom::value, b.row.id);
      for (auto& m : members) {
        auto line = line_of(m.t, b.row.model);
        if (!line.empty())
          b.file += line + "\n";
      }
    }
    beat(false);
    auto id = api_.upload(b.row.id + ".jsonl", b.file);
    beat(true);
    b.file.clear();
    b.file.shrink_to_fit();
    b.row.input_file_id = id;
    b.row.state = batch_state::uploaded;
    save(b);
  }

  void create(open_batch& b) {
    beat(false);
    // Created just before a crash? Then it is that one, never a second.
    remote_batch rb;
    bool found = b.taken_up && find_created(b, rb);
    if (!found)
      rb = api_.create(b.row.input_file_id, b.row.id);
    beat(true);
    b.row.provider_batch_id = rb.id;
    b.row.submitted_at = now_rfc3339();
    auto next = next_state(batch_state::submitted, rb.status);
    take_counts(b.row, rb);
    if (is_ended(next)) {
      b.row.state = batch_state::finalizing;
      save(b, {}, submitted_event(b, found));
      collect(b, rb, next);
      return;
    }
    b.row.state = next;
    save(b, {}, submitted_event(b, found));
  }

  // The provider batch this row made before a crash, found by its local
  // id and its file. A provider that cannot list batches cannot say: then
  // nothing is created (never a second batch), the batch cannot be
  // followed, and an alert says so.
  bool find_created(open_batch& b, remote_batch& rb) {
    try {
      if (!api_.find(b.row.id, rb))
        return false;
    } catch (const batch_api_error& e) {
      if (e.retryable())
        throw;
      throw batch_api_error("cannot tell whether batch " + b.row.id +
                              " was created before the restart (listing "
                              "batches failed: " + e.what() + ")",
                            e.status(), false);
    }
    if (!b.row.input_file_id.empty() && !rb.input_file_id.empty() &&
        rb.input_file_id != b.row.input_file_id)
      throw batch_api_error("the provider's batch " + rb.id + " names batch " +
                              b.row.id + " but another file (" +
                              rb.input_file_id + ")",
                            0, false);
    return true;
  }

  audit_event submitted_event(const open_batch& b, bool found) {
    return make_event("batch_submitted", {}, -1,
                      "batch " + b.row.id + " is provider batch " +
                        b.row.provider_batch_id + " (" +
                        std::to_string(b.row.tasks) + " task(s), " +
                        b.row.model + ")" +
                        (found ? ", found again after a restart" : ""));
  }

  static void take_counts(batch_row& row, const remote_batch& rb) {
    row.remote_total = rb.total;
    row.remote_completed = rb.completed;
    row.remote_failed = rb.failed;
    if (!rb.error.empty())
      row.error = rb.error;
  }

  void poll(open_batch& b) {
    beat(false);
    auto rb = api_.get(b.row.provider_batch_id);
    beat(true);
    if (rb.id != b.row.provider_batch_id ||
        (!rb.local_id.empty() && rb.local_id != b.row.id))
      throw batch_api_error("the provider answered for batch " + rb.id +
                              " (" + rb.local_id + ") when asked for " +
                              b.row.provider_batch_id,
                            0, false);
    auto next = next_state(b.row.state, rb.status);
    bool changed = next != b.row.state || rb.completed != b.row.remote_completed ||
                   rb.failed != b.row.remote_failed;
    take_counts(b.row, rb);
    if (is_ended(next)) {
      collect(b, rb, next);
      return;
    }
    b.row.state = next;
    if (changed)
      save(b);
  }

  // -- results ---------------------------------------------------------
  void read_lines(const std::string& file_id, const char* what,
                  std::map<std::string, batch_result_line>& into,
                  const std::string& batch) {
    if (file_id.empty())
      return;
    beat(false);
    auto text = api_.content(file_id);
    beat(true);
    size_t n = 0;
    size_t bad = 0;
    for (size_t at = 0; at < text.size();) {
      auto end = text.find('\n', at);
      if (end == std::string::npos)
        end = text.size();
      std::string line = text.substr(at, end - at);
      at = end + 1;
      ++n;
      if (line.empty())
        continue;
      batch_result_line r;
      std::string why;
      if (!parse_batch_result_line(line, r, why)) {
        if (++bad <= 3)
          spdlog::warn("batch {}: {} file {} line {}: {}", batch, what,
                       file_id, n, why);
        continue;
      }
      // The output file's answer wins over an error line for the same id.
      auto found = into.find(r.custom_id);
      if (found == into.end() || (found->second.status != 200 &&
                                  r.status == 200))
        into[r.custom_id] = std::move(r);
    }
  }

  batch_outcome judge(const batch_member& m, const std::string& model,
                      const batch_result_line* line, batch_state final,
                      bool taken_up) {
    batch_outcome o;
    o.task_id = m.t.id;
    o.attempt = m.attempt;
    o.reservation = m.reservation;
    usage held{m.reserved_tokens, 0, m.reserved_cost};
    if (line && line->status != 0) {
      outcome_context ctx;
      ctx.provider = prov_->name();
      ctx.model = model;
      ctx.schema = m.t.schema;
      ctx.price = batch_price(model);
      ctx.secret = s_.secret;
      ctx.raw = m.t.raw;
      http_response r;
      r.complete = true;
      r.status = line->status;
      r.body = line->body;
      o.out = interpret_response(r, ctx);
      bool billed = line->status >= 200 && line->status <= 299;
      if (o.out.usage_reported)
        o.spent = usage{o.out.prompt_tokens, o.out.completion_tokens,
                        o.out.cost_usd};
      else if (billed)
        o.spent = held; // an answer without believable usage
    } else {
      std::string why =
        line ? line->error
             : std::string("left undone by the provider (batch ") +
                 to_string(final) + ")";
      o.out = make_failure(error_kind::retryable, "batch: " + why);
      o.out.provider = prov_->name();
      o.out.model = model;
    }
    if (o.out.usage_invalid)
      alert_of(severity::critical, "lying_usage",
               "task " + m.t.id + " (batch line): " + o.out.error);
    if (o.out.ok) {
      o.verdict = batch_verdict::completed;
      // Cached under the request this run would send: a batch made by an
      // earlier run (other settings) is not cached.
      if (s_.cache && !taken_up)
        o.out.fingerprint = request_fingerprint(m.t, prov_->name(), model,
                                                s_.response_format);
      char detail[160];
      std::snprintf(detail, sizeof(detail),
                    "%llu prompt + %llu completion tokens, $%.6f (batch price)",
                    static_cast<unsigned long long>(o.spent.prompt_tokens),
                    static_cast<unsigned long long>(o.spent.completion_tokens),
                    o.spent.cost_usd);
      o.ended = make_event("task_completed", m.t.id,
                           static_cast<int32_t>(m.attempt), detail, s_.node);
      return o;
    }
    o.ended = make_event("task_failed", m.t.id,
                         static_cast<int32_t>(m.attempt), o.out.error,
                         s_.node);
    uint32_t counted = m.attempt > m.t.free_attempts
                         ? m.attempt - m.t.free_attempts
                         : 0;
    bool permanent = o.out.error_class() == error_kind::permanent;
    if (permanent || counted > s_.max_retries) {
      o.verdict = batch_verdict::quarantine;
      if (!permanent)
        o.out.error += " (after " + std::to_string(m.attempt) + " attempts)";
      o.next = make_event("task_quarantined", m.t.id,
                          static_cast<int32_t>(m.attempt), o.out.error,
                          s_.node);
    } else {
      o.verdict = batch_verdict::retry;
      o.next = make_event("task_retry_scheduled", m.t.id,
                          static_cast<int32_t>(m.attempt),
                          s_.retry_live ? "to run live"
                                        : "into a new batch",
                          s_.node);
    }
    return o;
  }

  // An ended batch: every line applied, every task left undone sent back,
  // then the row closed, in chunks of apply_chunk outcomes.
  void collect(open_batch& b, const remote_batch& rb, batch_state final) {
    std::map<std::string, batch_result_line> lines;
    read_lines(rb.output_file_id, "output", lines, b.row.id);
    read_lines(rb.error_file_id, "error", lines, b.row.id);
    b.row.output_file_id = rb.output_file_id;
    b.row.error_file_id = rb.error_file_id;
    auto members = ask<std::vector<batch_member>>(
      h_.checkpointer, batches_atom::value, b.row.id);
    std::vector<batch_outcome> chunk;
    for (size_t i = 0; i < members.size(); ++i) {
      auto& m = members[i];
      auto found = lines.find(m.t.id);
      auto o = judge(m, b.row.model,
                     found == lines.end() ? nullptr : &found->second, final,
                     b.taken_up);
      b.row.cost_usd += o.spent.cost_usd;
      if (o.verdict == batch_verdict::completed) {
        ++b.row.completed;
        ++completed_;
        h_.counters->completed();
      } else {
        ++b.row.failed;
        (o.verdict == batch_verdict::retry ? retries_ : quarantined_)++;
      }
      chunk.push_back(std::move(o));
      if (chunk.size() == apply_chunk && i + 1 < members.size()) {
        save(b, std::move(chunk));
        chunk.clear();
      }
    }
    b.row.state = final;
    b.row.ended_at = now_rfc3339();
    if (!rb.error.empty())
      b.row.error = rb.error;
    auto detail = "batch " + b.row.id + " (" + b.row.provider_batch_id +
                  ") " + to_string(final) + ": " +
                  std::to_string(b.row.completed) + " completed, " +
                  std::to_string(b.row.failed) + " failed or undone, " +
                  money(b.row.cost_usd) +
                  (b.row.error.empty() ? "" : "; " + b.row.error);
    save(b, std::move(chunk), make_event("batch_ended", {}, -1, detail));
    spdlog::info("{}", detail);
  }

  // -- new batches -------------------------------------------------------
  // Puts pending tasks into new batches (at most max_requests tasks a
  // round, so a million pending never sit in memory at once); true when
  // more are left for another round.
  bool submit_pending() {
    std::map<std::string, std::vector<prepared>> by_model;
    std::vector<std::string> order; // models, as they first come
    fetch_cursor cursor;
    size_t taken = 0;
    // One batch's worth a round: what waits for the next round stays in
    // the store, not in memory.
    size_t cap = s_.limits.max_requests;
    bool more = false;
    for (;;) {
      auto page = ask<std::vector<task>>(h_.checkpointer, fetch_atom::value,
                                         cursor.priority, cursor.seq,
                                         fetch_page);
      std::vector<prepared> fresh;
      for (auto& t : page) {
        cursor = fetch_cursor{t.priority, t.seq};
        if (s_.retry_live && t.attempts > 0)
          continue; // its retry runs live, after the batches
        if (taken >= cap) {
          more = true;
          break;
        }
        auto model = model_of(t);
        auto line = line_of(t, model);
        if (line.empty()) {
          quarantine_unusable(t);
          continue;
        }
        auto req = request_for(t, model);
        prepared p;
        auto est = prov_->estimate_prompt_tokens(req);
        p.tokens = est + req.max_tokens;
        p.cost = batch_price(model).cost(est, req.max_tokens);
        p.line = std::move(line);
        p.model = model;
        if (s_.cache)
          p.fingerprint = request_fingerprint(t, prov_->name(), model,
                                              s_.response_format);
        // Only what the batch needs of the task is kept: its line holds
        // the request.
        p.t.id = std::move(t.id);
        p.t.attempts = t.attempts;
        fresh.push_back(std::move(p));
        ++taken;
      }
      auto answered = complete_from_cache(fresh);
      for (auto& p : fresh) {
        if (answered.count(p.t.id))
          continue;
        if (!by_model.count(p.model))
          order.push_back(p.model);
        by_model[p.model].push_back(std::move(p));
      }
      if (more || page.size() < fetch_page)
        break;
    }
    for (auto& model : order) {
      auto& group = by_model[model];
      std::vector<size_t> sizes;
      for (auto& p : group)
        sizes.push_back(p.line.size() + 1);
      for (auto [begin, end] : split_batches(sizes, s_.limits)) {
        if (budget_stopped_ || draining_)
          return false;
        start_batch(model, group, begin, end);
      }
    }
    return more && !budget_stopped_;
  }

  // Tasks whose request the cache answers, completed from it: their ids.
  std::set<std::string> complete_from_cache(const std::vector<prepared>& ps) {
    std::vector<std::string> ids, fps;
    for (auto& p : ps)
      if (!p.fingerprint.empty()) {
        ids.push_back(p.t.id);
        fps.push_back(p.fingerprint);
      }
    if (ids.empty())
      return {};
    auto done = ask<std::vector<std::string>>(
      h_.checkpointer, cached_atom::value, ids, fps,
      make_event("task_cached", {}, -1, {}, s_.node));
    for (size_t i = 0; i < done.size(); ++i) {
      h_.counters->cached();
      h_.counters->completed();
      ++completed_;
    }
    return std::set<std::string>(done.begin(), done.end());
  }

  void quarantine_unusable(const task& t) {
    auto error = std::string("task type ") + t.type +
                 ": its stored definition cannot be sent (no prompt, or a "
                 "chat body that is not a JSON object)";
    auto attempt = t.attempts + 1;
    ask<bool>(h_.checkpointer, quarantine_atom::value, t.id, attempt, error,
              make_event("task_quarantined", t.id,
                         static_cast<int32_t>(attempt), error, s_.node));
    ++quarantined_;
  }

  void start_batch(const std::string& model, std::vector<prepared>& group,
                   size_t begin, size_t end) {
    std::vector<std::string> ids;
    std::vector<uint64_t> tokens;
    std::vector<double> costs;
    for (size_t i = begin; i < end; ++i) {
      ids.push_back(group[i].t.id);
      tokens.push_back(group[i].tokens);
      costs.push_back(group[i].cost);
    }
    auto granted = ask<std::vector<reservation>>(
      h_.budget_keeper, reserve_atom::value, ids, tokens, costs, false);
    size_t n = 0;
    while (n < granted.size() && granted[n].granted)
      ++n;
    if (n < ids.size()) {
      budget_stopped_ = true;
      spdlog::warn("the budget holds {} of the {} task(s) of the next "
                   "batch: no new batches in this run",
                   n, ids.size());
    }
    if (n == 0)
      return;
    open_batch b;
    b.row.id = local_batch_id();
    b.row.provider = prov_->name();
    b.row.model = model;
    b.row.run_id = s_.run_id;
    b.row.created_at = now_rfc3339();
    std::vector<batch_member> members;
    std::map<std::string, size_t> at;
    for (size_t i = 0; i < n; ++i) {
      auto& p = group[begin + i];
      batch_member m;
      m.attempt = p.t.attempts + 1;
      m.reservation = granted[i].id;
      m.reserved_tokens = p.tokens;
      m.reserved_cost = p.cost;
      m.started = make_event("task_started", p.t.id,
                             static_cast<int32_t>(m.attempt),
                             "in batch " + b.row.id + " (" + model + ")",
                             s_.node);
      at[p.t.id] = begin + i;
      // The store needs the id only: the line keeps what is sent.
      m.t.id = p.t.id;
      members.push_back(std::move(m));
    }
    auto placed = ask<std::vector<std::string>>(
      h_.checkpointer, batch_atom::value, b.row, members,
      make_event("batch_created", {}, -1,
                 "batch " + b.row.id + ": " + std::to_string(n) +
                   " task(s) for " + model + ", reserved at the batch price",
                 s_.node));
    // Reservations of tasks that changed meanwhile (cancelled) go back.
    std::map<std::string, bool> in;
    for (auto& id : placed)
      in[id] = true;
    for (size_t i = 0; i < n; ++i)
      if (!in.count(ids[i]))
        ask<bool>(h_.budget_keeper, release_atom::value, granted[i].id);
    if (placed.empty())
      return;
    size_t bytes = 0;
    for (auto& id : placed)
      bytes += group[at[id]].line.size() + 1;
    b.file.reserve(bytes);
    for (auto& id : placed) {
      auto& line = group[at[id]].line;
      b.file += line;
      b.file += '\n';
      std::string().swap(line);
    }
    b.row.tasks = placed.size();
    open_.push_back(std::move(b));
    advance(open_.back());
  }

  // -- what people see -------------------------------------------------
  void publish_progress() {
    uint64_t tasks = 0;
    std::string text;
    size_t shown = 0;
    for (auto& b : open_) {
      tasks += b.row.tasks;
      if (shown++ < 3) {
        text += (text.empty() ? "" : ", ") + b.row.id + " " +
                to_string(b.row.state);
        if (b.row.remote_total > 0)
          text += " " + std::to_string(b.row.remote_completed +
                                       b.row.remote_failed) +
                  "/" + std::to_string(b.row.remote_total);
      }
    }
    if (open_.size() > 3)
      text += ", +" + std::to_string(open_.size() - 3) + " more";
    h_.counters->set_batches(open_.size(), tasks,
                             open_.empty() ? std::string()
                                           : "batches: " + text);
  }

  run_summary summary() {
    run_summary s;
    s.completed = completed_;
    s.quarantined = quarantined_;
    s.retries = retries_;
    try {
      s.store = ask<status_report>(h_.checkpointer, status_atom::value).tasks;
    } catch (const std::exception& e) {
      stop_ = run_stop(stop_reason::internal, 0, e.what());
    }
    if (stop_.reason == stop_reason::none) {
      if (draining_ && signal_ > 0)
        stop_ = run_stop(stop_reason::signal, signal_);
      else if (draining_)
        stop_ = run_stop(stop_reason::drain);
      else if (budget_stopped_)
        stop_ = run_stop(stop_reason::budget);
    }
    // With BG_AGENT_BATCH_RETRY=live what is left is the live run's.
    bool work_left = !open_.empty() ||
                     (s_.submit && !s_.retry_live &&
                      s.store.pending + s.store.retry_wait > 0);
    s.stop_reason = stop_.text();
    s.exit_code = s_.detach && stop_.reason == stop_reason::none
                    ? exit_code::ok
                    : exit_code_for(stop_, work_left);
    s.wall_seconds =
      std::chrono::duration<double>(clock_type::now() - started_).count();
    return s;
  }

  caf::blocking_actor* self_;
  batch_runner_settings s_;
  batch_runner_handles h_;
  provider_ptr prov_;
  batch_api api_;
  caf::response_promise rp_;
  std::vector<open_batch> open_;
  clock_type::time_point started_;
  run_stop stop_;
  bool draining_ = false;
  int32_t signal_ = 0;
  bool budget_stopped_ = false;
  uint64_t completed_ = 0;
  uint64_t quarantined_ = 0;
  uint64_t retries_ = 0;
};

} // namespace

namespace {

void batch_runner(caf::blocking_actor* self, batch_runner_settings s,
                  batch_runner_handles h, provider_ptr p) {
  runner r(self, std::move(s), std::move(h), std::move(p));
  r.main();
}

} // namespace

batch_runner_actor spawn_batch_runner(caf::actor_system& sys,
                                      batch_runner_settings s,
                                      batch_runner_handles h,
                                      provider_ptr p) {
  // The settings go as spawn arguments, not captures: CAF 0.17 binds a
  // blocking actor's function without arguments through a null pointer
  // (UBSan: reference binding to null pointer).
  auto a = sys.spawn<caf::detached>(batch_runner, std::move(s), std::move(h),
                                    std::move(p));
  return caf::actor_cast<batch_runner_actor>(a);
}

} // namespace bgagent
