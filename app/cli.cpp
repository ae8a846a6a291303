#include "app/cli.hpp"

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "app/errors.hpp"
#include "app/live_terminal.hpp"
#include "app/suggest.hpp"
#include "persistence/store.hpp"
#include "providers/provider_registry.hpp"

namespace bgagent {

namespace {

void setup_logging(const std::string& level) {
  std::shared_ptr<spdlog::sinks::sink> sink =
    std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // On a terminal, log lines and run's live line take turns (clear, write,
  // redraw) instead of writing over each other.
  if (isatty(STDERR_FILENO))
    sink = live_log_sink(sink);
  auto logger = std::make_shared<spdlog::logger>("bgagent", sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

} // namespace

int cli_main(int argc, char** argv, const provider_registry& providers) {
  CLI::App app{"bgagent: a background agent that drains a durable queue of "
               "LLM tasks"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  app.set_version_flag("--version", std::string("bgagent ") + BGAGENT_VERSION);
  app.footer("Run `bgagent help COMMAND` for a command's options and "
             "examples.");

  std::string db, tasks, workers, shards, provider, model, base_url, listen, metrics;
  std::string insecure_listen, types_file, on_conflict = "error";
  std::string state, file;
  bool follow = false, json = false, all_quarantined = false;
  std::vector<std::string> ids;

  auto* run = app.add_subcommand("run", "Submit a task file (idempotently) "
                                        "and process every pending task");
  auto* serve = app.add_subcommand(
    "serve", "Run as a service until SIGTERM: tasks arrive by the HTTP API, "
             "`submit` and schedules; never exits on an empty queue");
  std::string token_budget, cost_budget;
  auto conflict_help =
    "A task submitted again with other content (same id or key): error "
    "(refuse the file, the default), skip (keep the stored task) or "
    "replace (run the new one)";
  // run and serve take the same flags (serve: --http besides).
  std::string mode;
  bool no_cache = false;
  bool detach = false;
  auto add_run_flags = [&](CLI::App* cmd) {
    cmd->add_option("--tasks", tasks, "Task file (JSON Lines or a JSON array)")
      ->type_name("FILE");
    cmd->add_option("--types", types_file,
                    "Types file, YAML or JSON (BG_AGENT_TYPES, default "
                    "./bgagent-types.yaml when it exists)");
    cmd->add_option("--on-conflict", on_conflict, conflict_help)
      ->check(CLI::IsMember({"error", "skip", "replace"}));
    cmd->add_option("--db", db, "Database file (BG_AGENT_DB, default "
                                "./bgagent.db)");
    cmd->add_option("--workers", workers, "Task workers (BG_AGENT_WORKERS, "
                                          "default 4)")
      ->type_name("N");
    cmd->add_option("--provider", provider,
                    "offline | openrouter | openai (LLM_PROVIDER)")
      ->type_name("NAME");
    cmd->add_option("--model", model, "Model name (MODEL)")->type_name("NAME");
    cmd->add_option("--base-url", base_url,
                    "OpenAI-compatible base URL (LLM_BASE_URL)");
    auto* listen_opt = cmd->add_option(
      "--listen", listen,
      "HOST:PORT to accept worker and admin nodes over mutual TLS "
      "(BG_AGENT_TLS_CERT, BG_AGENT_TLS_KEY, BG_AGENT_TLS_CA; make them "
      "with `bgagent certs init DIR`)");
    cmd->add_option("--insecure-listen", insecure_listen,
                    "HOST:PORT on a loopback address to accept nodes without "
                    "TLS (this machine only; warned and audited)")
      ->excludes(listen_opt);
    cmd->add_option("--metrics", metrics,
                    "HOST:PORT for a Prometheus text endpoint");
    cmd->add_option("--token-budget", token_budget,
                    "Tokens the run may spend (BG_AGENT_TOKEN_BUDGET, default "
                    "1000000)")
      ->type_name("N");
    cmd->add_option("--cost-budget", cost_budget,
                    "US dollars the run may spend (BG_AGENT_COST_BUDGET, "
                    "default 1.00)")
      ->type_name("USD");
    cmd->add_option("--mode", mode,
                    "live | batch: calls one by one, or through the "
                    "provider's Batch API at its batch price (BG_AGENT_MODE, "
                    "default live)")
      ->check(CLI::IsMember({"live", "batch"}));
    cmd->add_option("--shards", shards,
                    "Files a new store is split over, 1-64 (BG_AGENT_SHARDS, "
                    "default 1); an existing store keeps its own")
      ->type_name("N");
    cmd->add_flag("--no-cache", no_cache,
                  "Call the model even where the response cache holds the "
                  "answer to the same request");
  };
  add_run_flags(run);
  run->add_flag("--detach", detach,
                "With --mode batch: submit the batches and exit 0; a later "
                "run (or serve) collects their results");
  add_run_flags(serve);
  std::string http = "127.0.0.1:8420";
  std::vector<std::string> schedules;
  serve->add_option("--schedule", schedules,
                    "'CRON FILE' (five fields, UTC) or '@every DURATION "
                    "FILE' (e.g. '@every 30s tasks.jsonl'): submit FILE's "
                    "tasks at each firing; repeatable")
    ->type_name("SPEC");
  serve->add_option("--http", http,
                    "HOST:PORT of the HTTP API and dashboard (default "
                    "127.0.0.1:8420; every path but / needs the bearer "
                    "token, BG_AGENT_API_TOKEN or <db>.api-token)");
  bool dry_run = false;
  run->add_flag("--dry-run", dry_run,
                "Only estimate the job (as `bgagent estimate`): no call, "
                "no change");
  run->add_flag("--follow", follow,
                "Keep polling for new tasks (BG_AGENT_POLL_INTERVAL)");

  auto* types = app.add_subcommand("types", "The task types in force, with "
                                            "their source and fingerprint");
  types->add_option("--types", types_file,
                    "Types file, YAML or JSON (BG_AGENT_TYPES, default "
                    "./bgagent-types.yaml when it exists)");
  types->add_flag("--json", json, "One JSON object per type");

  auto* estimate = app.add_subcommand(
    "estimate", "What the pending tasks (and a task file's) would cost at "
                "worst and as expected, and whether that fits the budgets; "
                "calls no model, changes nothing");
  estimate->add_option("--tasks", tasks,
                       "Task file (JSON Lines or a JSON array) to count "
                       "with the pending tasks");
  estimate->add_option("--types", types_file,
                       "Types file, YAML or JSON (BG_AGENT_TYPES, default "
                       "./bgagent-types.yaml when it exists)");
  estimate->add_option("--db", db, "Database file (BG_AGENT_DB, default "
                                   "./bgagent.db)");
  estimate->add_option("--provider", provider,
                       "offline | openrouter | openai (LLM_PROVIDER)");
  estimate->add_option("--model", model, "Model name (MODEL)");
  estimate->add_option("--token-budget", token_budget,
                       "Tokens the run may spend (BG_AGENT_TOKEN_BUDGET)");
  estimate->add_option("--cost-budget", cost_budget,
                       "US dollars the run may spend (BG_AGENT_COST_BUDGET)");
  estimate->add_flag("--json", json, "One JSON object");

  auto* models = app.add_subcommand(
    "models", "The prices in force per model (USD per million tokens) and "
              "where each comes from");
  models->add_flag("--json", json, "One JSON object per model");

  auto* submit = app.add_subcommand("submit", "Submit a task file only");
  submit->add_option("--db", db, "Database file");
  submit->add_option("--types", types_file,
                     "Types file, YAML or JSON (BG_AGENT_TYPES, default "
                     "./bgagent-types.yaml when it exists)");
  submit->add_option("--on-conflict", on_conflict, conflict_help)
    ->check(CLI::IsMember({"error", "skip", "replace"}));
  submit->add_option("file", file, "Task file")->required();

  auto* status = app.add_subcommand("status", "Counts per state, budget, "
                                              "last run");
  status->add_option("--db", db, "Database file");
  status->add_flag("--json", json, "Machine-readable output");
  bool by_tag = false;
  status->add_flag("--by-tag", by_tag,
                   "Per tag: tasks per state, tokens and dollars");

  auto* batches = app.add_subcommand(
    "batches", "Provider batches (--mode batch): state, tasks, completed, "
               "failed, age and cost");
  batches->add_option("--db", db, "Database file");
  batches->add_flag("--json", json, "JSON Lines, one object per batch");
  auto* results = app.add_subcommand("results", "One record per task");
  results->add_option("--db", db, "Database file");
  results->add_option("--state", state, "Only tasks in this state");
  std::string tag, format;
  results->add_option("--tag", tag, "Only tasks with this tag");
  std::string limit;
  results->add_option("--limit", limit, "At most N tasks");
  results->add_option("ids", ids, "Only these tasks (one id alone: its whole "
                                  "record)");
  auto* json_flag = results->add_flag("--json", json, "JSON Lines output");
  results->add_option("--format", format,
                      "openai-batch: the OpenAI Batch output format, one "
                      "line per finished task")
    ->check(CLI::IsMember({"openai-batch"}))
    ->excludes(json_flag);

  auto* requeue = app.add_subcommand("requeue", "Quarantined (or completed) "
                                                "tasks back to pending");
  requeue->add_option("--db", db, "Database file");
  auto* q_flag = requeue->add_flag("--quarantined", all_quarantined,
                                   "Every quarantined task");
  bool completed = false;
  requeue->add_flag("--completed", completed,
                    "Completed tasks, to run again (with ids: those; "
                    "alone: every completed task)")
    ->excludes(q_flag);
  requeue->add_option("ids", ids, "Task ids");

  std::string connect, node_name, tokens, cost;
  auto* worker = app.add_subcommand(
    "worker", "Join a head as a worker node and bring task workers");
  worker->add_option("--connect", connect, "HOST:PORT of the head")
    ->required();
  worker->add_option("--workers", workers, "Task workers on this node "
                                           "(default 4)");
  worker->add_option("--name", node_name,
                     "Node name in the audit log (default HOSTNAME-PID)");
  worker->add_option("--provider", provider, "This node's provider");
  worker->add_option("--model", model, "This node's model");
  worker->add_option("--base-url", base_url, "This node's base URL");
  bool stay = false;
  worker->add_flag("--stay", stay,
                   "Stay up between runs: wait for the head (also at start) "
                   "and join each run it starts, until SIGTERM");

  auto* admin = app.add_subcommand("admin", "Control a running head");
  admin->add_option("--connect", connect, "HOST:PORT of the head")
    ->required();
  admin->require_subcommand(1);
  admin_options ao;
  auto* a_status = admin->add_subcommand("status", "Counts, budget, workers "
                                                   "per node, rate");
  a_status->add_flag("--json", ao.json, "Machine-readable output");
  admin->add_subcommand("pause", "Stop dispatching (calls in flight finish)");
  admin->add_subcommand("resume", "Dispatch again");
  admin->add_subcommand("drain", "Finish calls in flight, start nothing new, "
                                 "exit (resumable)");
  admin->add_subcommand("shutdown", "Stop now; calls in flight go back to "
                                    "pending");
  admin->add_subcommand("workers", "List workers and what they do");
  auto* a_budget = admin->add_subcommand("set-budget", "Change the run's "
                                                       "budgets");
  a_budget->add_option("--tokens", tokens, "Token budget (unchanged when "
                                            "not given)")
    ->type_name("N");
  a_budget->add_option("--cost", cost, "Cost budget in US dollars (unchanged "
                                       "when not given)")
    ->type_name("USD");
  auto* a_requeue = admin->add_subcommand("requeue", "Quarantined tasks back "
                                                     "to pending");
  a_requeue->add_flag("--quarantined", ao.all_quarantined,
                      "Every quarantined task");
  a_requeue->add_option("ids", ao.ids, "Task ids");
  auto* a_cancel = admin->add_subcommand("cancel", "Cancel tasks");
  a_cancel->add_option("ids", ao.ids, "Task ids")->required();
  auto* a_cancel_batch = admin->add_subcommand(
    "cancel-batch", "Cancel a provider batch (--mode batch): its requests "
                    "left undone go back to the queue");
  a_cancel_batch->add_option("ids", ao.ids, "The batch's id (local or the "
                                            "provider's)")
    ->required();

  certs_options co;
  auto* certs = app.add_subcommand("certs", "Certificates for the cluster's "
                                            "mutual TLS");
  certs->require_subcommand(1);
  auto* c_init = certs->add_subcommand(
    "init", "A private CA and a certificate per node (or more nodes for an "
            "existing CA)");
  c_init->add_option("dir", co.dir, "Directory for the files (made with mode "
                                    "0700 if missing)")
    ->required();
  auto* c_nodes = c_init->add_option("--nodes", co.nodes,
                                     "Node names, comma-separated (default: "
                                     "head)");

  run->footer("Examples:\n"
              "  bgagent run --tasks examples/sample_tasks.jsonl\n"
              "  bgagent run --tasks tickets.jsonl --types types.yaml "
              "--workers 16 --cost-budget 5\n"
              "  bgagent run --follow    (keep taking tasks added by "
              "`bgagent submit`)");
  serve->footer("Examples:\n"
                "  bgagent serve    (API and dashboard on 127.0.0.1:8420; "
                "the URL with its token is printed at start)\n"
                "  curl -H \"Authorization: Bearer $(cat bgagent.db.api-token)"
                "\" --data-binary @tasks.jsonl http://127.0.0.1:8420/v1/tasks");
  submit->footer("Examples:\n"
                 "  bgagent submit examples/sample_tasks.jsonl\n"
                 "  bgagent submit --on-conflict replace tasks.jsonl");
  status->footer("Examples:\n  bgagent status\n  bgagent status --by-tag "
                 "--json");
  results->footer("Examples:\n"
                  "  bgagent results --state quarantined --limit 20\n"
                  "  bgagent results t-17    (one task's whole record)\n"
                  "  bgagent results --tag acme --json\n"
                  "  bgagent results --format openai-batch > output.jsonl");
  requeue->footer("Examples:\n  bgagent requeue --quarantined\n"
                  "  bgagent requeue --completed t-17 t-18");
  types->footer("Examples:\n  bgagent types\n"
                "  bgagent types --types examples/bgagent-types.yaml --json");
  estimate->footer("Examples:\n"
                   "  bgagent estimate --tasks tickets.jsonl --types "
                   "types.yaml\n"
                   "  bgagent run --tasks tickets.jsonl --dry-run\n"
                   "  bgagent estimate --json    (the pending tasks only)");
  models->footer("Examples:\n  bgagent models\n"
                 "  BG_AGENT_PRICES=prices.yaml bgagent models --json");
  worker->footer("Example:\n  bgagent worker --connect head.example:7400 "
                 "--workers 8");
  admin->footer("Examples:\n  bgagent admin --connect 127.0.0.1:7400 "
                "status\n  bgagent admin --connect 127.0.0.1:7400 pause\n"
                "  bgagent admin --connect 127.0.0.1:7400 set-budget --cost "
                "5");
  a_budget->footer("Examples:\n  bgagent admin --connect 127.0.0.1:7400 "
                   "set-budget --tokens 2000000\n  bgagent admin --connect "
                   "127.0.0.1:7400 set-budget --tokens 5000000 --cost 10");

  // Typed placeholders in the help ("--db PATH", not "--db TEXT").
  const std::map<std::string, std::string> placeholders{
    {"db", "PATH"},          {"tasks", "FILE"},      {"types", "FILE"},
    {"workers", "N"},        {"provider", "NAME"},   {"model", "NAME"},
    {"base-url", "URL"},     {"listen", "HOST:PORT"},
    {"insecure-listen", "HOST:PORT"},                {"metrics", "HOST:PORT"},
    {"http", "HOST:PORT"},
    {"connect", "HOST:PORT"}, {"state", "STATE"},    {"tag", "TAG"},
    {"on-conflict", "POLICY"},                       {"format", "FORMAT"},
    {"token-budget", "N"},   {"cost-budget", "USD"}, {"tokens", "N"},
    {"cost", "USD"},         {"name", "NAME"},       {"nodes", "NAME,..."},
    {"file", "FILE"},        {"ids", "ID..."},       {"dir", "DIR"},
    {"limit", "N"},          {"mode", "MODE"}};
  std::function<void(CLI::App*)> name_placeholders = [&](CLI::App* a) {
    for (auto* opt : a->get_options()) {
      auto names = opt->get_lnames();
      auto key = names.empty() ? opt->get_name() : names.front();
      if (auto i = placeholders.find(key); i != placeholders.end())
        opt->type_name(i->second);
    }
    for (auto* sub : a->get_subcommands({}))
      name_placeholders(sub);
  };
  name_placeholders(&app);

  // `bgagent help [COMMAND]`, and a mistyped command named with the
  // nearest one, before CLI11 sees them.
  std::vector<std::string> commands;
  for (auto* sub : app.get_subcommands({}))
    commands.push_back(sub->get_name());
  auto unknown = [&](const std::string& name) {
    auto best = closest_name(name, commands);
    std::cerr << "bgagent: unknown command '" << name << "'"
              << (best.empty() ? "" : " (did you mean '" + best + "'?)")
              << "; see bgagent help\n";
    return exit_code::usage;
  };
  if (argc >= 2 && std::string(argv[1]) == "help") {
    if (argc == 2) {
      std::cout << app.help();
      return exit_code::ok;
    }
    auto* sub = std::find(commands.begin(), commands.end(), argv[2]) !=
                    commands.end()
                  ? app.get_subcommand(argv[2])
                  : nullptr;
    if (!sub)
      return unknown(argv[2]);
    std::cout << sub->help();
    return exit_code::ok;
  }
  if (argc >= 2 && argv[1][0] != '-' &&
      std::find(commands.begin(), commands.end(), argv[1]) == commands.end())
    return unknown(argv[1]);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Point at the help of the command that was being parsed.
    std::string where = argc >= 2 && std::find(commands.begin(), commands.end(),
                                               argv[1]) != commands.end()
                          ? std::string("bgagent help ") + argv[1]
                          : std::string("bgagent help");
    std::cerr << "bgagent: " << e.what() << " (see " << where << ")\n";
    return exit_code::usage;
  }

  try {
    // certs needs no configuration (the variables it prints may name files
    // that do not exist yet).
    if (*certs) {
      co.nodes_given = c_nodes->count() > 0;
      return certs_init_command(co);
    }
    // Flags are one more source, the strongest; errors name them.
    auto src = gather_sources();
    auto flag = [&](const std::string& value, const char* var,
                    const char* name) {
      if (!value.empty())
        src.set(var, value, std::string("flag ") + name);
    };
    flag(db, "BG_AGENT_DB", "--db");
    flag(types_file, "BG_AGENT_TYPES", "--types");
    flag(workers, "BG_AGENT_WORKERS", "--workers");
    flag(shards, "BG_AGENT_SHARDS", "--shards");
    flag(provider, "LLM_PROVIDER", "--provider");
    flag(model, "MODEL", "--model");
    flag(base_url, "LLM_BASE_URL", "--base-url");
    flag(token_budget, "BG_AGENT_TOKEN_BUDGET", "--token-budget");
    flag(mode, "BG_AGENT_MODE", "--mode");
    flag(cost_budget, "BG_AGENT_COST_BUDGET", "--cost-budget");
    auto c = load_config(src);
    c.provider_explicit = !provider.empty();
    setup_logging(c.log_level);
    for (auto& w : src.warnings)
      spdlog::warn("{}", w);
    if (!providers.has(c.provider.name)) {
      std::string known;
      for (auto& n : providers.names())
        known += (known.empty() ? "" : ", ") + n;
      throw usage_error("LLM_PROVIDER / --provider \"" + c.provider.name +
                        "\": unknown provider (known: " + known + ")");
    }
    if (*run || *serve) {
      run_options o;
      o.tasks_file = tasks;
      o.on_conflict = on_conflict;
      o.follow = follow || *serve;
      if (*serve) {
        o.serve = true;
        o.http = http;
        o.schedules = schedules;
      }
      o.listen = listen;
      o.insecure_listen = insecure_listen;
      o.metrics = metrics;
      o.dry_run = dry_run;
      o.detach = detach;
      o.no_cache = no_cache;
      if (detach && c.mode != "batch")
        throw usage_error("--detach: only with --mode batch (or "
                          "BG_AGENT_MODE=batch)");
      return run_command(c, o, providers);
    }
    if (*worker) {
      worker_options wo;
      wo.connect = connect;
      wo.name = node_name;
      wo.stay = stay;
      wo.workers = c.workers; // --workers or BG_AGENT_WORKERS, default 4
      return worker_command(c, wo, providers);
    }
    if (*admin) {
      ao.connect = connect;
      ao.command = admin->get_subcommands().front()->get_name();
      ao.tokens = tokens;
      ao.cost = cost;
      return admin_command(c, ao);
    }
    if (*types)
      return types_command(c, json);
    if (*models)
      return models_command(c, json);
    if (*estimate)
      return estimate_command(c, tasks, json, providers);
    if (*submit)
      return submit_command(c, file, on_conflict);
    if (*batches)
      return batches_command(c, json);
    if (*status)
      return by_tag ? status_by_tag_command(c, json) : status_command(c, json);
    if (*results) {
      static const char* states[] = {"pending",     "running",
                                     "retry_wait",  "completed",
                                     "quarantined", "cancelled"};
      if (!state.empty() &&
          std::find(std::begin(states), std::end(states), state) ==
            std::end(states))
        throw usage_error("--state " + state +
                          ": not one of pending, running, retry_wait, "
                          "completed, quarantined, cancelled");
      if (results->count("--tag") && tag.empty())
        throw usage_error("--tag: a tag is 1 to 64 characters");
      results_query q;
      q.state = state;
      q.tag = tag;
      q.ids = ids;
      if (!limit.empty())
        q.limit = static_cast<int64_t>(
          parse_count("--limit " + limit, limit, 1, 1000000000));
      q.format = !format.empty() ? results_format::openai_batch
                 : json          ? results_format::json
                                 : results_format::table;
      return results_command(c, q);
    }
    if (*requeue) {
      if (ids.empty() && !all_quarantined && !completed)
        throw usage_error("requeue: give task ids, --quarantined or "
                          "--completed");
      return requeue_command(c, ids, all_quarantined || (completed &&
                                                         ids.empty()),
                             completed ? "completed" : "quarantined");
    }
  } catch (const exit_error& e) {
    std::cerr << "bgagent: " << e.what() << "\n";
    return e.code();
  } catch (const usage_error& e) {
    std::cerr << "bgagent: " << e.what() << "\n";
    return exit_code::usage;
  } catch (const store_error& e) {
    std::cerr << "bgagent: " << e.what() << "\n";
    return e.bad_input() ? exit_code::usage : exit_code::internal;
  } catch (const std::exception& e) {
    std::cerr << "bgagent: internal error: " << e.what() << "\n";
    return exit_code::internal;
  }
  return exit_code::usage;
}

} // namespace bgagent
