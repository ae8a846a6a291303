// Batch mode (DESIGN.md section 13) through the real binary, against the
// scripted Files + Batches server of tests/support/batch_server.hpp:
// results equal what the server computed for each custom_id, kill -9 at
// each remote step creates no second batch and loses nothing, failures
// and expiry resubmit exactly the failed tasks, budgets hold at the batch
// price, --detach leaves the batches for a later run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/support/aimock.hpp"
#include "tests/support/batch_server.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

// A run against `server` in batch mode (batch_server::env()).
env_map batch_env(const batch_server& server) {
  auto env = server.env();
  env["BG_AGENT_MODE"] = "batch";
  return env;
}

// The ids of `n` tasks t1..tn.
std::set<std::string> ids_of(int n, const std::string& prefix = "t") {
  std::set<std::string> out;
  for (int i = 1; i <= n; ++i)
    out.insert(prefix + std::to_string(i));
  return out;
}

// Every task completed with the server's answer for it.
void require_all_answered(const std::string& dir, int n,
                          const env_map& env) {
  auto results = results_by_id(dir, env);
  REQUIRE(results.size() == static_cast<size_t>(n));
  for (auto& [id, r] : results) {
    INFO(id << ": " << r.dump());
    REQUIRE(r["state"] == "completed");
    REQUIRE(r["result"] == json::parse(batch_server::answer_for(id)));
  }
}

// Each task's task_completed appears exactly once in the audit log.
void require_completed_once(const std::string& audit, int n) {
  auto done = count_events_by_task(audit, "task_completed");
  REQUIRE(done.size() == static_cast<size_t>(n));
  for (auto& [id, k] : done) {
    INFO(id);
    REQUIRE(k == 1);
  }
}

std::vector<json> batches_json(const std::string& dir, const env_map& env) {
  auto r = run_bgagent({"batches", "--json"}, dir, env);
  REQUIRE(r.exit_code == 0);
  return json_lines(r.out);
}

} // namespace

TEST_CASE("batch mode: 2,000 tasks complete through the Batch API, three "
          "batches of at most 800, each result the server's for its "
          "custom_id, charged at half price",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(2000));
  auto env = batch_env(server);
  env["BG_AGENT_BATCH_MAX_REQUESTS"] = "800";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env,
                       300);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  require_all_answered(dir.path(), 2000, env);
  require_completed_once(dir.path("bgagent-audit.jsonl"), 2000);

  // Three batches, disjoint, covering every task, none over the limit.
  auto made = server.batches();
  REQUIRE(made.size() == 3);
  std::set<std::string> seen;
  for (auto& b : made) {
    REQUIRE(b.custom_ids.size() <= 800);
    REQUIRE(b.local_id.rfind("b-", 0) == 0);
    for (auto& id : b.custom_ids)
      REQUIRE(seen.insert(id).second);
  }
  REQUIRE(seen == ids_of(2000));
  REQUIRE(server.files_uploaded() == 3);

  // Charged at the batch price: 2,000 x (10 x $0.50 + 5 x $1.00) / 1e6.
  auto st = status_json(dir.path(), env);
  REQUIRE(st["budget"]["cost_used"].get<double>() == Approx(0.02));
  REQUIRE(st["budget"]["tokens_used"] == 30000);

  auto rows = batches_json(dir.path(), env);
  REQUIRE(rows.size() == 3);
  uint64_t tasks = 0;
  for (auto& b : rows) {
    REQUIRE(b["state"] == "completed");
    REQUIRE(b["completed"] == b["tasks"]);
    REQUIRE(b["failed"] == 0);
    REQUIRE(b["provider_batch_id"].get<std::string>().rfind("batch_", 0) ==
            0);
    tasks += b["tasks"].get<uint64_t>();
  }
  REQUIRE(tasks == 2000);
  auto audit = dir.path("bgagent-audit.jsonl");
  REQUIRE(audit_events(audit, "batch_created").size() == 3);
  REQUIRE(audit_events(audit, "batch_submitted").size() == 3);
  REQUIRE(audit_events(audit, "batch_ended").size() == 3);
}

TEST_CASE("batch mode: each request line is the body the live path sends",
          "[e2e][batch]") {
  temp_dir dir;
  std::mutex m;
  json live_body;
  raw_http_server live([&](const raw_request& req) {
    std::lock_guard<std::mutex> lock(m);
    live_body = json::parse(req.body);
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(batch_server::answer_for("t1")))};
  });
  batch_server server;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(1));
  auto env = batch_env(server);
  REQUIRE(run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env)
            .exit_code == 0);
  temp_dir dir2;
  write_tasks(dir2.path("tasks.jsonl"), make_tasks(1));
  auto env2 = env;
  env2["BG_AGENT_MODE"] = "live";
  env2["LLM_BASE_URL"] = live.base_url();
  REQUIRE(run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir2.path(), env2)
            .exit_code == 0);
  auto made = server.batches();
  REQUIRE(made.size() == 1);
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(made[0].requests["t1"] == live_body);
}

TEST_CASE("batch mode: kill -9 after upload, after create, while polling "
          "and while downloading, then run again: one provider batch, "
          "every result, each completed once",
          "[e2e][batch][crash]") {
  for (std::string step : {"upload", "create", "get", "content"}) {
    DYNAMIC_SECTION("killed at " << step) {
      temp_dir dir;
      batch_server server;
      server.polls_per_step = 2;
      write_tasks(dir.path("tasks.jsonl"), make_tasks(50));
      auto env = batch_env(server);
      std::atomic<int> pid{0};
      std::atomic<bool> killed{false};
      server.hook = [&](const std::string& what) {
        if (what == step && !killed.exchange(true) && pid.load() > 0)
          ::kill(pid.load(), SIGKILL);
      };
      {
        background_process p({bgagent_binary(), "run", "--tasks",
                              "tasks.jsonl"},
                             dir.path(), env);
        pid = p.pid();
        REQUIRE(p.wait(60) == 128 + SIGKILL);
      }
      REQUIRE(killed.load());
      {
        std::lock_guard<std::mutex> lock(server.mtx);
        server.hook = nullptr;
      }
      auto r = run_bgagent({"run"}, dir.path(), env, 120);
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      REQUIRE(server.batches().size() == 1);
      REQUIRE(server.batches()[0].custom_ids.size() == 50);
      require_all_answered(dir.path(), 50, env);
      require_completed_once(dir.path("bgagent-audit.jsonl"), 50);
      // Killed before it heard of its file: uploaded again, sent once.
      REQUIRE(server.files_uploaded() == (step == "upload" ? 2u : 1u));
      auto st = status_json(dir.path(), env);
      REQUIRE(st["budget"]["cost_used"].get<double>() == Approx(50 * 1e-5));
    }
  }
}

TEST_CASE("batch mode: an expired batch with failed and invalid answers "
          "resubmits exactly those tasks, each attempt counted",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.expire_after = 15;          // t16..t20 left undone
  server.fail_ids = {"t3", "t7"};    // 500 in the error file
  server.bad_ids = {"t5"};           // fails the summarize schema
  server.hook = [&](const std::string& what) {
    if (what != "create")
      return;
    std::lock_guard<std::mutex> lock(server.mtx);
    server.expire_after = 0;
    server.fail_ids.clear();
    server.bad_ids.clear();
  };
  write_tasks(dir.path("tasks.jsonl"), make_tasks(20));
  auto env = batch_env(server);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto made = server.batches();
  REQUIRE(made.size() == 2);
  std::set<std::string> second(made[1].custom_ids.begin(),
                               made[1].custom_ids.end());
  REQUIRE(second == std::set<std::string>{"t3", "t5", "t7", "t16", "t17",
                                          "t18", "t19", "t20"});
  require_all_answered(dir.path(), 20, env);
  require_completed_once(dir.path("bgagent-audit.jsonl"), 20);
  auto results = results_by_id(dir.path(), env);
  for (auto& [id, rec] : results)
    REQUIRE(rec["attempts"] == (second.count(id) ? 2 : 1));
  auto rows = batches_json(dir.path(), env);
  REQUIRE(rows.size() == 2);
  // Newest first.
  REQUIRE(rows[1]["state"] == "expired");
  REQUIRE(rows[1]["completed"] == 12);
  REQUIRE(rows[1]["failed"] == 8);
  REQUIRE(rows[0]["state"] == "completed");
  // Only answers are charged: 12 + 1 invalid answer + 8 = 21 x $0.00001.
  auto st = status_json(dir.path(), env);
  REQUIRE(st["budget"]["cost_used"].get<double>() == Approx(21 * 1e-5));
}

TEST_CASE("batch mode: with no retries left, failed requests are "
          "quarantined and no second batch is made",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.fail_ids = {"t2"};
  write_tasks(dir.path("tasks.jsonl"), make_tasks(4));
  auto env = batch_env(server);
  env["BG_AGENT_MAX_RETRIES"] = "0";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  auto results = results_by_id(dir.path(), env);
  REQUIRE(results["t2"]["state"] == "quarantined");
  REQUIRE(contains(results["t2"]["error"].get<std::string>(), "HTTP 500"));
  REQUIRE(results["t1"]["state"] == "completed");
}

TEST_CASE("batch mode: a failed batch sends all its tasks to a new one, "
          "the provider's request limit is never passed",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.fail_batch = true;
  server.max_requests = 10;
  server.hook = [&](const std::string& what) {
    if (what != "create")
      return;
    std::lock_guard<std::mutex> lock(server.mtx);
    server.fail_batch = false; // only the first batch fails
  };
  write_tasks(dir.path("tasks.jsonl"), make_tasks(25));
  auto env = batch_env(server);
  env["BG_AGENT_BATCH_MAX_REQUESTS"] = "10";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto made = server.batches();
  // 10 + 10 + 5, the first of which failed: its 10 again.
  REQUIRE(made.size() == 4);
  for (auto& b : made)
    REQUIRE(b.custom_ids.size() <= 10);
  // One later batch is exactly the failed one's tasks again; the other two
  // hold the rest, each task once.
  auto set_of = [](const std::vector<std::string>& v) {
    return std::set<std::string>(v.begin(), v.end());
  };
  auto failed = set_of(made[0].custom_ids);
  int again = 0;
  std::multiset<std::string> rest;
  for (size_t i = 1; i < made.size(); ++i) {
    if (set_of(made[i].custom_ids) == failed)
      ++again;
    else
      rest.insert(made[i].custom_ids.begin(), made[i].custom_ids.end());
  }
  REQUIRE(again == 1);
  REQUIRE(rest.size() == 15);
  for (auto& id : failed)
    REQUIRE(rest.count(id) == 0);
  require_all_answered(dir.path(), 25, env);
  auto rows = batches_json(dir.path(), env);
  REQUIRE(rows.back()["state"] == "failed");
  REQUIRE(contains(rows.back()["error"].get<std::string>(),
                   "the input file is invalid"));
}

TEST_CASE("batch mode: the budget reserves each task's worst case at the "
          "batch price, a batch that does not fit is cut and the rest stays "
          "pending: exit 3",
          "[e2e][batch][budget]") {
  temp_dir dir;
  batch_server server;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(40));
  auto env = batch_env(server);
  // A task's worst case at the batch price is about (60 x 0.5 + 32 x 1) /
  // 1e6 = $0.00006: about 20 fit in $0.0012.
  env["BG_AGENT_COST_BUDGET"] = "0.0012";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 3);
  auto made = server.batches();
  REQUIRE(made.size() == 1);
  auto placed = made[0].custom_ids.size();
  REQUIRE(placed > 5);
  REQUIRE(placed < 40);
  auto st = status_json(dir.path(), env);
  REQUIRE(st["tasks"]["completed"] == placed);
  REQUIRE(st["tasks"]["pending"] == 40 - placed);
  REQUIRE(st["budget"]["cost_used"].get<double>() ==
          Approx(static_cast<double>(placed) * 1e-5));
  REQUIRE(st["budget"]["cost_used"].get<double>() <= 0.0012);
}

TEST_CASE("batch mode: --detach submits and exits 0 and a later run collects "
          "without a second batch",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.polls_per_step = 1000000; // nothing ends while the first run is on
  write_tasks(dir.path("tasks.jsonl"), make_tasks(30));
  auto env = batch_env(server);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--detach"},
                       dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  auto st = status_json(dir.path(), env);
  REQUIRE(st["tasks"]["running"] == 30);
  auto rows = batches_json(dir.path(), env);
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0]["state"] == "submitted");
  REQUIRE(rows[0]["tasks"] == 30);
  auto table = run_bgagent({"status"}, dir.path(), env);
  REQUIRE(contains(table.out, "1 open at the provider"));
  REQUIRE(contains(table.out, rows[0]["id"].get<std::string>() +
                                " submitted, 30 task(s)"));
  REQUIRE(st["batches"].size() == 1);
  REQUIRE(st["batches"][0]["id"] == rows[0]["id"]);
  {
    std::lock_guard<std::mutex> lock(server.mtx);
    server.polls_per_step = 1;
  }
  // A live run collects what is open.
  auto live = env;
  live["BG_AGENT_MODE"] = "live";
  auto r2 = run_bgagent({"run"}, dir.path(), live);
  INFO(r2.err);
  REQUIRE(r2.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  require_all_answered(dir.path(), 30, env);
  require_completed_once(dir.path("bgagent-audit.jsonl"), 30);
}

TEST_CASE("batch mode: a batch in progress is not silence: no dead man's "
          "switch while waiting, and SIGTERM leaves it for the next run",
          "[e2e][batch][signals]") {
  temp_dir dir;
  batch_server server;
  server.hang = true;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(5));
  auto env = batch_env(server);
  env["BG_AGENT_DEADMAN_SECONDS"] = "1";
  {
    background_process p({bgagent_binary(), "run", "--tasks", "tasks.jsonl"},
                         dir.path(), env);
    REQUIRE(wait_until([&] { return server.count("GET", "/v1/batches/") >= 3; },
                       30));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    p.signal(SIGTERM);
    REQUIRE(p.wait(30) == 128 + SIGTERM);
  }
  REQUIRE(read_jsonl(dir.path("bgagent-alerts.jsonl")).empty());
  {
    std::lock_guard<std::mutex> lock(server.mtx);
    server.hang = false;
  }
  auto r = run_bgagent({"run"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  require_all_answered(dir.path(), 5, env);
}

TEST_CASE("batch mode: with BG_AGENT_BATCH_RETRY=live the tasks a batch "
          "failed run live once the batches are done",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.fail_ids = {"t2", "t4"};
  write_tasks(dir.path("tasks.jsonl"), make_tasks(6));
  auto env = batch_env(server);
  env["BG_AGENT_BATCH_RETRY"] = "live";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  REQUIRE(server.count("POST", "/v1/chat/completions") == 2);
  auto results = results_by_id(dir.path(), env);
  for (auto& [id, rec] : results) {
    REQUIRE(rec["state"] == "completed");
    if (id == "t2" || id == "t4") {
      REQUIRE(rec["result"] == json{{"summary", "live"}});
      REQUIRE(rec["attempts"] == 2);
    } else {
      REQUIRE(rec["result"] == json::parse(batch_server::answer_for(id)));
    }
  }
}

TEST_CASE("batch mode: an upload the provider refuses (401) gives every "
          "task back uncounted, makes no batch and stops with exit 7",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.refuse_uploads = 401;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(5));
  auto env = batch_env(server);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 7);
  REQUIRE(contains(r.err, "HTTP 401"));
  REQUIRE(server.batches().empty());
  REQUIRE(server.count("POST", "/v1/files") == 1); // once, not per task
  auto st = status_json(dir.path(), env);
  REQUIRE(st["tasks"]["pending"] == 5);
  REQUIRE(st["budget"]["cost_used"] == 0);
  for (auto& [id, rec] : results_by_id(dir.path(), env))
    REQUIRE(rec["attempts"] == 0);
  auto alerts = read_jsonl(dir.path("bgagent-alerts.jsonl"));
  REQUIRE(alerts.size() == 1);
  REQUIRE(alerts[0]["kind"] == "batch_refused");
  // Fixed: the next run sends them.
  {
    std::lock_guard<std::mutex> lock(server.mtx);
    server.refuse_uploads = 0;
  }
  REQUIRE(run_bgagent({"run"}, dir.path(), env).exit_code == 0);
  require_all_answered(dir.path(), 5, env);
}

TEST_CASE("batch mode: a batch the provider no longer knows is never failed "
          "here nor sent again: alerted, left open, exit 4",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.forget_batches = true;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(5));
  auto env = batch_env(server);
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 4);
  REQUIRE(server.batches().size() == 1);
  auto st = status_json(dir.path(), env);
  REQUIRE(st["tasks"]["running"] == 5); // still the provider's
  REQUIRE(st["batches"].size() == 1);
  auto alerts = read_jsonl(dir.path("bgagent-alerts.jsonl"));
  REQUIRE(alerts.size() == 1);
  REQUIRE(alerts[0]["kind"] == "batch_unreachable");
  // The provider knows it again: the next run collects it, no second batch.
  {
    std::lock_guard<std::mutex> lock(server.mtx);
    server.forget_batches = false;
  }
  REQUIRE(run_bgagent({"run"}, dir.path(), env).exit_code == 0);
  REQUIRE(server.batches().size() == 1);
  require_all_answered(dir.path(), 5, env);
}

TEST_CASE("batch mode: a batch still open an hour past its 24 h window "
          "raises one critical batch_overdue alert",
          "[e2e][batch]") {
  temp_dir dir;
  batch_server server;
  server.hang = true;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(3));
  auto env = batch_env(server);
  REQUIRE(run_bgagent({"run", "--tasks", "tasks.jsonl", "--detach"},
                      dir.path(), env)
            .exit_code == 0);
  // Submitted 26 hours ago, as far as the store knows.
  REQUIRE(sql_exec(dir.path("bgagent.db"),
                   "UPDATE batches SET submitted_at = strftime('%Y-%m-%dT%H:"
                   "%M:%SZ', 'now', '-26 hours')"));
  background_process p({bgagent_binary(), "run"}, dir.path(), env);
  auto alerts = [&] {
    std::vector<json> out;
    for (auto& a : read_jsonl(dir.path("bgagent-alerts.jsonl")))
      if (a["kind"] == "batch_overdue")
        out.push_back(a);
    return out;
  };
  REQUIRE(wait_until([&] { return !alerts().empty(); }, 30));
  // Polled again and again: still one alert.
  auto polls = server.count("GET", "/v1/batches/");
  REQUIRE(wait_until(
    [&] { return server.count("GET", "/v1/batches/") >= polls + 5; }, 30));
  p.signal(SIGTERM);
  REQUIRE(p.wait(30) == 128 + SIGTERM);
  auto found = alerts();
  REQUIRE(found.size() == 1);
  CHECK(found[0]["severity"] == "critical");
  CHECK(contains(found[0]["message"].get<std::string>(),
                 "in_progress 26 h after it was submitted (window 24 h)"));
}

TEST_CASE("batch mode: a prices file's batch price wins over the discount",
          "[e2e][batch][budget]") {
  temp_dir dir;
  batch_server server;
  write_file(dir.path("prices.yaml"),
             "gpt-test:\n"
             "  prompt: 1\n"
             "  completion: 2\n"
             "  batch: {prompt: 0.2, completion: 0.4}\n");
  write_tasks(dir.path("tasks.jsonl"), make_tasks(10));
  auto env = batch_env(server);
  env.erase("BG_AGENT_PRICE_PROMPT");
  env.erase("BG_AGENT_PRICE_COMPLETION");
  env["BG_AGENT_PRICES"] = dir.path("prices.yaml");
  env["BG_AGENT_BATCH_DISCOUNT"] = "0.9"; // not used: the file says
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // 10 x (10 x $0.20 + 5 x $0.40) / 1e6
  REQUIRE(status_json(dir.path(), env)["budget"]["cost_used"].get<double>() ==
          Approx(10 * 4e-6));
}

TEST_CASE("batch mode: refused with a provider that has no Batch API",
          "[e2e][batch][cli]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(1));
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--mode", "batch"},
                       dir.path());
  REQUIRE(r.exit_code == 2);
  REQUIRE(contains(r.err, "--mode batch: provider offline has no Batch API"));
  auto d = run_bgagent({"run", "--detach"}, dir.path());
  REQUIRE(d.exit_code == 2);
  REQUIRE(contains(d.err, "--detach: only with --mode batch"));
  auto bad = run_bgagent({"run"}, dir.path(), {{"BG_AGENT_MODE", "bulk"}});
  REQUIRE(bad.exit_code == 2);
  REQUIRE(contains(bad.err, "BG_AGENT_MODE=bulk"));
}

TEST_CASE("batch mode against aimock's independent Files + Batches API: "
          "chat lines go in one batch and every answer comes back",
          "[e2e][batch][aimock]") {
  SKIP_WITHOUT_AIMOCK();
  temp_dir dir;
  aimock_server mock({}, dir.path());
  std::string lines;
  for (int i = 1; i <= 8; ++i)
    lines += json{{"custom_id", "c" + std::to_string(i)},
                  {"method", "POST"},
                  {"url", "/v1/chat/completions"},
                  {"body",
                   {{"model", "gpt-test"},
                    {"messages",
                     {{{"role", "user"},
                       {"content", "Hello " + std::to_string(i)}}}},
                    {"max_tokens", 16}}}}
               .dump() +
             "\n";
  write_file(dir.path("requests.jsonl"), lines);
  env_map env{{"LLM_PROVIDER", "openai"},
              {"LLM_BASE_URL", mock.openai_base()},
              {"MODEL", "gpt-test"},
              {"BG_AGENT_PRICE_PROMPT", "1"},
              {"BG_AGENT_PRICE_COMPLETION", "2"},
              {"BG_AGENT_BATCH_POLL", "0.1"},
              {"BG_AGENT_MODE", "batch"}};
  auto r = run_bgagent({"run", "--tasks", "requests.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto results = results_by_id(dir.path(), env);
  REQUIRE(results.size() == 8);
  for (auto& [id, rec] : results) {
    INFO(id << ": " << rec.dump());
    REQUIRE(rec["state"] == "completed");
    REQUIRE(rec["result"] == json{{"role", "assistant"},
                                  {"content", "Mock batch completion"}});
    REQUIRE(rec["attempts"] == 1);
  }
  auto rows = batches_json(dir.path(), env);
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0]["state"] == "completed");
  REQUIRE(rows[0]["tasks"] == 8);
  REQUIRE(rows[0]["completed"] == 8);
}
