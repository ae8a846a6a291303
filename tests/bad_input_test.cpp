// Bad input never crashes bgagent and never changes the store: one clear
// line on stderr naming the file/line/variable at fault, exit code 2.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

// A store with one completed and one pending task, to compare against.
struct populated_store {
  temp_dir dir;
  std::string db = dir.path("bgagent.db");
  populated_store() {
    write_tasks(dir.path("done.jsonl"), make_tasks(1, "done-"));
    auto r = run_bgagent({"run", "--tasks", "done.jsonl"}, dir.path());
    REQUIRE(r.exit_code == 0);
    write_tasks(dir.path("later.jsonl"), make_tasks(1, "later-"));
    REQUIRE(run_bgagent({"submit", "later.jsonl"}, dir.path()).exit_code == 0);
  }
  std::string bytes() const { return read_file(db); }
};

// Runs `args` and checks: exit 2, exactly one stderr line containing every
// one of `names`, store file bytes and task rows unchanged.
void expect_rejected(populated_store& s, const std::vector<std::string>& args,
                     const env_map& env,
                     const std::vector<std::string>& names) {
  auto bytes = s.bytes();
  auto rows = task_rows(s.db);
  auto audit_before = read_file(s.dir.path("bgagent-audit.jsonl"));
  auto r = run_bgagent(args, s.dir.path(), env);
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 2);
  auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("bgagent: ", 0) == 0);
  for (auto& n : names)
    CHECK(lines[0].find(n) != std::string::npos);
  CHECK(r.out.empty());
  CHECK(s.bytes() == bytes);
  CHECK(task_rows(s.db) == rows);
  CHECK(read_file(s.dir.path("bgagent-audit.jsonl")) == audit_before);
}

} // namespace

TEST_CASE("a malformed JSON line names the file and the line", "[e2e][input]") {
  populated_store s;
  write_file(s.dir.path("bad.jsonl"),
             make_task("a", "summarize", "fine").dump() + "\n\n" +
               "{\"type\": \"summarize\", \"input\": \n");
  expect_rejected(s, {"run", "--tasks", "bad.jsonl"}, {},
                  {"bad.jsonl line 3", "malformed JSON"});
  expect_rejected(s, {"submit", "bad.jsonl"}, {},
                  {"bad.jsonl line 3", "malformed JSON"});
  // Leading blank lines count too, in JSON Lines and in an array.
  write_file(s.dir.path("late.jsonl"), "\n\n{\"type\": \n");
  expect_rejected(s, {"submit", "late.jsonl"}, {},
                  {"late.jsonl line 3", "malformed JSON"});
  write_file(s.dir.path("late.json"), "\n \n[\n{\"type\": }]\n");
  expect_rejected(s, {"submit", "late.json"}, {},
                  {"late.json line 4", "malformed JSON"});
}

TEST_CASE("an unknown task type is refused", "[e2e][input]") {
  populated_store s;
  write_tasks(s.dir.path("bad.jsonl"),
              {make_task("a", "summarize", "fine"),
               make_task("b", "translate", "bonjour")});
  expect_rejected(s, {"run", "--tasks", "bad.jsonl"}, {},
                  {"bad.jsonl line 2", "unknown task type \"translate\""});
}

TEST_CASE("a task without input is refused", "[e2e][input]") {
  populated_store s;
  write_file(s.dir.path("bad.jsonl"),
             "{\"id\": \"x\", \"type\": \"summarize\"}\n");
  expect_rejected(s, {"run", "--tasks", "bad.jsonl"}, {},
                  {"bad.jsonl line 1", "missing required field \"input\""});
}

TEST_CASE("a 50 MB input is refused", "[e2e][input]") {
  populated_store s;
  nlohmann::json big{{"type", "summarize"},
                     {"input", std::string(50u << 20, 'a')}};
  write_file(s.dir.path("big.jsonl"),
             make_task("a", "summarize", "fine").dump() + "\n" + big.dump() +
               "\n");
  expect_rejected(s, {"run", "--tasks", "big.jsonl"}, {},
                  {"big.jsonl line 2", "52428800 bytes",
                   "BG_AGENT_MAX_INPUT_BYTES"});
}

TEST_CASE("non-numeric and out-of-range environment values are refused",
          "[e2e][input][config]") {
  populated_store s;
  expect_rejected(s, {"run"}, {{"BG_AGENT_MAX_RETRIES", "abc"}},
                  {"BG_AGENT_MAX_RETRIES=abc", "not a whole number"});
  expect_rejected(s, {"run"}, {{"BG_AGENT_WORKERS", "0"}},
                  {"BG_AGENT_WORKERS=0", "between 1 and"});
  expect_rejected(s, {"run"}, {{"BG_AGENT_WORKERS", "-1"}},
                  {"BG_AGENT_WORKERS=-1"});
  expect_rejected(s, {"run", "--workers", "zero"}, {},
                  {"BG_AGENT_WORKERS=zero", "flag --workers"});
  expect_rejected(s, {"run"}, {{"BG_AGENT_TIMEOUT", "soon"}},
                  {"BG_AGENT_TIMEOUT=soon"});
  expect_rejected(s, {"run"}, {{"BG_AGENT_COST_BUDGET", "lots"}},
                  {"BG_AGENT_COST_BUDGET=lots"});
}

TEST_CASE("a bad .env line names the file and the line",
          "[e2e][input][config]") {
  populated_store s;
  write_file(s.dir.path(".env"), "# settings\nBG_AGENT_WORKERS=2\nnonsense\n");
  expect_rejected(s, {"run"}, {}, {".env line 3", "expected NAME=VALUE"});
  write_file(s.dir.path(".env"), "BG_AGENT_MAX_RETRIES=many\n");
  expect_rejected(s, {"run"}, {},
                  {"BG_AGENT_MAX_RETRIES=many", ".env line 1"});
}

TEST_CASE("a database file that is not SQLite is refused and left alone",
          "[e2e][input]") {
  temp_dir dir;
  auto db = dir.path("notes.db");
  std::string content = "these are my notes, not a database\n";
  content += std::string(8192, 'x');
  write_file(db, content);
  write_tasks(dir.path("tasks.jsonl"), make_tasks(2));
  for (auto args : std::vector<std::vector<std::string>>{
         {"run", "--db", "notes.db", "--tasks", "tasks.jsonl"},
         {"submit", "--db", "notes.db", "tasks.jsonl"},
         {"status", "--db", "notes.db"},
         {"results", "--db", "notes.db", "--json"}}) {
    auto r = run_bgagent(args, dir.path());
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 2);
    auto lines = lines_of(r.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("notes.db") != std::string::npos);
    CHECK(lines[0].find("not a SQLite database") != std::string::npos);
    CHECK(read_file(db) == content);
  }
}

TEST_CASE("a missing task file, a missing database and a bad flag are "
          "refused",
          "[e2e][input]") {
  populated_store s;
  expect_rejected(s, {"run", "--tasks", "nowhere.jsonl"}, {},
                  {"nowhere.jsonl", "cannot open"});
  expect_rejected(s, {"submit", "nowhere.jsonl"}, {}, {"nowhere.jsonl"});
  expect_rejected(s, {"run", "--bogus"}, {}, {"--bogus"});
  expect_rejected(s, {"status", "--db", "missing.db"}, {}, {"missing.db"});
  expect_rejected(s, {"results", "--state", "done"}, {}, {"--state done"});
  CHECK_FALSE(std::ifstream(s.dir.path("missing.db")).good());
}
