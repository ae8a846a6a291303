// Controlling provider batches from outside the run: `admin cancel-batch`
// against a listening head, and `serve`'s HTTP API (GET /v1/batches, POST
// /v1/batches/{id}/cancel, the batch gauges in /metrics) collecting a batch
// submitted with `run --mode batch --detach`.
#include <catch2/catch.hpp>

#include <csignal>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/batch_server.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/http_call.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

env_map no_retry_batch_env(const batch_server& server) {
  auto env = server.env();
  env["BG_AGENT_MAX_RETRIES"] = "0";
  return env;
}

// The one batch `batches --json` lists.
json only_batch(const std::string& dir, const env_map& env) {
  auto r = run_bgagent({"batches", "--json"}, dir, env);
  REQUIRE(r.exit_code == 0);
  auto rows = json_lines(r.out);
  REQUIRE(rows.size() == 1);
  return rows[0];
}

} // namespace

TEST_CASE("admin cancel-batch: the provider is asked, the requests left "
          "undone go back to the queue counted, the run ends",
          "[e2e][batch][admin]") {
  temp_dir dir;
  batch_server server;
  server.hang = true; // in progress until cancelled
  write_tasks(dir.path("tasks.jsonl"), make_tasks(6));
  const std::string secret = "batch-admin-secret";
  auto env = with_secret(secret, no_retry_batch_env(server));
  env["BG_AGENT_MODE"] = "batch";
  int port = free_port();
  background_process head({bgagent_binary(), "run", "--tasks", "tasks.jsonl",
                           "--insecure-listen", loopback(port)},
                          dir.path(), env, "head");
  REQUIRE(wait_for_output(head, "listening for worker", 30));
  REQUIRE(wait_until([&] { return server.count("GET", "/v1/batches/") >= 2; },
                     30));
  auto id = only_batch(dir.path(), env)["id"].get<std::string>();

  auto bad = run_bgagent({"admin", "--connect", loopback(port),
                          "cancel-batch", "b-nosuchbatch"},
                         dir.path(), with_secret(secret));
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "no open batch b-nosuchbatch"));
  auto r = run_bgagent({"admin", "--connect", loopback(port), "cancel-batch",
                        id},
                       dir.path(), with_secret(secret));
  INFO(r.err << head.err());
  REQUIRE(r.exit_code == 0);
  REQUIRE(contains(r.out, "cancel asked of the provider"));
  REQUIRE(head.wait(60) == 0);
  REQUIRE(server.count("POST", "/v1/batches/batch_") == 1); // .../cancel
  auto b = only_batch(dir.path(), env);
  CHECK(b["state"] == "cancelled");
  CHECK(b["failed"] == 6);
  auto results = results_by_id(dir.path(), env);
  for (auto& [tid, rec] : results) {
    CHECK(rec["state"] == "quarantined"); // no retries allowed
    CHECK(contains(rec["error"].get<std::string>(),
                   "left undone by the provider (batch cancelled)"));
  }
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "batch_cancelled").size() == 1);
  CHECK(audit_events(audit, "admin_command").size() >= 1);
}

TEST_CASE("serve collects a detached batch: GET /v1/batches lists it, "
          "/metrics counts it, POST /v1/batches/ID/cancel cancels it",
          "[e2e][batch][serve]") {
  temp_dir dir;
  batch_server server;
  server.hang = true;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(4));
  auto env = no_retry_batch_env(server);
  env["BG_AGENT_MODE"] = "batch";
  auto r = run_bgagent({"run", "--tasks", "tasks.jsonl", "--detach"},
                       dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto id = only_batch(dir.path(), env)["id"].get<std::string>();

  auto live = no_retry_batch_env(server);
  live["BG_AGENT_API_TOKEN"] = "a-token-long-enough-1234";
  live["BG_AGENT_POLL_INTERVAL"] = "1";
  int port = free_port();
  auto url = [&](const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  };
  background_process serve({bgagent_binary(), "serve", "--http",
                            "127.0.0.1:" + std::to_string(port)},
                           dir.path(), live, "serve");
  REQUIRE(wait_for_output(serve, "HTTP API and dashboard at", 30));
  auto token = live["BG_AGENT_API_TOKEN"];
  REQUIRE(wait_until(
    [&] {
      auto m = http_call("GET", url("/metrics"), token);
      return contains(m.body, "bgagent_batches_open 1") &&
             contains(m.body, "bgagent_batch_tasks 4");
    },
    30));
  auto list = http_call("GET", url("/v1/batches"), token);
  REQUIRE(list.status == 200);
  auto row = json::parse(list.body.substr(0, list.body.find('\n')));
  CHECK(row["id"] == id);
  CHECK(row["tasks"] == 4);
  CHECK(http_call("GET", url("/v1/batches")).status == 401);

  auto none = http_call("POST", url("/v1/batches/b-other/cancel"), token, "");
  CHECK(none.status == 409);
  auto c = http_call("POST", url("/v1/batches/" + id + "/cancel"), token, "");
  INFO(c.body);
  REQUIRE(c.status == 200);
  REQUIRE(c.json()["cancelling"] == id);
  REQUIRE(wait_until(
    [&] {
      auto s = http_call("GET", url("/v1/status"), token).json();
      return s.is_object() && s["tasks"]["quarantined"] == 4;
    },
    30));
  auto m = http_call("GET", url("/metrics"), token);
  CHECK(contains(m.body, "bgagent_batches_open 0"));
  serve.signal(SIGTERM);
  REQUIRE(serve.wait(30) == 128 + SIGTERM);
  CHECK(only_batch(dir.path(), env)["state"] == "cancelled");
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "batch_cancelled")
          .size() == 1);
}
