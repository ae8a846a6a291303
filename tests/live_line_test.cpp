// The live line of `bgagent run` as a user sees it in a real terminal
// (tmux): under the log, never mixed into a log line, never wider than the
// screen, numbers grouped, counting what earlier runs did, and following
// the total as tasks arrive under --follow.
#include <catch2/catch.hpp>

#include <regex>

#include "tests/support/batch_server.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tmux_terminal.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::regex progress_row(R"(^([\d,]+)/([\d,]+) done\b.*)");

bool is_progress(const std::string& row) {
  return std::regex_match(row, progress_row);
}

// done and total of a progress row, commas taken out.
std::pair<long, long> counts_of(const std::string& row) {
  std::smatch m;
  REQUIRE(std::regex_match(row, m, progress_row));
  auto number = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ','), s.end());
    return std::stol(s);
  };
  return {number(m[1]), number(m[2])};
}

std::vector<std::string> progress_rows(const std::vector<std::string>& s) {
  std::vector<std::string> out;
  for (auto& row : s)
    if (is_progress(row))
      out.push_back(row);
  return out;
}

// The screen once its last row is a live line (and `also` holds).
std::vector<std::string>
screen_with_live_line(const tmux_terminal& t,
                      const std::function<bool(const std::vector<std::string>&)>&
                        also = nullptr) {
  std::vector<std::string> s;
  bool seen = wait_until(
    [&] {
      s = t.screen();
      return !s.empty() && is_progress(s.back()) && (!also || also(s));
    },
    60);
  INFO(joined(s));
  REQUIRE(seen);
  return s;
}

env_map scripted(const std::string& delay_ms) {
  return {{"LLM_PROVIDER", "scripted"},
          {"BG_AGENT_TEST_DELAY_MS", delay_ms},
          {"BG_AGENT_WORKERS", "2"}};
}

} // namespace

TEST_CASE("on an 80-column terminal the live line stays one row under the "
          "log and never mixed into a log line and is gone at the end",
          "[e2e][terminal]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(300));
  // ~59 tokens a task: the 50 % alarm is logged mid-run, the budget stops
  // the run near 200 tasks.
  tmux_terminal t({testbin_binary(), "run", "--tasks", "tasks.jsonl",
                   "--token-budget", "12000"},
                  dir.path(), scripted("50"), 80, 24);
  auto s = screen_with_live_line(t, [](auto& rows) {
    return contains(joined(rows), "ALERT budget_alarm");
  });
  INFO(joined(s));
  // One live line, the last row, narrower than the screen (log lines may
  // wrap; it never does); no log line was written on top of it.
  CHECK(progress_rows(s).size() == 1);
  CHECK(s.back().size() <= 79);
  for (auto& row : s) {
    if (contains(row, "ALERT") || contains(row, " info ") ||
        contains(row, " warning "))
      CHECK_FALSE(contains(row, " done"));
  }
  auto live = s.back();
  CHECK(counts_of(live).second == 300);
  CHECK(std::regex_search(live, std::regex(R"([\d,]+/12,000 tokens)")));
  CHECK(contains(live, "tasks/s"));
  CHECK(contains(live, "ETA "));

  REQUIRE(t.wait(60) == 3);
  auto end = t.screen();
  INFO(joined(end));
  CHECK(progress_rows(end).empty()); // cleared before the summary
  CHECK(contains(joined(end), "stopped_budget"));
}

TEST_CASE("on a narrow terminal the live line leaves parts out instead of "
          "wrapping",
          "[e2e][terminal]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(120));
  tmux_terminal t({testbin_binary(), "run", "--tasks", "tasks.jsonl"},
                  dir.path(), scripted("40"), 44, 20);
  auto s = screen_with_live_line(t);
  INFO(joined(s));
  auto live = s.back();
  CHECK(live.size() <= 43);
  CHECK(counts_of(live).second == 120);
  CHECK(contains(live, "ETA ")); // kept: in flight and tokens went first
  CHECK_FALSE(contains(live, "in flight"));
  REQUIRE(t.wait(60) == 0);
}

TEST_CASE("a resumed run's live line counts the tasks done before it",
          "[e2e][terminal]") {
  temp_dir dir;
  write_tasks(dir.path("tasks.jsonl"), make_tasks(300));
  auto env = scripted("0");
  auto first = run_testbin({"run", "--tasks", "tasks.jsonl", "--token-budget",
                            "6000"},
                           dir.path(), env);
  REQUIRE(first.exit_code == 3);
  long before = status_json(dir.path())["tasks"]["completed"].get<long>();
  REQUIRE(before >= 50);
  REQUIRE(before < 300);

  tmux_terminal t({testbin_binary(), "run", "--token-budget", "100000"},
                  dir.path(), scripted("50"), 80, 24);
  auto s = screen_with_live_line(t);
  auto [done, total] = counts_of(s.back());
  INFO(joined(s));
  CHECK(total == 300);
  CHECK(done >= before);
  REQUIRE(t.wait(60) == 0);
}

TEST_CASE("under --follow the live line's total grows with each submit",
          "[e2e][terminal][follow]") {
  temp_dir dir;
  write_tasks(dir.path("first.jsonl"), make_tasks(20, "a-"));
  write_tasks(dir.path("second.jsonl"), make_tasks(1500, "b-"));
  auto env = scripted("0");
  env["BG_AGENT_POLL_INTERVAL"] = "0.2";
  env["BG_AGENT_WORKERS"] = "16";
  tmux_terminal t({testbin_binary(), "run", "--follow", "--tasks",
                   "first.jsonl", "--token-budget", "1000000"},
                  dir.path(), env, 100, 24);
  screen_with_live_line(
    t, [](auto& rows) { return contains(rows.back(), "20/20 done"); });
  auto sub = run_testbin({"submit", "second.jsonl"}, dir.path(), env);
  INFO(sub.err);
  REQUIRE(sub.exit_code == 0);
  // The total follows, grouped by thousands, and then the work.
  screen_with_live_line(
    t, [](auto& rows) { return contains(rows.back(), "1,520/1,520 done"); });
  // C-c, as a user stops it: a drain, then exit 130 (resumable).
  t.send_keys("C-c");
  CHECK(t.wait(60) == 130);
}

TEST_CASE("in batch mode the live line shows each open batch's state and "
          "the provider's progress",
          "[e2e][terminal][batch]") {
  temp_dir dir;
  batch_server server;
  server.hang = true; // in progress until cancelled
  write_tasks(dir.path("tasks.jsonl"), make_tasks(7));
  tmux_terminal t({bgagent_binary(), "run", "--tasks", "tasks.jsonl"},
                  dir.path(),
                  [&] {
                    auto env = server.env();
                    env["BG_AGENT_MODE"] = "batch";
                    return env;
                  }(),
                  160, 24);
  auto s = screen_with_live_line(t, [](auto& rows) {
    return contains(rows.back(), "in_progress 0/7");
  });
  auto row = s.back();
  CHECK(contains(row, "0/7 done"));
  CHECK(std::regex_search(row, std::regex(R"(batches: b-[0-9a-f]{16} in_progress 0/7)")));
  t.send_keys("C-c");
  CHECK(t.wait(30) == 130);
}
