// Alerts reach a human: a stalled worker trips the dead man's switch,
// consecutive failures escalate, budget alarms fire once each, and every
// alert lands in the alerts JSONL file, the audit log and the webhook.
#include <catch2/catch.hpp>

#include <mutex>
#include <thread>

#include <httplib.h>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

std::vector<nlohmann::json> alerts_of_kind(const temp_dir& dir,
                                           const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (auto& a : read_jsonl(dir.path("bgagent-alerts.jsonl")))
    if (a.value("kind", "") == kind)
      out.push_back(a);
  return out;
}

// An HTTP receiver on 127.0.0.1 that keeps every JSON body POSTed to /hook.
class webhook_receiver {
public:
  webhook_receiver() {
    server_.Post("/hook", [this](const httplib::Request& req,
                                 httplib::Response& res) {
      std::lock_guard<std::mutex> g(m_);
      bodies_.push_back(req.body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~webhook_receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> g(m_);
    return bodies_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard<std::mutex> g(m_);
    return content_types_;
  }

private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex m_;
  std::vector<std::string> bodies_, content_types_;
};

} // namespace

TEST_CASE("a stalled worker trips the dead man's switch", "[e2e][alerts]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"),
              {make_task("stall", "summarize", "This one stalls. [hang:3000]"),
               make_task("ok", "summarize", "This one is fine.")});
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_DEADMAN_SECONDS", "1"},
              {"BG_AGENT_HEARTBEAT_SECONDS", "0.2"},
              {"BG_AGENT_TIMEOUT", "60"}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0); // the stalled call finished after all
  auto dms = alerts_of_kind(dir, "dead_mans_switch");
  REQUIRE(dms.size() == 1); // one alert per silence
  CHECK(dms[0]["severity"] == "critical");
  CHECK(dms[0]["task_id"] == "stall");
  CHECK(dms[0]["message"].get<std::string>().find("sent no heartbeat") !=
        std::string::npos);
  CHECK(r.err.find("ALERT dead_mans_switch") != std::string::npos);
  auto audited = audit_events(dir.path("bgagent-audit.jsonl"), "alert");
  REQUIRE(audited.size() == 1);
  CHECK(audited[0]["detail"].get<std::string>().find(
          "critical dead_mans_switch") == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 2);
}

TEST_CASE("consecutive failures escalate once, also to the webhook",
          "[e2e][alerts]") {
  temp_dir dir;
  webhook_receiver hook;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(3, "f", " [fail]"));
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "1"},
              {"BG_AGENT_MAX_RETRIES", "0"},
              {"BG_AGENT_ESCALATE_AFTER", "3"},
              {"BG_AGENT_ALERT_WEBHOOK", hook.url()}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0); // all three quarantined
  auto esc = alerts_of_kind(dir, "failure_escalation");
  REQUIRE(esc.size() == 1);
  CHECK(esc[0]["severity"] == "critical");
  CHECK(esc[0]["message"].get<std::string>().find("3 consecutive failed "
                                                  "attempts") !=
        std::string::npos);
  CHECK(status_json(dir.path())["tasks"]["quarantined"] == 3);

  // The webhook got the same JSON the alerts file holds.
  REQUIRE(wait_until([&] { return !hook.bodies().empty(); }, 30));
  auto bodies = hook.bodies();
  REQUIRE(bodies.size() == 1);
  CHECK(hook.content_types()[0] == "application/json");
  auto j = nlohmann::json::parse(bodies[0]);
  CHECK(j["kind"] == "failure_escalation");
  CHECK(j["severity"] == "critical");
  CHECK(j["message"] == esc[0]["message"]);
  CHECK(j["ts"].is_string());
  CHECK(j["run"] == "1");
  CHECK(j.contains("task_id"));
}

TEST_CASE("budget alarms fire at 50 and 80 percent spent in order, and the "
          "stop raises budget_exhausted once",
          "[e2e][alerts][budget]") {
  temp_dir dir;
  webhook_receiver hook;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(60));
  // One worker: at most two reservations of 84 tokens are out when one is
  // refused (a call, and an answer being stored), so the run stops past
  // 2000 - 3 * 84 = 1748 tokens spent, beyond 80 %. With 8 workers, 15
  // reservations could be out and the spending stop anywhere above 50 %.
  env_map env{{"LLM_PROVIDER", "scripted"},
              {"BG_AGENT_WORKERS", "1"},
              {"BG_AGENT_TOKEN_BUDGET", "2000"},
              {"BG_AGENT_ALERT_WEBHOOK", hook.url()}};
  auto r = run_testbin({"run", "--tasks", "tasks.jsonl"}, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 3);
  // Each level once, in order: they count what was spent. Reservations
  // never let spending reach 100 %; the refused call says the budget is
  // exhausted instead.
  auto alarms = audit_events(dir.path("bgagent-audit.jsonl"), "budget_alarm");
  REQUIRE(alarms.size() == 2);
  CHECK(alarms[0]["detail"].get<std::string>().find("token budget 50% used") ==
        0);
  CHECK(alarms[1]["detail"].get<std::string>().find("token budget 80% used") ==
        0);
  auto budget_alerts = alerts_of_kind(dir, "budget_alarm");
  REQUIRE(budget_alerts.size() == 2);
  for (auto& a : budget_alerts)
    CHECK(a["severity"] == "warning");
  auto exhausted = alerts_of_kind(dir, "budget_exhausted");
  REQUIRE(exhausted.size() == 1);
  CHECK(exhausted[0]["severity"] == "critical");
  CHECK(exhausted[0]["message"].get<std::string>().find(
          "budget exhausted, no new calls start: token budget: ") == 0);
  // The webhook hears all three. The process has exited, so every POST was
  // made: no later one can arrive.
  CHECK(hook.bodies().size() == 3);

  // Resuming the same run with the same budget does not raise them again.
  auto again = run_testbin({"run"}, dir.path(), env);
  CHECK(again.exit_code == 3);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "budget_alarm").size() ==
        2);
  CHECK(alerts_of_kind(dir, "budget_exhausted").size() == 1);
}
