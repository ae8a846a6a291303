// `bgagent serve` as a user runs it: the real binary with its HTTP API on a
// loopback port, driven over real HTTP (libcurl): the bearer token and its
// file, submissions in every accepted shape with the CLI's validation and
// conflict rules, reads, paging, a task's events, control, the budget that
// keeps the service up, SIGTERM.
#include <catch2/catch.hpp>

#include <csignal>
#include <ctime>
#include <map>
#include <set>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/http_call.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

// A service in `dir` on a free port; stopped with SIGTERM by stop().
struct service {
  const temp_dir& dir;
  int port = free_port();
  std::unique_ptr<background_process> proc;
  std::string token;

  explicit service(const temp_dir& d, env_map env = {},
                   std::vector<std::string> extra = {})
    : dir(d) {
    env.emplace("BG_AGENT_POLL_INTERVAL", "1");
    std::vector<std::string> argv{bgagent_binary(), "serve", "--http",
                                  "127.0.0.1:" + std::to_string(port)};
    for (auto& a : extra)
      argv.push_back(a);
    proc = std::make_unique<background_process>(argv, d.path(), env, "serve");
    REQUIRE(wait_for_output(*proc, "HTTP API and dashboard at", 30));
    auto t = env.find("BG_AGENT_API_TOKEN");
    token = t != env.end() ? t->second
                           : trimmed(read_file(d.path("bgagent.db.api-token")));
  }
  static std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
      s.pop_back();
    return s;
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
  http_answer get(const std::string& path) const {
    return http_call("GET", url(path), token);
  }
  http_answer post(const std::string& path, const std::string& body) const {
    return http_call("POST", url(path), token, body);
  }
  json status() const { return get("/v1/status").json(); }
  bool all_done(uint64_t n) const {
    auto s = status();
    return s.is_object() && s["tasks"]["completed"].get<uint64_t>() +
                                s["tasks"]["quarantined"].get<uint64_t>() ==
                              n;
  }
  int stop() {
    proc->signal(SIGTERM);
    return proc->wait(60);
  }
};

std::string task_line(const std::string& id, const std::string& input) {
  return json{{"id", id}, {"type", "summarize"}, {"input", input}}.dump() +
         "\n";
}

std::string task_lines(const std::string& prefix, int n) {
  std::string out;
  for (int i = 1; i <= n; ++i)
    out += task_line(prefix + std::to_string(i),
                     "Text number " + std::to_string(i) + ". It is short.");
  return out;
}

// "schedule 'SPEC' at 2026-11-27T12:45:00Z: ..." -> the firing time.
std::string firing_of(const std::string& detail) {
  auto at = detail.find("' at ") + 5;
  return detail.substr(at, detail.find(':', at + 17) - at);
}

} // namespace

TEST_CASE("serve: every API path needs the bearer token (401, audited), "
          "the token file is 0600 and the same after a restart, SIGTERM "
          "ends with 143",
          "[e2e][serve]") {
  temp_dir dir;
  std::string first_token;
  {
    service svc(dir);
    first_token = svc.token;
    struct stat st {};
    REQUIRE(::stat(dir.path("bgagent.db.api-token").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(first_token.size() == 64);
    CHECK(first_token.find_first_not_of("0123456789abcdef") ==
          std::string::npos);
    // The URL printed at start names the token's file; the token itself
    // goes only to a terminal, never to a log.
    CHECK(svc.proc->err().find("bearer token from bgagent.db.api-token") !=
          std::string::npos);
    CHECK(svc.proc->err().find(first_token) == std::string::npos);

    auto none = http_call("GET", svc.url("/v1/status"));
    CHECK(none.status == 401);
    CHECK(none.headers["www-authenticate"] == "Bearer");
    CHECK(none.json()["error"]["message"].get<std::string>().find(
            "bearer token") != std::string::npos);
    auto wrong = http_call("GET", svc.url("/v1/tasks"), "x" + first_token);
    CHECK(wrong.status == 401);
    // Unknown paths say 401 too: the API is not mapped for strangers.
    CHECK(http_call("GET", svc.url("/v1/nope")).status == 401);
    CHECK(http_call("POST", svc.url("/v1/tasks"), "", task_line("a", "x"))
            .status == 401);
    CHECK(http_call("GET", svc.url("/metrics")).status == 401);

    auto ok = svc.get("/v1/status");
    REQUIRE(ok.status == 200);
    CHECK(ok.headers["content-type"] == "application/json");
    CHECK(ok.json()["tasks"]["pending"] == 0);
    CHECK(svc.get("/v1/nope").status == 404);
    CHECK(svc.stop() == 143);
  }
  auto refused = audit_events(dir.path("bgagent-audit.jsonl"), "api_refused");
  REQUIRE(refused.size() == 5);
  CHECK(refused[0]["detail"].get<std::string>().find(
          "GET /v1/status from 127.0.0.1:") == 0);
  CHECK(refused[0]["detail"].get<std::string>().find("no bearer token") !=
        std::string::npos);
  CHECK(refused[1]["detail"].get<std::string>().find("wrong bearer token") !=
        std::string::npos);

  // A restart keeps the token (a dashboard link stays valid).
  {
    service svc(dir);
    CHECK(svc.token == first_token);
    CHECK(svc.get("/v1/status").status == 200);
    CHECK(svc.stop() == 143);
  }
  // A token file others may read is refused, naming it; nothing starts.
  ::chmod(dir.path("bgagent.db.api-token").c_str(), 0644);
  auto r = run_bgagent({"serve", "--http",
                        "127.0.0.1:" + std::to_string(free_port())},
                       dir.path(), {}, 30);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bgagent.db.api-token: mode 0644") != std::string::npos);
  CHECK(r.err.find("chmod 600") != std::string::npos);
}

TEST_CASE("serve: tasks posted as JSON Lines, a JSON array and one object "
          "complete, posting them again gives duplicates, one task by id",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir, {{"BG_AGENT_API_TOKEN", "a-token-of-our-own-0123"}});
  CHECK(svc.token == "a-token-of-our-own-0123");
  auto lines = svc.post("/v1/tasks", task_lines("l", 3));
  REQUIRE(lines.status == 202);
  CHECK(lines.json() == json::parse(R"({"submitted": 3, "duplicates": 0,
                                        "ids": ["l1", "l2", "l3"]})"));
  auto array = svc.post(
    "/v1/tasks",
    R"([{"id": "a1", "type": "analyze_sentiment", "input": "I love it"},
        {"id": "a2", "type": "summarize", "input": "One. Two."}])");
  REQUIRE(array.status == 202);
  CHECK(array.json()["ids"] == json::parse(R"(["a1", "a2"])"));
  auto object = svc.post("/v1/tasks", R"({
    "id": "o1",
    "type": "extract_entities",
    "input": "Ada Lovelace lived in London."
  })");
  REQUIRE(object.status == 202);
  CHECK(object.json()["submitted"] == 1);
  REQUIRE(wait_until([&] { return svc.all_done(6); }, 60));

  auto again = svc.post("/v1/tasks", task_lines("l", 3));
  REQUIRE(again.status == 202);
  CHECK(again.json()["submitted"] == 0);
  CHECK(again.json()["duplicates"] == 3);

  auto one = svc.get("/v1/tasks/o1");
  REQUIRE(one.status == 200);
  auto rec = one.json();
  CHECK(rec["id"] == "o1");
  CHECK(rec["state"] == "completed");
  CHECK(rec["attempts"] == 1);
  CHECK(rec["result"]["entities"].is_array());
  auto missing = svc.get("/v1/tasks/no-such-task");
  CHECK(missing.status == 404);
  CHECK(missing.json()["error"]["message"] ==
        "no task with id \"no-such-task\"");
  CHECK(svc.stop() == 143);
  // Each task was stored and completed once, from the API.
  auto audit = dir.path("bgagent-audit.jsonl");
  auto submitted = audit_events(audit, "task_submitted");
  CHECK(submitted.size() == 6);
  CHECK(submitted[0]["detail"].get<std::string>().find(
          "HTTP API from 127.0.0.1:") == 0);
  CHECK(audit_events(audit, "task_completed").size() == 6);
  CHECK(audit_events(audit, "task_duplicate").size() == 3);
}

TEST_CASE("serve: a bad body is 400 naming its line and stores nothing, a "
          "conflict is 409, a body over BG_AGENT_HTTP_MAX_BODY is 413",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir, {{"BG_AGENT_HTTP_MAX_BODY", "4096"}});
  auto bad_type = svc.post("/v1/tasks", task_line("b1", "fine") +
                                          R"({"id": "b2", "type": "nope", )"
                                          R"("input": "x"})" "\n");
  REQUIRE(bad_type.status == 400);
  CHECK(bad_type.json()["error"]["line"] == 2);
  CHECK(bad_type.json()["error"]["message"].get<std::string>().find(
          "request body line 2: unknown task type \"nope\"") == 0);
  auto malformed = svc.post("/v1/tasks", task_line("m1", "fine") +
                                           task_line("m2", "fine") + "{oops\n");
  REQUIRE(malformed.status == 400);
  CHECK(malformed.json()["error"]["line"] == 3);
  auto empty = svc.post("/v1/tasks", "  \n");
  CHECK(empty.status == 400);
  auto policy = svc.post("/v1/tasks?on_conflict=merge", task_line("p", "x"));
  CHECK(policy.status == 400);
  CHECK(policy.json()["error"]["field"] == "on_conflict");
  // Nothing of the refused bodies was stored.
  CHECK(svc.status()["tasks"]["pending"].get<int>() +
          svc.status()["tasks"]["completed"].get<int>() ==
        0);

  REQUIRE(svc.post("/v1/tasks", task_line("c1", "first text")).status ==
          202);
  auto conflict = svc.post("/v1/tasks", task_line("c2", "new") +
                                          task_line("c1", "other text"));
  REQUIRE(conflict.status == 409);
  CHECK(conflict.json()["error"]["line"] == 2);
  CHECK(svc.get("/v1/tasks/c2").status == 404); // all or nothing
  auto skipped = svc.post("/v1/tasks?on_conflict=skip",
                          task_line("c1", "other text"));
  CHECK(skipped.status == 202);
  CHECK(skipped.json()["duplicates"] == 1);

  std::string big = task_line("big", std::string(5000, 'x'));
  auto over = svc.post("/v1/tasks", big);
  CHECK(over.status == 413);
  CHECK(over.json()["error"]["message"].get<std::string>().find(
          "BG_AGENT_HTTP_MAX_BODY (4096 bytes)") != std::string::npos);
  CHECK(svc.get("/v1/tasks/big").status == 404);
  CHECK(svc.stop() == 143);
}

TEST_CASE("serve: 500 tasks page through in submit order with after and "
          "limit, by state too",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir);
  std::string body;
  for (int i = 1; i <= 500; ++i)
    body += task_line("p" + std::to_string(1000 + i), "Item " +
                                                        std::to_string(i) +
                                                        ". Done.");
  REQUIRE(svc.post("/v1/tasks", body).status == 202);
  REQUIRE(wait_until([&] { return svc.all_done(500); }, 120));
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  for (;;) {
    auto page = svc.get("/v1/tasks?limit=200" +
                        (after.empty() ? "" : "&after=" + after));
    REQUIRE(page.status == 200);
    CHECK(page.headers["content-type"] == "application/x-ndjson");
    ++pages;
    auto rows = json_lines(page.body);
    for (auto& r : rows)
      seen.push_back(r["id"]);
    if (!page.headers.count("x-next-after"))
      break;
    after = page.headers["x-next-after"];
    CHECK(after == seen.back());
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 500);
  for (int i = 0; i < 500; ++i)
    CHECK(seen[i] == "p" + std::to_string(1001 + i));
  auto completed = svc.get("/v1/tasks?state=completed&limit=1000");
  CHECK(json_lines(completed.body).size() == 500);
  CHECK(svc.get("/v1/tasks?state=pending").body.empty());
  auto bad_limit = svc.get("/v1/tasks?limit=0");
  CHECK(bad_limit.status == 400);
  CHECK(bad_limit.json()["error"]["field"] == "limit");
  CHECK(svc.get("/v1/tasks?limit=1001").status == 400);
  CHECK(svc.get("/v1/tasks?state=done").json()["error"]["field"] == "state");
  CHECK(svc.get("/v1/tasks?after=nobody").json()["error"]["field"] ==
        "after");
  CHECK(svc.stop() == 143);
}

TEST_CASE("serve: pause holds tasks until resume, a task's events, requeue "
          "and cancel over HTTP, each audited",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir);
  auto paused = svc.post("/v1/control/pause", "");
  REQUIRE(paused.status == 200);
  CHECK(paused.json() == json::parse(R"({"command": "pause", "ok": true})"));
  REQUIRE(svc.post("/v1/tasks", task_lines("q", 3)).status == 202);
  // Paused, the tasks stay pending (were it not, q3 would be done before
  // its cancel came): a pending task can be cancelled, not requeued.
  auto cancel = svc.post("/v1/tasks/q3/cancel", "");
  REQUIRE(cancel.status == 200);
  CHECK(cancel.json()["cancelled"] == json::parse(R"(["q3"])"));
  CHECK(svc.post("/v1/tasks/q3/cancel", "").status == 409);
  CHECK(svc.post("/v1/tasks/q1/requeue", "").status == 409);
  CHECK(svc.post("/v1/tasks/zz/requeue", "").status == 404);
  REQUIRE(svc.post("/v1/control/resume", "").status == 200);
  REQUIRE(wait_until([&] { return svc.all_done(2); }, 60));

  // Requeued once completed: it runs again.
  auto requeue = svc.post("/v1/tasks/q1/requeue", "");
  REQUIRE(requeue.status == 200);
  CHECK(requeue.json()["requeued"] == json::parse(R"(["q1"])"));
  REQUIRE(wait_until(
    [&] { return svc.get("/v1/tasks/q1").json()["state"] == "completed"; },
    60));
  auto events = svc.get("/v1/tasks/q1/events");
  REQUIRE(events.status == 200);
  std::vector<std::string> names;
  uint64_t last_seq = 0;
  for (auto& e : json_lines(events.body)) {
    CHECK(e["task_id"] == "q1");
    CHECK(e["seq"].get<uint64_t>() > last_seq);
    last_seq = e["seq"];
    names.push_back(e["event"]);
  }
  CHECK(names == std::vector<std::string>{
                   "task_submitted", "task_started", "task_completed",
                   "task_requeued", "task_started", "task_completed"});
  CHECK(svc.get("/v1/tasks/zz/events").status == 404);
  CHECK(svc.stop() == 143);

  auto audit = dir.path("bgagent-audit.jsonl");
  auto commands = audit_events(audit, "admin_command");
  std::vector<std::string> what;
  for (auto& c : commands)
    what.push_back(c["detail"].get<std::string>().substr(
      0, c["detail"].get<std::string>().find(" by the HTTP API from")));
  // What reached the engine (the requeue of a pending task did not).
  CHECK(what == std::vector<std::string>{"pause", "cancel q3", "cancel q3",
                                         "resume", "requeue q1"});
  // q1 and q2 once each, then q1 again; q3 never (cancelled while paused).
  auto started = count_events_by_task(audit, "task_started");
  CHECK(started == std::map<std::string, int>{{"q1", 2}, {"q2", 1}});
  CHECK(audit_events(audit, "task_cancelled").size() == 1);
}

TEST_CASE("serve: a budget hit keeps the service up with tasks pending, "
          "raising the budget over HTTP finishes them",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir, {{"BG_AGENT_TOKEN_BUDGET", "1000"}});
  REQUIRE(svc.post("/v1/tasks", task_lines("b", 20)).status == 202);
  auto alerts = dir.path("bgagent-alerts.jsonl");
  REQUIRE(wait_until(
    [&] {
      for (auto& a : read_jsonl(alerts))
        if (a.value("kind", "") == "budget_exhausted")
          return true;
      return false;
    },
    60));
  auto s = svc.status();
  CHECK(s["tasks"]["pending"].get<int>() > 0);
  CHECK(s["tasks"]["completed"].get<int>() < 20);
  auto raised = svc.post("/v1/control/budget", R"({"tokens": 1000000})");
  REQUIRE(raised.status == 200);
  CHECK(raised.json()["budget"]["tokens_limit"] == 1000000);
  REQUIRE(wait_until([&] { return svc.all_done(20); }, 60));
  CHECK(svc.post("/v1/control/budget", R"({"tokens": -1})").status == 400);
  CHECK(svc.post("/v1/control/budget", R"({"dollars": 5})").json()["error"]
                ["field"] == "dollars");
  CHECK(svc.post("/v1/control/budget", "[]").status == 400);
  auto metrics = svc.get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("bgagent_tasks{state=\"completed\"} 20") !=
        std::string::npos);
  // Valid by Prometheus' own tool (Debian's prometheus package).
  if (access("/usr/bin/promtool", X_OK) == 0) {
    write_file(dir.path("metrics.txt"), metrics.body);
    auto check = run({"/bin/sh", "-c", "promtool check metrics < metrics.txt"},
                     dir.path());
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
  } else {
    WARN("SKIPPED the promtool check: promtool is not installed "
         "(scripts/install-deps.sh --tests installs it)");
  }
  CHECK(svc.stop() == 143);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "task_completed")
          .size() == 20);
}

TEST_CASE("serve: an '@every 1s' schedule submits its file at each firing, "
          "the firing time in ids and in prompts, each firing once, and a "
          "firing missed while down is made at start, the latest only",
          "[e2e][serve][schedule]") {
  temp_dir dir;
  write_file(dir.path("types.yaml"), R"(
daily_note:
  prompt: |
    Write a note for {{scheduled_at}} about: {{input}}
  schema:
    type: object
    required: [note]
    properties:
      note: {type: string}
)");
  write_file(dir.path("nightly.jsonl"),
             R"({"id": "note", "type": "daily_note", "input": "the queue"})"
             "\n"
             R"({"id": "sum", "type": "summarize", "input": "Text. More.",)"
             R"( "vars": {"label": "run of {{scheduled_at}}"}})"
             "\n");
  env_map env{{"BG_AGENT_TYPES", dir.path("types.yaml")}};
  auto audit = dir.path("bgagent-audit.jsonl");
  auto firings = [&] { return audit_events(audit, "schedule_fired"); };
  {
    service svc(dir, env, {"--schedule", "@every 1s nightly.jsonl"});
    REQUIRE(wait_until([&] { return firings().size() >= 3; }, 30));
    CHECK(svc.stop() == 143);
  }
  auto fired = firings();
  std::set<std::string> times;
  for (auto& f : fired) {
    auto d = f["detail"].get<std::string>();
    INFO(d);
    CHECK(d.find("schedule '@every 1s nightly.jsonl' at ") == 0);
    CHECK(d.find(": 2 task(s) submitted, 0 already known") !=
          std::string::npos);
    times.insert(firing_of(d));
  }
  CHECK(times.size() == fired.size()); // each firing once
  // Each firing's tasks, named by their firing time.
  std::map<std::string, int> by_id;
  for (auto& e : audit_events(audit, "task_submitted"))
    ++by_id[e["task_id"].get<std::string>()];
  CHECK(by_id.size() == 2 * fired.size());
  auto db = dir.path("bgagent.db");
  for (auto& t : times) {
    CHECK(by_id["note@" + t] == 1);
    CHECK(by_id["sum@" + t] == 1);
    // {{scheduled_at}}: a var of every fired task (the prompt uses it), and
    // filled in where a var's value names it.
    CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE id = 'note@" + t +
                        "' AND json_extract(vars, '$.scheduled_at') = '" + t +
                        "'") == 1);
    CHECK(sql_int(db, "SELECT COUNT(*) FROM tasks WHERE id = 'sum@" + t +
                        "' AND json_extract(vars, '$.label') = 'run of " + t +
                        "'") == 1);
  }

  // Down for more than two firings: at start only the latest is made.
  auto stopped = std::time(nullptr);
  REQUIRE(wait_until([&] { return std::time(nullptr) >= stopped + 3; }, 10));
  {
    service svc(dir, env, {"--schedule", "@every 1s nightly.jsonl"});
    CHECK(wait_for_output(*svc.proc, "was missed while the service was "
                                     "down; making it now",
                          10));
    REQUIRE(wait_until([&] { return firings().size() >= fired.size() + 2; },
                       30));
    CHECK(svc.stop() == 143);
  }
  auto all = firings();
  std::set<std::string> later;
  for (size_t i = fired.size(); i < all.size(); ++i)
    later.insert(firing_of(all[i]["detail"].get<std::string>()));
  // Between the last firing before the stop and the first after the
  // restart's catch-up, exactly one firing was made for the time down.
  auto last_before = *times.rbegin();
  auto catch_up = *later.begin();
  CHECK(catch_up > last_before);
  auto missed_made = 0;
  for (auto& t : later)
    missed_made += t > last_before && t <= catch_up;
  CHECK(missed_made == 1);
  auto r = run_bgagent({"results", "--json"}, dir.path());
  auto rows = json_lines(r.out);
  CHECK(rows.size() == 2 * all.size());
  for (auto& row : rows)
    CHECK(row["state"] == "completed");
}

TEST_CASE("serve: a schedule that cannot fire is refused at start with exit "
          "2 naming its field or file",
          "[e2e][serve][schedule]") {
  temp_dir dir;
  write_file(dir.path("bad.jsonl"), "{\"type\": \"summarize\"}\n");
  auto port = "127.0.0.1:" + std::to_string(free_port());
  auto spec = run_bgagent({"serve", "--http", port, "--schedule",
                           "0 25 * * * x.jsonl"},
                          dir.path(), {}, 30);
  CHECK(spec.exit_code == 2);
  CHECK(spec.err.find("--schedule '0 25 * * * x.jsonl': hour field: 25 is "
                      "outside 0-23") != std::string::npos);
  auto missing = run_bgagent({"serve", "--http", port, "--schedule",
                              "@every 1m nope.jsonl"},
                             dir.path(), {}, 30);
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("nope.jsonl: cannot open task file") !=
        std::string::npos);
  auto invalid = run_bgagent({"serve", "--http", port, "--schedule",
                              "@every 1m bad.jsonl"},
                             dir.path(), {}, 30);
  CHECK(invalid.exit_code == 2);
  CHECK(invalid.err.find("bad.jsonl line 1: missing required field "
                         "\"input\"") != std::string::npos);
}

namespace {

// Sends `request` as raw bytes on a new loopback connection and returns
// what came back before the server closed (or `wait_seconds` passed).
// `half_close`: shut our side after sending.
std::string raw_exchange(int port, const std::string& request,
                         bool half_close, int wait_seconds = 10) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {};
  }
  timeval tv{wait_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  if (half_close)
    ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

} // namespace

TEST_CASE("serve: hostile clients: no body is read before the token, "
          "compressed or oversized control bodies are refused, a body cut "
          "short stores nothing, a deeply nested task is a 400, not a crash",
          "[e2e][serve]") {
  temp_dir dir;
  service svc(dir);
  auto auth = "Authorization: Bearer " + svc.token + "\r\n";
  // A stranger announcing 1 GB is refused before a byte of it is read.
  auto stranger = raw_exchange(
    svc.port,
    "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
    "{\"id\":",
    false);
  CHECK(stranger.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(stranger.find("Connection: close") != std::string::npos);
  // Compressed bodies are not taken (a small gzip can hold gigabytes).
  auto gzip = raw_exchange(svc.port,
                           "POST /v1/control/pause HTTP/1.1\r\nHost: x\r\n" +
                             auth +
                             "Content-Encoding: gzip\r\nContent-Length: 4\r\n"
                             "\r\nabcd",
                           false);
  CHECK(gzip.rfind("HTTP/1.1 415", 0) == 0);
  // The control paths take small bodies with a length, nothing chunked.
  auto chunked = raw_exchange(svc.port,
                              "POST /v1/control/budget HTTP/1.1\r\nHost: x\r\n" +
                                auth +
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "5\r\n{\"tok\r\n",
                              false);
  CHECK(chunked.rfind("HTTP/1.1 413", 0) == 0);
  // A submission whose client stalls mid-body (past the 10 s read
  // timeout) stores nothing, not the lines that came.
  auto cut = raw_exchange(
    svc.port,
    "POST /v1/tasks HTTP/1.1\r\nHost: x\r\n" + auth +
      "Transfer-Encoding: chunked\r\n\r\n" +
      [&] {
        auto line = task_line("cut-1", "Complete line. Fine.");
        char size[16];
        std::snprintf(size, sizeof(size), "%zx\r\n", line.size());
        return std::string(size) + line + "\r\n";
      }(),
    false, 30);
  CHECK(cut.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(cut.find("incomplete") != std::string::npos);
  CHECK(svc.get("/v1/tasks/cut-1").status == 404);
  // 100,000 levels of nesting: refused with the line, the service lives.
  std::string deep = "{\"id\": \"deep\", \"type\": \"summarize\", \"input\": ";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  auto nested = svc.post("/v1/tasks", deep);
  CHECK(nested.status == 400);
  CHECK(nested.json()["error"]["message"].get<std::string>().find(
          "nested more than") != std::string::npos);
  CHECK(svc.get("/v1/status").status == 200);

  // The newest first, for the dashboard's latest failures.
  REQUIRE(svc.post("/v1/tasks", task_lines("n", 5)).status == 202);
  REQUIRE(wait_until([&] { return svc.all_done(5); }, 60));
  auto newest = json_lines(svc.get("/v1/tasks?order=newest&limit=2").body);
  REQUIRE(newest.size() == 2);
  CHECK(newest[0]["id"] == "n5");
  CHECK(newest[1]["id"] == "n4");
  auto next = json_lines(
    svc.get("/v1/tasks?order=newest&limit=2&after=n4").body);
  REQUIRE(next.size() == 2);
  CHECK(next[0]["id"] == "n3");
  CHECK(svc.get("/v1/tasks?order=sideways").json()["error"]["field"] ==
        "order");
  CHECK(svc.stop() == 143);
  // Each refused request once in the audit, and nothing else of it.
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "api_refused").size() ==
        1);
}
