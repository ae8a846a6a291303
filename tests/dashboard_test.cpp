// The dashboard served by `bgagent serve`, loaded in a real browser
// (Debian's headless Chromium, --dump-dom after the page's script ran):
// the token from the URL fragment, the figures of the service's API,
// other people's strings shown as text, and a page that holds no data and
// loads nothing from elsewhere.
#include <catch2/catch.hpp>

#include <csignal>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/http_call.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

namespace {

std::string chromium() {
  for (auto* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (access(p, X_OK) == 0)
      return p;
  return {};
}

#define SKIP_WITHOUT_CHROMIUM()                                               \
  do {                                                                        \
    if (chromium().empty()) {                                                 \
      WARN("SKIPPED: chromium is not installed (scripts/install-deps.sh "     \
           "--tests installs it)");                                           \
      return;                                                                 \
    }                                                                         \
  } while (0)

// The page's DOM once its script has run (virtual time: its fetches and
// first refreshes happen, no real waiting).
std::string dump_dom(const temp_dir& dir, const std::string& url) {
  auto r = run({chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--user-data-dir=" + dir.path("chromium"),
                "--window-size=375,800", "--virtual-time-budget=10000",
                "--dump-dom", url},
               dir.path(), {}, 90);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

std::string text_of(const std::string& dom, const std::string& id) {
  auto at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos)
    return "<no " + id + ">";
  auto b = dom.find('>', at) + 1;
  return dom.substr(b, dom.find('<', b) - b);
}

std::string line(const std::string& id, const std::string& input) {
  return json{{"id", id}, {"type", "summarize"}, {"input", input}}.dump() +
         "\n";
}

} // namespace

TEST_CASE("dashboard: in headless Chromium it shows the service's counts, "
          "failures and quarantined tasks from the API with the token from "
          "the URL fragment, task text as text",
          "[e2e][serve][dashboard]") {
  SKIP_WITHOUT_CHROMIUM();
  temp_dir dir;
  int port = free_port();
  const std::string token = "dashboard-test-token-0123456789";
  background_process svc(
    {testbin_binary(), "serve", "--http", "127.0.0.1:" + std::to_string(port)},
    dir.path(),
    {{"LLM_PROVIDER", "scripted"}, {"BG_AGENT_API_TOKEN", token},
     {"BG_AGENT_POLL_INTERVAL", "1"}, {"BG_AGENT_MAX_RETRIES", "3"},
     {"BG_AGENT_RPM", "6000"},
     {"BG_AGENT_RETRY_INITIAL", "600"}, {"BG_AGENT_RETRY_MAX", "600"}},
    "serve");
  REQUIRE(wait_for_output(svc, "HTTP API and dashboard at", 30));
  auto base = "http://127.0.0.1:" + std::to_string(port);
  std::string body;
  for (int i = 1; i <= 8; ++i)
    body += line("ok-" + std::to_string(i), "Fine text. Number " +
                                               std::to_string(i) + ".");
  body += line("<b id=\"injected\">x</b>", "Refused for good [permanent]");
  body += line("flaky-1", "Fails for now [fail]");
  REQUIRE(http_call("POST", base + "/v1/tasks", token, body).status == 202);
  REQUIRE(wait_until(
    [&] {
      auto st = http_call("GET", base + "/v1/status", token).json();
      return st.is_object() && st["tasks"]["completed"] == 8 &&
             st["tasks"]["quarantined"] == 1 && st["tasks"]["retry_wait"] == 1;
    },
    60));

  auto dom = dump_dom(dir, base + "/#token=" + token);
  CHECK(dom.find("data-state=\"shown\"") != std::string::npos);
  CHECK(text_of(dom, "count-completed") == "8");
  CHECK(text_of(dom, "count-quarantined") == "1");
  CHECK(text_of(dom, "count-retry_wait") == "1");
  CHECK(text_of(dom, "count-pending") == "0");
  CHECK(text_of(dom, "run") == "run 1, running");
  CHECK(text_of(dom, "budget-period") == "day");
  CHECK(text_of(dom, "workers") == "4");
  // Rate-limit headroom: the 10 calls' model against BG_AGENT_RPM.
  auto rate = text_of(dom, "rate-text");
  CHECK(rate.find(" of 6000 requests/min") != std::string::npos);
  CHECK(rate.rfind("0 of", 0) != 0);
  // The failure waiting to retry and the quarantined task, with errors.
  auto failures = dom.substr(dom.find("id=\"failures\""));
  CHECK(failures.find("<td>flaky-1</td>") != std::string::npos);
  auto quarantined = dom.substr(dom.find("id=\"quarantined\""));
  CHECK(quarantined.find("&lt;b id=\"injected\"&gt;x&lt;/b&gt;") !=
        std::string::npos);
  CHECK(dom.find("<b id=\"injected\">") == std::string::npos);
  CHECK(quarantined.find("permanent") != std::string::npos);
  // Both charts are drawn as SVG by the page itself.
  CHECK(dom.find("<polyline") != std::string::npos);
  // The login form stays hidden; the token left the address bar.
  CHECK(dom.find("<form id=\"login\" hidden") != std::string::npos);

  svc.signal(SIGTERM);
  CHECK(svc.wait(60) == 143);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "api_refused").empty());
}

TEST_CASE("dashboard: without a token the page asks for one and calls "
          "nothing, a wrong one is refused, and the page holds no data and "
          "loads nothing from elsewhere",
          "[e2e][serve][dashboard]") {
  SKIP_WITHOUT_CHROMIUM();
  temp_dir dir;
  int port = free_port();
  background_process svc(
    {bgagent_binary(), "serve", "--http", "127.0.0.1:" + std::to_string(port)},
    dir.path(), {{"BG_AGENT_API_TOKEN", "the-right-token-0123456789"}},
    "serve");
  REQUIRE(wait_for_output(svc, "HTTP API and dashboard at", 30));
  auto base = "http://127.0.0.1:" + std::to_string(port);

  // Static: no token needed, strict content policy, nothing from elsewhere.
  for (auto path : {"/", "/dashboard.js", "/dashboard.css"}) {
    INFO(path);
    auto r = http_call("GET", base + path);
    REQUIRE(r.status == 200);
    CHECK(r.headers["content-security-policy"].find("default-src 'none'") ==
          0);
    CHECK(r.headers["x-content-type-options"] == "nosniff");
    auto text = r.body;
    // The SVG namespace is a name, not an address the page loads.
    for (auto p = text.find("http://www.w3.org/2000/svg");
         p != std::string::npos;
         p = text.find("http://www.w3.org/2000/svg"))
      text.erase(p, 26);
    CHECK(text.find("http://") == std::string::npos);
    CHECK(text.find("https://") == std::string::npos);
    CHECK(text.find("//cdn") == std::string::npos);
  }
  CHECK(http_call("GET", base + "/").body.find("the-right-token") ==
        std::string::npos);

  auto asks = dump_dom(dir, base + "/");
  CHECK(asks.find("<form id=\"login\">") != std::string::npos);
  CHECK(asks.find("<main id=\"board\" hidden") != std::string::npos);
  // Nothing was asked of the API without a token.
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "api_refused").empty());

  auto refused = dump_dom(dir, base + "/#token=not-the-token-at-all");
  CHECK(text_of(refused, "login-error") == "That token was refused.");
  svc.signal(SIGTERM);
  CHECK(svc.wait(60) == 143);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "api_refused").size() >=
        1);
}
