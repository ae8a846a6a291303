// `bgagent run`: wires the actors of a run together and drives it from the
// main thread (progress line, signals, summary).
#include <atomic>
#include <csignal>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/auditor.hpp"
#include "actors/batch_runner.hpp"
#include "actors/budget_keeper.hpp"
#include "actors/checkpointer.hpp"
#include "actors/gatekeeper.hpp"
#include "actors/head_handles.hpp"
#include "actors/monitor.hpp"
#include "actors/rate_keeper.hpp"
#include "actors/supervisor.hpp"
#include "app/ask.hpp"
#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/head_link.hpp"
#include "app/api_token.hpp"
#include "app/http_api.hpp"
#include "app/metrics_server.hpp"
#include "app/number_format.hpp"
#include "app/progress_line.hpp"
#include "app/provider_prices.hpp"
#include "messages/utf8.hpp"
#include "app/run_lock.hpp"
#include "app/schedule_runner.hpp"
#include "app/system_config.hpp"
#include "app/task_file.hpp"
#include "app/task_file_submission.hpp"
#include "app/store_writers.hpp"
#include "app/types_file.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "messages/run.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/shard_map.hpp"
#include "persistence/store.hpp"
#include "persistence/store_set.hpp"
#include "policy/budget_period.hpp"
#include "providers/provider_registry.hpp"

namespace bgagent {

namespace {

// Set by the signal handler, read by the main thread only.
std::atomic<int> received_signal{0};

extern "C" void on_signal(int sig) {
  if (received_signal.exchange(sig) != 0)
    _exit(128 + sig); // a second signal: stop now (the store stays resumable)
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string money(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "$%.6f", x);
  return buf;
}

void print_summary(const run_summary& s, const run_info& run,
                   const budget_snapshot& b, const provider& p) {
  auto& c = s.store;
  std::printf("run %lld %s (exit %d%s%s) in %.2f s, provider %s/%s\n",
              static_cast<long long>(run.id),
              run_state_for(s.exit_code), s.exit_code,
              s.stop_reason.empty() ? "" : ", ",
              s.stop_reason.c_str(), s.wall_seconds, p.name().c_str(),
              p.model().c_str());
  std::printf("  completed    %s (this process: %s)\n",
              grouped(c.completed).c_str(), grouped(s.completed).c_str());
  std::printf("  quarantined  %s\n", grouped(c.quarantined).c_str());
  std::printf("  pending      %s\n",
              grouped(c.pending + c.retry_wait + c.running).c_str());
  if (c.cancelled)
    std::printf("  cancelled    %s\n", grouped(c.cancelled).c_str());
  std::printf("  retries      %s, worker restarts %s\n",
              grouped(s.retries).c_str(), grouped(s.restarts).c_str());
  std::printf("  tokens       %s of %s\n", grouped(b.tokens_used).c_str(),
              grouped(b.tokens_limit).c_str());
  std::printf("  cost         %s of %s\n", money(b.cost_used).c_str(),
              money(b.cost_limit).c_str());
  if (s.wall_seconds > 0 && s.completed > 0)
    std::printf("  rate         %.1f tasks/s\n", s.completed / s.wall_seconds);
  if (s.exit_code == exit_code::outage)
    std::printf("  to continue  run again once the provider answers: the "
                "pending tasks resume (their attempts while it was down "
                "did not count)\n");
  if (s.exit_code == exit_code::budget)
    std::printf("  to continue  raise the budget (--token-budget N or "
                "BG_AGENT_TOKEN_BUDGET, --cost-budget USD or "
                "BG_AGENT_COST_BUDGET) and run again: the pending tasks "
                "resume\n");
  // Why tasks were quarantined, most frequent first: a provider that cannot
  // be reached shows here as one line.
  for (auto& e : s.quarantine_errors) {
    std::printf("  errors       %s x %s\n", grouped(e.tasks).c_str(),
                utf8_clip(one_line(e.error), 160, "...").c_str());
  }
  if (c.completed == 0 && c.quarantined > 0 && c.pending + c.retry_wait == 0)
    std::printf("  warning      no task completed: every one was "
                "quarantined (see `bgagent results --state quarantined`)\n");
  std::fflush(stdout);
}

// Why a run refuses a model without a known price, and what to do.
std::string unpriced_model_error(const std::string& model, const config& c) {
  auto file = c.provider.prices ? c.provider.prices->file() : std::string();
  return "no price is known for model \"" + model +
         "\", which pending tasks use, so their calls cannot be held to the "
         "cost budget (" + money(c.cost_budget) + "): give its price in " +
         (file.empty() ? std::string("a prices file (BG_AGENT_PRICES)")
                       : "the prices file " + file) +
         ", or set both BG_AGENT_PRICE_PROMPT and BG_AGENT_PRICE_COMPLETION "
         "(USD per million tokens; 0 for a free model); `bgagent models` "
         "lists the prices known";
}

// The first line of a run: which provider and model answer, and whether
// they are real.
void announce_provider(const provider& p, const config& c) {
  if (p.name() == "offline")
    spdlog::warn("provider offline: answers are made on this machine by a "
                 "deterministic stand-in, no LLM is called (set "
                 "OPENROUTER_API_KEY, or LLM_PROVIDER with its key, for a "
                 "real model)");
  else
    spdlog::info("provider {}, model {}{}", p.name(), p.model(),
                 c.provider.base_url.empty() ? std::string()
                                             : " at " + c.provider.base_url);
}

} // namespace

static void hold_open_batch_reservations(caf::scoped_actor& self,
                                  const checkpointer_actor& checkpointer,
                                  const budget_keeper_actor& keeper) {
  auto open = ask<std::vector<batch_row>>(self, checkpointer,
                                          batches_atom::value, true);
  for (auto& row : open) {
    auto members = ask<std::vector<batch_member>>(self, checkpointer,
                                                  batches_atom::value, row.id);
    if (members.empty())
      continue;
    std::vector<std::string> ids;
    std::vector<uint64_t> tokens;
    std::vector<double> costs;
    for (auto& m : members) {
      ids.push_back(m.t.id);
      tokens.push_back(m.reserved_tokens);
      costs.push_back(m.reserved_cost);
    }
    auto held = ask<std::vector<reservation>>(self, keeper,
                                              reserve_atom::value, ids,
                                              tokens, costs, true);
    std::vector<uint64_t> rids;
    for (auto& r : held)
      rids.push_back(r.id);
    ids.resize(rids.size());
    ask<bool>(self, checkpointer, batches_atom::value, ids, rids);
  }
}

// What a run on a store of several files cannot do yet
// (docs/plans/sharded-store.md, steps 3 to 5): refused before anything
// starts, exit 2.
void refuse_for_several_files(const config& c, const run_options& o,
                              bool batch_mode, bool listens, uint32_t n) {
  std::string what = o.serve    ? "`serve`"
                     : o.follow ? "--follow"
                     : batch_mode ? "--mode batch"
                     : listens    ? "--listen (worker nodes)"
                                  : "";
  if (what.empty())
    return;
  throw usage_error(c.db_path + " is a store of " + std::to_string(n) +
                    " files (BG_AGENT_SHARDS): " + what +
                    " does not run on one yet; run its task file "
                    "(`bgagent run --tasks FILE`), or use a store of one "
                    "file (--db PATH)");
}

int run_command(const config& c, const run_options& o,
                const provider_registry& providers) {
  if (o.dry_run)
    return estimate_command(c, o.tasks_file, false, providers);
  // What can be wrong with the input is checked before anything is opened
  // (for a task file, its first part): bad input changes nothing. A fault
  // further on in a big file rolls its submission back, but may leave a
  // new empty store and audit log behind.
  std::optional<task_file_submission> tasks;
  if (!o.tasks_file.empty())
    tasks.emplace(o.tasks_file, c.max_input_bytes, types_in_force(c));
  provider_ptr prov;
  // The provider's own list joins these once the store is open, before
  // any call (the provider holds the same object).
  auto prices = std::make_shared<price_list>(
    c.provider.prices ? *c.provider.prices : price_list{});
  try {
    auto ps = c.provider;
    ps.concurrency = c.workers;
    ps.prices = prices;
    prov = providers.make(ps);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  bool batch_mode = c.mode == "batch";
  if (batch_mode && o.serve)
    throw usage_error("BG_AGENT_MODE=batch / --mode batch: `serve` runs "
                      "live; submit batches with `bgagent run --mode batch "
                      "--detach` and `serve` collects them");
  if (batch_mode && prov->name() != "openai")
    throw usage_error("--mode batch: provider " + prov->name() +
                      " has no Batch API; use an OpenAI-compatible server "
                      "that has one (LLM_PROVIDER=openai, LLM_BASE_URL)");
  std::optional<endpoint> listen, metrics_at, http_at;
  bool insecure = !o.insecure_listen.empty();
  if (!o.listen.empty()) {
    listen = parse_endpoint("--listen", o.listen);
    if (!c.tls() || c.tls_ca.empty())
      throw usage_error(
        "--listen " + o.listen + ": remote nodes need mutual TLS: set "
        "BG_AGENT_TLS_CERT, BG_AGENT_TLS_KEY and BG_AGENT_TLS_CA (make "
        "them with `bgagent certs init DIR --nodes head,node-a`), or use "
        "--insecure-listen on a loopback address for this machine only");
    check_can_listen("--listen", *listen);
  } else if (insecure) {
    listen = parse_endpoint("--insecure-listen", o.insecure_listen);
    if (!is_loopback(listen->host))
      throw usage_error("--insecure-listen " + o.insecure_listen +
                        ": only a loopback address (127.0.0.1, ::1, "
                        "localhost) may listen without TLS; use --listen "
                        "with certificates (`bgagent certs init DIR`)");
    check_can_listen("--insecure-listen", *listen);
  }
  if (!o.metrics.empty()) {
    metrics_at = parse_endpoint("--metrics", o.metrics);
    check_can_listen("--metrics", *metrics_at);
  }
  if (o.serve) {
    http_at = parse_endpoint("--http", o.http);
    check_can_listen("--http", *http_at);
  }
  if (c.workers == 0 && !listen)
    throw usage_error("BG_AGENT_WORKERS=0 (or --workers 0): must be between 1 "
                      "and 10000 unless the run has --listen for worker nodes");
  run_lock lock(c.db_path);
  std::string secret, secret_where;
  if (listen)
    secret = head_secret(c, secret_where);
  auto sync = c.db_sync_full ? store::sync_mode::full
                             : store::sync_mode::normal;
  // One file, or several (BG_AGENT_SHARDS when the store is made).
  // (What a store of several files cannot do yet is refused before any
  // file is made or opened.)
  // (The store checks its files' identity and count when it opens them.)
  if (auto on_disk = store_files_on_disk(c.db_path);
      c.shards > 1 || on_disk > 1)
    refuse_for_several_files(c, o, batch_mode, listen.has_value(),
                             c.shards > 1 ? c.shards : on_disk);
  auto files = std::make_unique<store_set>(
    c.db_path, store::open_mode::create_if_missing, c.shards, sync,
    jsonl_writer::last_seq(c.audit_path));
  const bool sharded = files->size() > 1;
  // A concurrent `submit` of many tasks holds the write lock for its whole
  // (all-or-nothing) transaction: the run waits for it, saying so.
  for (uint32_t k = 0; k < files->size(); ++k)
    files->at(k).wait_for_lock(
      [path = shard_file(c.db_path, k)](double seconds) {
        spdlog::warn("waiting {:.0f} s for the write lock of {}: another "
                     "process holds it (a large submit?); the run resumes "
                     "when it is released",
                     seconds, path);
      });
  // A store of one file goes on as its own connection; several stay in
  // `files` until their writers are spawned (after the run is opened).
  std::unique_ptr<store> db = sharded ? nullptr : files->release(0);
  if (!sharded)
    files.reset();
  add_provider_prices(*prices, c.provider, sharded ? &files->main() : db.get(),
                      true);
  std::optional<api_token> token;
  if (http_at)
    token = resolve_api_token(c.api_token, c.db_path);
  // Checked before anything starts: a schedule that cannot fire is exit 2.
  std::unique_ptr<schedule_runner> schedules;
  if (!o.schedules.empty())
    schedules = std::make_unique<schedule_runner>(
      o.schedules, c.max_input_bytes, types_in_force(c));

  system_config cfg;
  bool tls = listen && !insecure;
  if (tls)
    cfg.use_tls(c.tls_cert, c.tls_key, c.tls_ca);
  caf::actor_system sys{cfg};
  auditor_actor auditor;
  monitor_actor monitor;
  try {
    auditor = spawn_auditor(sys, c.audit_path);
  } catch (const std::runtime_error& e) {
    throw usage_error(std::string("audit log: ") + e.what());
  }
  // The offline provider's answers cost nothing: not worth a cache. Its
  // fingerprints are read before the store moves to its thread.
  // (Not yet with several files: an answer is cached in its task's file,
  // and an equal request in another file would not find it.)
  bool use_cache = !o.no_cache && prov->name() != "offline" && !sharded;
  auto cache_known = use_cache ? db->response_cache_filter() : nullptr;
  // Every audit event is committed to the store before the auditor writes
  // it; the checkpointer and the auditor are paired for that. With several
  // files their writers are spawned once the run is opened (below).
  checkpointer_actor checkpointer;
  store_handles writers;
  if (!sharded) {
    checkpointer = spawn_checkpointer(sys, std::move(db), auditor,
                                      open_reader(c.db_path, sync, false));
    writers = checkpointer;
  }
  caf::scoped_actor self{sys};
  // The cluster edge (gatekeeper, and with it the node gateways) obeys
  // no exit message but `kill`; the others end on user_shutdown.
  gatekeeper_actor gatekeeper;
  auto shutdown = [&](const auto&... actors) {
    auto end = [&](const auto& a) {
      if (a && a.address() == checkpointer.address())
        for (size_t k = 1; k < writers.size(); ++k) // the other files'
          self->send_exit(writers.files[k], caf::exit_reason::user_shutdown);
      if (a)
        self->send_exit(a, a.address() == gatekeeper.address()
                             ? caf::exit_reason::kill
                             : caf::exit_reason::user_shutdown);
    };
    (end(actors), ...);
  };

  // Results of one provider are not silently mixed with another's (a run
  // resumed without its environment would fall back to offline). A head
  // that listens for nodes is not checked: its nodes bring their own.
  auto producers =
    listen    ? std::vector<std::string>{}
    : sharded ? files->completed_providers()
              : ask<std::vector<std::string>>(self, checkpointer,
                                              status_atom::value,
                                              provider_atom::value);
  if (!producers.empty() && !c.provider_explicit &&
      std::find(producers.begin(), producers.end(), prov->name()) ==
        producers.end()) {
    std::string names;
    for (auto& n : producers)
      names += (names.empty() ? "" : ", ") + n;
    shutdown(checkpointer, auditor);
    throw usage_error(c.db_path + " holds results from " + names +
                      ", and this run would use " + prov->name() +
                      (prov->name() == "offline"
                         ? " (no provider configured: is its key set?)"
                         : std::string()) +
                      "; set that provider's variables again, start "
                      "another database (--db FILE), or give --provider " +
                      prov->name() + " to add its results to these");
  }
  // First line, once nothing can be refused any more.
  std::string submitted;
  if (tasks) {
    // task_submitted / task_duplicate are committed with the submission.
    try {
      auto counts = sharded
                      ? tasks->store_all(*files, o.on_conflict)
                      : tasks->store_all(self, checkpointer, o.on_conflict);
      submitted = o.tasks_file + ": " + submit_summary(counts);
    } catch (...) {
      shutdown(checkpointer, auditor);
      throw;
    }
    tasks.reset();
  }
  announce_provider(*prov, c);
  if (!submitted.empty())
    spdlog::info("{}", submitted);
  // A call to a model without a known price could not be reserved against
  // the cost budget: refuse before any call (the tasks stay pending).
  {
    auto models = sharded ? files->runnable_models()
                          : ask<std::vector<std::string>>(
                              self, checkpointer, status_atom::value,
                              models_atom::value);
    for (auto& m : models)
      if (!prov->knows_price_of(m)) {
        shutdown(checkpointer, auditor);
        throw usage_error(unpriced_model_error(m.empty() ? prov->model() : m,
                                               c));
      }
  }

  // A run that stopped on its budget and resumes with the same limits has
  // raised its 100 % alarm already.
  // The budget's period: spending in it survives restarts.
  auto period = *parse_budget_period(
    !c.budget_period.empty() ? c.budget_period : o.serve ? "day" : "run");
  auto period_began = period_start(period, std::time(nullptr));
  // (Not for a calendar period: the stop may have been in an earlier one.)
  auto last = sharded ? files->main().run_status()
                      : ask<status_report>(self, checkpointer,
                                           status_atom::value, run_atom::value);
  bool exhausted = last.run.state == "stopped_budget" &&
                   last.budget.tokens_limit == c.token_budget &&
                   last.budget.cost_limit == c.cost_budget &&
                   period == budget_period::run &&
                   last.budget_period == "run";
  auto run = sharded
               ? files->open_run(c.token_budget, c.cost_budget,
                                 std::string(to_string(period)),
                                 rfc3339_utc(period_began))
               : ask<run_info>(self, checkpointer, open_run_atom::value,
                               c.token_budget, c.cost_budget,
                               std::string(to_string(period)),
                               rfc3339_utc(period_began));
  if (sharded) {
    try {
      writers = spawn_file_writers(sys, std::move(files), c.db_path, sync,
                                   auditor, run.id);
    } catch (...) {
      shutdown(auditor); // else the actor system waits for it for ever
      throw;
    }
    checkpointer = writers.main();
  }
  self->send(auditor,
             make_event("run_started", {}, -1,
                        "run " + std::to_string(run.id) +
                          (run.resumed ? " resumed" : " new") + ", provider " +
                          prov->name() + "/" + prov->model() + ", workers " +
                          std::to_string(c.workers) + ", token budget " +
                          std::to_string(c.token_budget) + ", cost budget " +
                          money(c.cost_budget)));
  // open_run audited each of them (task_interrupted, and budget_charged
  // for a call that was in flight) in its own transaction.
  if (!run.interrupted.empty())
    spdlog::warn("{} task(s) were interrupted by an earlier crash and will "
                 "run again",
                 run.interrupted.size());
  if (period != budget_period::run)
    spdlog::info("budget per {} (UTC): {} tokens, {} spent since {}",
                 to_string(period), run.tokens_used, money(run.cost_used),
                 rfc3339_utc(period_began));
  else if (run.resumed)
    spdlog::info("resuming run {}: {} tokens, {} already spent", run.id,
                 run.tokens_used, money(run.cost_used));

  // Bumped by the gateways and the supervisor, read by the monitor.
  auto counters = std::make_shared<call_counters>();
  try {
    monitor_settings ms;
    ms.counters = counters;
    ms.alerts_path = c.alerts_path;
    ms.webhook_url = c.webhook_url;
    ms.deadman_seconds = c.deadman_seconds;
    ms.escalate_after = c.escalate_after;
    ms.run_label = std::to_string(run.id);
    monitor = spawn_monitor(sys, ms, auditor);
  } catch (const std::runtime_error& e) {
    shutdown(checkpointer, auditor);
    throw usage_error(std::string("alerts file: ") + e.what());
  }
  budget_settings bs;
  bs.token_limit = c.token_budget;
  bs.cost_limit = c.cost_budget;
  bs.tokens_spent = run.tokens_used;
  bs.cost_spent = run.cost_used;
  bs.exhausted = exhausted;
  bs.period = period;
  bs.period_began = period_began;
  auto keeper = spawn_budget_keeper(sys, bs, writers, auditor, monitor);
  rate_settings rs;
  rs.rpm = c.rpm;
  rs.tpm = c.tpm;
  rs.window_seconds = c.rate_window_seconds;
  rs.call_seconds = c.timeout_seconds + 30;
  rs.probe_seconds = c.probe_seconds;
  rs.outage_max_seconds = c.outage_max_seconds;
  // The offline provider answers on this machine: no limit to keep, no
  // circuit to watch, so no rate_keeper (two messages less per call),
  // unless limits are asked for or nodes, with providers of their own, may
  // join.
  rate_keeper_actor rates;
  if (prov->name() != "offline" || c.rpm > 0 || c.tpm > 0 || listen)
    rates = spawn_rate_keeper(
      sys, rs, rate_keeper_links{monitor, auditor, checkpointer, counters});
  // Reservations settled by the store (completion, failure, abandoned
  // calls) are committed to this keeper.
  for (auto& w : writers.files)
    self->send(w, attach_atom::value, keeper);
  // Tasks in provider batches still open were sent: the provider may bill
  // them whatever this run does, so their reservations are held again
  // (whatever the budget says) before anything else reserves.
  hold_open_batch_reservations(self, checkpointer, keeper);

  supervisor_settings ss;
  ss.workers = c.workers;
  ss.max_retries = c.max_retries;
  ss.retry_initial_seconds = c.retry_initial_seconds;
  ss.retry_cap_seconds = c.retry_cap_seconds;
  ss.max_restarts = c.max_restarts;
  ss.restart_window_seconds = c.restart_window_seconds;
  ss.timeout_seconds = c.timeout_seconds;
  ss.heartbeat_seconds = std::min(c.heartbeat_seconds, c.deadman_seconds / 3);
  ss.follow = o.follow;
  ss.stay_on_budget = o.serve;
  ss.poll_interval_seconds = c.poll_interval_seconds;
  ss.cache = use_cache;
  ss.cache_known = cache_known;
  ss.response_format = c.provider.response_format;
  auto sup = spawn_supervisor(sys, ss,
                              run_handles{writers, keeper, auditor,
                                          monitor, counters, rates},
                              prov);

  // Provider batches: new ones in batch mode; in any mode, those the
  // store holds open (a crash, a --detach) are collected.
  batch_runner_actor batcher;
  {
    auto open = ask<std::vector<batch_row>>(self, checkpointer,
                                            batches_atom::value, true);
    bool can_collect = prov->name() == "openai";
    if (!open.empty() && !can_collect)
      spdlog::warn("{} batch(es) are open at a provider's Batch API; this "
                   "run's provider ({}) cannot collect them: run with the "
                   "provider that made them (LLM_PROVIDER=openai, "
                   "LLM_BASE_URL)",
                   open.size(), prov->name());
    if (batch_mode || (!open.empty() && can_collect)) {
      batch_runner_settings bs;
      bs.submit = batch_mode;
      bs.detach = o.detach;
      bs.follow = o.follow;
      bs.retry_live = c.batch_retry == "live";
      bs.run_id = run.id;
      bs.limits.max_requests = c.batch_max_requests;
      bs.limits.max_bytes = c.batch_max_bytes;
      bs.poll_seconds = c.batch_poll_seconds;
      bs.discount = c.batch_discount;
      bs.max_retries = c.max_retries;
      bs.response_format = c.provider.response_format;
      bs.cache = ss.cache;
      bs.node = ss.node;
      bs.secret = c.provider.api_key;
      bs.api.base_url = c.provider.base_url;
      bs.api.api_key = c.provider.api_key;
      bs.api.timeout_seconds = c.timeout_seconds;
      bs.api.connect_timeout_seconds = c.provider.connect_timeout_seconds;
      batcher = spawn_batch_runner(
        sys, bs,
        batch_runner_handles{checkpointer, keeper, auditor, monitor, counters},
        prov);
      if (!open.empty())
        spdlog::info("{} batch(es) open at the provider: their results are "
                     "collected as they end",
                     open.size());
    }
  }

  // Remote nodes reach the head only through the gatekeeper.
  if (listen) {
    gatekeeper_settings gs;
    gs.secret = secret;
    gs.head = ss.node;
    gs.cache = ss.cache;
    gs.response_format = ss.response_format;
    gs.cache_known = ss.cache_known;
    gatekeeper = spawn_gatekeeper(
      sys, gs,
      head_handles{sup, keeper, writers, auditor, monitor, counters,
                   rates, batcher});
    self->send(sup, watch_atom::value, caf::actor_cast<caf::actor>(gatekeeper),
               std::string("the gatekeeper on ") + listen->text());
    auto port = tls ? caf::openssl::publish(gatekeeper, listen->port,
                                            listen->host.c_str(), true)
                    : sys.middleman().publish(gatekeeper, listen->port,
                                              listen->host.c_str(), true);
    if (!port) {
      shutdown(gatekeeper, sup, batcher, keeper, rates, monitor, checkpointer,
               auditor);
      throw usage_error((tls ? "--listen " : "--insecure-listen ") +
                        listen->text() + ": cannot listen: " +
                        sys.render(port.error()));
    }
    // CAF answers two named actors on every node, its SpawnServ and
    // ConfigServ (a key-value store any peer may fill); bgagent uses
    // neither, so a listening head stops them and only the gatekeeper and
    // the node gateways answer on this port.
    caf::anon_send_exit(caf::actor_cast<caf::actor>(sys.spawn_serv()),
                        caf::exit_reason::kill);
    caf::anon_send_exit(caf::actor_cast<caf::actor>(sys.config_serv()),
                        caf::exit_reason::kill);
    // Actor ids, for whoever debugs (or probes) the cluster port.
    spdlog::debug("head actor ids: auditor {}, checkpointer {}, monitor {}, "
                  "budget_keeper {}, supervisor {}, gatekeeper {}",
                  auditor ? auditor.id() : 0, checkpointer.id(),
                  monitor ? monitor.id() : 0, keeper.id(), sup.id(),
                  gatekeeper.id());
    if (tls) {
      spdlog::info("listening for worker and admin nodes on {} with TLS "
                   "(mutual: every node needs a certificate from "
                   "BG_AGENT_TLS_CA; cluster secret: {})",
                   listen->text(), secret_where);
    } else {
      spdlog::warn("listening for worker and admin nodes on {} WITHOUT TLS "
                   "(--insecure-listen): anyone who can reach this address "
                   "can speak CAF's protocol to this process (cluster "
                   "secret: {})",
                   listen->text(), secret_where);
      self->send(auditor,
                 make_event("insecure_listen", {}, -1,
                            "listening without TLS on " + listen->text() +
                              " (loopback only)"));
    }
  }
  std::unique_ptr<metrics_server> metrics;
  if (metrics_at) {
    try {
      metrics = std::make_unique<metrics_server>(sys, monitor, checkpointer,
                                                 metrics_at->host,
                                                 metrics_at->port);
    } catch (const usage_error&) {
      shutdown(gatekeeper, sup, batcher, keeper, rates, monitor, checkpointer,
               auditor);
      throw;
    }
  }

  std::unique_ptr<http_api> api;
  if (http_at) {
    http_api_settings hs;
    hs.host = http_at->host;
    hs.port = http_at->port;
    hs.token = token->value;
    hs.db_path = c.db_path;
    hs.max_body = c.http_max_body;
    hs.max_input_bytes = c.max_input_bytes;
    try {
      api = std::make_unique<http_api>(
        sys,
        head_handles{sup, keeper, writers, auditor, monitor, counters,
                   rates, batcher},
        types_in_force(c), hs);
    } catch (const usage_error&) {
      metrics.reset();
      shutdown(gatekeeper, sup, batcher, keeper, rates, monitor, checkpointer,
               auditor);
      throw;
    }
    // The token goes in the fragment, which a browser never sends; and only
    // to a terminal: a log (the journal) is read by more people than the
    // token file.
    if (isatty(STDERR_FILENO))
      spdlog::info("HTTP API and dashboard at http://{}:{}/#token={} "
                   "(bearer token from {})",
                   http_at->host, http_at->port, token->value, token->where);
    else
      spdlog::info("HTTP API and dashboard at http://{}:{}/ (bearer token "
                   "from {}; open /#token=TOKEN)",
                   http_at->host, http_at->port, token->where);
    if (!is_loopback(http_at->host))
      spdlog::warn("--http {}: plain HTTP beyond this machine; put it "
                   "behind a reverse proxy with TLS (see the README)",
                   o.http);
  }

  head_handles handles{sup, keeper, writers, auditor, monitor, counters,
                       rates, batcher};
  if (schedules)
    schedules->start(self, handles, std::time(nullptr));

  auto counts = ask<status_report>(self, checkpointer, status_atom::value);
  if (counts.tasks.pending + counts.tasks.retry_wait == 0 && !o.follow)
    spdlog::info("nothing pending: {} task(s) already completed, {} "
                 "quarantined",
                 counts.tasks.completed, counts.tasks.quarantined);

  install_signal_handlers();
  progress_line progress(isatty(STDERR_FILENO) != 0);
  auto baseline_of = [](const state_counts& c) {
    return progress_baseline{c.total() - c.cancelled, c.completed,
                             c.quarantined};
  };
  auto base = baseline_of(counts.tasks);
  progress.set_baseline(base);
  // With --follow, tasks keep arriving: the total is looked up again now
  // and then (what was done before the run stays the baseline).
  auto last_total_look = std::chrono::steady_clock::now();
  // Batch mode: the batches first, then (BG_AGENT_BATCH_RETRY=live) the
  // tasks they failed, live. Live mode: the live run and the collection
  // of open batches side by side.
  bool live_running = !batch_mode;
  bool batches_running = static_cast<bool>(batcher);
  if (live_running)
    self->send(sup, run_atom::value);
  if (batches_running)
    self->send(batcher, run_atom::value);
  run_summary summary, batch_summary;
  bool done = false;
  bool drain_sent = false;
  auto on_summary = [&](run_summary& s, bool from_batches) {
    if (from_batches) {
      batches_running = false;
      batch_summary = std::move(s);
      if (batch_mode && !o.detach && !drain_sent &&
          batch_summary.exit_code == exit_code::ok &&
          c.batch_retry == "live" &&
          batch_summary.store.pending + batch_summary.store.retry_wait > 0) {
        spdlog::info("batches done; {} task(s) left to run live "
                     "(BG_AGENT_BATCH_RETRY=live)",
                     batch_summary.store.pending +
                       batch_summary.store.retry_wait);
        live_running = true;
        self->send(sup, run_atom::value);
      }
    } else {
      live_running = false;
      summary = std::move(s);
    }
    done = !live_running && !batches_running;
  };
  while (!done) {
    self->receive(
      [&](run_summary& s) {
        on_summary(s, batcher && self->current_sender() == batcher.address());
      },
      caf::after(std::chrono::milliseconds(200)) >> [&] {
        int sig = received_signal.load();
        if (sig != 0 && !drain_sent) {
          drain_sent = true;
          progress.finish();
          spdlog::warn("received signal {}: draining (calls in flight "
                       "finish, nothing new starts); again to stop at once",
                       sig);
          if (live_running)
            self->send(sup, drain_atom::value, static_cast<int32_t>(sig));
          if (batches_running)
            self->request(batcher, caf::infinite, drain_atom::value,
                          static_cast<int32_t>(sig));
        }
        if (schedules && !drain_sent)
          schedules->tick(self, handles, std::time(nullptr));
        auto now = std::chrono::steady_clock::now();
        if (o.follow && now - last_total_look >= std::chrono::seconds(2)) {
          last_total_look = now;
          // Not status (a scan of every task, on the store's thread).
          self->request(checkpointer, std::chrono::seconds(1),
                        status_atom::value, total_atom::value)
            .receive(
              [&](uint64_t total) {
                base.total = total;
                progress.set_baseline(base);
              },
              [&](caf::error&) {});
        }
        self->request(monitor, std::chrono::seconds(1), metrics_atom::value)
          .receive([&](metrics_snapshot& m) { progress.show(m); },
                   [&](caf::error&) {});
      });
  }
  progress.finish();
  if (batcher) {
    // One summary for the run: the batches' work added to the live run's
    // (batch mode without a live phase: the batches' alone).
    bool live_ran = !batch_mode || summary.store.total() > 0 ||
                    summary.wall_seconds > 0;
    if (!live_ran) {
      summary = batch_summary;
    } else {
      summary.completed += batch_summary.completed;
      summary.quarantined += batch_summary.quarantined;
      summary.retries += batch_summary.retries;
      // The live run may have ended before the batches it waited for:
      // what is left is judged now.
      summary.store =
        ask<status_report>(self, checkpointer, status_atom::value).tasks;
      auto& left = summary.store;
      if (summary.stop_reason.empty())
        summary.exit_code = exit_code_for(
          run_stop(), left.pending + left.retry_wait + left.running > 0);
      if (summary.exit_code == exit_code::ok &&
          batch_summary.exit_code != exit_code::ok) {
        summary.exit_code = batch_summary.exit_code;
        summary.stop_reason = batch_summary.stop_reason;
      }
    }
  }

  auto budget = ask<budget_snapshot>(self, keeper, budget_atom::value);
  summary.tokens_used = budget.tokens_used;
  summary.cost_used = budget.cost_used;
  std::string state = run_state_for(summary.exit_code);
  try {
    ask<bool>(self, checkpointer, finish_run_atom::value, run.id, state);
  } catch (const std::exception& e) {
    spdlog::error("could not record the end of run {}: {}", run.id, e.what());
    summary.exit_code = exit_code::internal;
  }
  self->send(auditor, make_event("run_finished", {}, -1,
                                 to_json(summary).dump()));
  try {
    ask<flush_atom>(self, monitor, flush_atom::value);
    ask<flush_atom>(self, auditor, flush_atom::value);
  } catch (const std::exception& e) {
    spdlog::error("could not flush the logs: {}", e.what());
  }
  if (summary.stop_reason == to_string(stop_reason::budget))
    spdlog::warn("stopped by the budget: {} task(s) left pending for a run "
                 "with more budget (BG_AGENT_TOKEN_BUDGET, "
                 "BG_AGENT_COST_BUDGET)",
                 summary.store.pending + summary.store.retry_wait);
  print_summary(summary, run, budget, *prov);
  api.reset();
  metrics.reset();
  shutdown(gatekeeper, sup, batcher, keeper, rates, monitor, checkpointer,
           auditor);
  return summary.exit_code;
}

} // namespace bgagent
