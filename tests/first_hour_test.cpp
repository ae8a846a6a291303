// A newcomer's first hour (issue 11), run like a user: conventional CLI
// (--version, help, did-you-mean, the command's own help on a bad flag),
// budget flags and defaults that fit the README's examples, a first line
// that names the provider, `.env` files read with the usual rules, unknown
// variable names warned about, and task files that are directories, empty,
// or start with a byte order mark.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "app/dotenv.hpp"
#include "app/errors.hpp"
#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tmux_terminal.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("the CLI answers --version, help and help COMMAND, and names the "
          "command meant by a typo",
          "[e2e][cli]") {
  temp_dir dir;
  auto v = run_bgagent({"--version"}, dir.path());
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("bgagent 0.", 0) == 0);
  auto help = run_bgagent({"help"}, dir.path());
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "run"));
  CHECK(contains(help.out, "bgagent help COMMAND"));
  auto run_help = run_bgagent({"help", "run"}, dir.path());
  CHECK(run_help.exit_code == 0);
  CHECK(contains(run_help.out, "--db PATH"));
  CHECK(contains(run_help.out, "--workers N"));
  CHECK(contains(run_help.out, "--token-budget N"));
  CHECK(contains(run_help.out, "--cost-budget USD"));
  CHECK(contains(run_help.out, "Examples:"));
  CHECK_FALSE(contains(run_help.out, "TEXT"));
  auto typo = run_bgagent({"rnu"}, dir.path());
  CHECK(typo.exit_code == 2);
  CHECK(typo.err ==
        "bgagent: unknown command 'rnu' (did you mean 'run'?); see bgagent "
        "help\n");
  auto far = run_bgagent({"help", "frobnicate"}, dir.path());
  CHECK(far.exit_code == 2);
  CHECK(far.err == "bgagent: unknown command 'frobnicate'; see bgagent help\n");
  auto bogus = run_bgagent({"run", "--bogus"}, dir.path());
  CHECK(bogus.exit_code == 2);
  CHECK(contains(bogus.err, "--bogus"));
  CHECK(contains(bogus.err, "(see bgagent help run)"));
}

TEST_CASE("the README's 1,000-task example fits the default budget, the "
          "first line names the provider, and a budget stop says how to "
          "continue",
          "[e2e][cli][budget]") {
  temp_dir dir;
  auto r = run_bgagent({"run", "--tasks",
                        std::string(BGAGENT_SOURCE_DIR) +
                          "/examples/generated_tasks_1k.jsonl",
                        "--workers", "16"},
                       dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 1000);
  // The first line says the answers are not from an LLM.
  auto first = lines_of(r.err).at(0);
  CHECK(contains(first, "provider offline: answers are made on this machine "
                        "by a deterministic stand-in, no LLM is called"));
  // --token-budget: a small one stops with how to go on.
  temp_dir small;
  write_tasks(small.path("t.jsonl"), make_tasks(20, "t"));
  auto stop = run_bgagent({"run", "--tasks", "t.jsonl", "--token-budget",
                           "300", "--workers", "1"},
                          small.path());
  CHECK(stop.exit_code == 3);
  CHECK(contains(stop.out, "tokens       "));
  CHECK(contains(stop.out, "of 300"));
  CHECK(contains(stop.out, "to continue  raise the budget (--token-budget N "
                           "or BG_AGENT_TOKEN_BUDGET"));
  auto more = run_bgagent({"run", "--token-budget", "100000"}, small.path());
  CHECK(more.exit_code == 0);
  CHECK(status_json(small.path())["tasks"]["completed"] == 20);
  auto bad = run_bgagent({"run", "--cost-budget", "lots"}, small.path());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "bgagent: BG_AGENT_COST_BUDGET=lots (flag --cost-budget): "
                   "not an amount of US dollars\n");
}

TEST_CASE("a .env file is read with quotes, comments and export, and unknown "
          "bgagent variable names are warned about with the name meant",
          "[e2e][config]") {
  temp_dir dir;
  write_file(dir.path(".env"),
             "# settings\n"
             "export BG_AGENT_WORKERS=2   # two workers\n"
             "MODEL=\"my-model\" # the model, quoted\n"
             "BG_AGENT_DB='my db.sqlite'\n"
             "BG_AGENT_WORKER=3\n");
  write_tasks(dir.path("t.jsonl"), make_tasks(3, "t"));
  auto r = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path(),
                       {{"BG_AGENT_TIMOUT", "5"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, ".env line 5: BG_AGENT_WORKER is not a bgagent "
                        "variable; it is ignored (did you mean "
                        "BG_AGENT_WORKERS?)"));
  CHECK(contains(r.err, "environment: BG_AGENT_TIMOUT is not a bgagent "
                        "variable; it is ignored (did you mean "
                        "BG_AGENT_TIMEOUT?)"));
  struct stat st {};
  CHECK(::stat(dir.path("my db.sqlite").c_str(), &st) == 0);
  auto events = audit_events(dir.path("bgagent-audit.jsonl"), "run_started");
  REQUIRE(events.size() == 1);
  CHECK(contains(events[0]["detail"].get<std::string>(), "workers 2"));
}

TEST_CASE(".env lines: the usual rules, and one clear error per bad line",
          "[unit][config]") {
  auto e = parse_dotenv("A=1\n"
                        "  export B = two words  # comment\n"
                        "C=\"quoted # not a comment\" # a comment\n"
                        "D='single $X \\n'\n"
                        "E=\"esc\\\"aped\\n\"\n"
                        "F=abc#def\n"
                        "G=\n"
                        "\n# only a comment\n",
                        ".env");
  REQUIRE(e.size() == 7);
  CHECK(e[0].value == "1");
  CHECK(e[1].name == "B");
  CHECK(e[1].value == "two words");
  CHECK(e[2].value == "quoted # not a comment");
  CHECK(e[3].value == "single $X \\n");
  CHECK(e[4].value == "esc\"aped\n");
  CHECK(e[5].value == "abc#def");
  CHECK(e[6].value.empty());
  CHECK(e[6].line == 7);
  auto fails = [](const std::string& text) {
    try {
      parse_dotenv(text, ".env");
    } catch (const usage_error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  CHECK(fails("A=1\nnot a line\n") == ".env line 2: expected NAME=VALUE");
  CHECK(fails("1A=x\n") == ".env line 1: \"1A\" is not a variable name");
  CHECK(fails("A=\"open\n") ==
        ".env line 1: A: the quoted value has no closing \" (a value spans "
        "one line)");
  CHECK(fails("A=\"x\" y\n") == ".env line 1: A: text after the closing quote");
}

TEST_CASE("a directory, an empty file or an empty array is not a task file, and "
          "a byte order mark is skipped",
          "[e2e][bad-input]") {
  temp_dir dir;
  ::mkdir(dir.path("tasks.d").c_str(), 0700);
  auto d = run_bgagent({"submit", "tasks.d"}, dir.path());
  CHECK(d.exit_code == 2);
  CHECK(d.err == "bgagent: tasks.d: is a directory, not a task file\n");
  write_file(dir.path("empty.jsonl"), "\n  \n");
  auto e = run_bgagent({"submit", "empty.jsonl"}, dir.path());
  CHECK(e.exit_code == 2);
  CHECK(e.err == "bgagent: empty.jsonl: the file holds no tasks\n");
  write_file(dir.path("none.json"), " [ ] ");
  auto n = run_bgagent({"run", "--tasks", "none.json"}, dir.path());
  CHECK(n.exit_code == 2);
  CHECK(n.err == "bgagent: none.json: the file holds no tasks\n");
  write_file(dir.path("bom.json"),
             "\xEF\xBB\xBF[{\"type\": \"summarize\", \"input\": \"Hi there.\"}]");
  auto b = run_bgagent({"submit", "bom.json"}, dir.path());
  CHECK(b.exit_code == 0);
  CHECK(b.out == "1 task(s) submitted, 0 already known (skipped)\n");
  write_file(dir.path("bom.jsonl"),
             "\xEF\xBB\xBF{\"type\": \"summarize\", \"input\": \"Hello.\"}\n");
  CHECK(run_bgagent({"submit", "bom.jsonl"}, dir.path()).exit_code == 0);
}

TEST_CASE("results ID shows one task's whole record, --limit caps the list, "
          "and an unknown id is named",
          "[e2e][cli]") {
  temp_dir dir;
  std::string long_input = "This sentence is long enough to be cut in a "
                           "table. It goes on and on with café and naïve "
                           "words so that nothing is lost.";
  write_tasks(dir.path("t.jsonl"),
              {make_task("a", "summarize", long_input),
               make_task("b", "summarize", "Short one. Two."),
               make_task("c", "summarize", "Third one. Two.")});
  REQUIRE(run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path()).exit_code ==
          0);
  auto one = run_bgagent({"results", "a"}, dir.path());
  CHECK(one.exit_code == 0);
  auto lines = lines_of(one.out);
  REQUIRE(lines.size() >= 10);
  CHECK(lines[0] == "id                 a");
  CHECK(contains(one.out, "state              completed"));
  auto rows = results_by_id(dir.path());
  CHECK(contains(one.out, "result             " + rows["a"]["result"].dump()));
  CHECK(contains(one.out, "provider           offline"));
  auto limited = run_bgagent({"results", "--limit", "2", "--json"},
                             dir.path());
  CHECK(lines_of(limited.out).size() == 2);
  auto two = run_bgagent({"results", "--json", "c", "a"}, dir.path());
  REQUIRE(lines_of(two.out).size() == 2);
  CHECK(contains(lines_of(two.out)[0], "\"id\":\"a\""));
  auto missing = run_bgagent({"results", "a", "nope"}, dir.path());
  CHECK(missing.exit_code == 2);
  CHECK(missing.err == "bgagent: no task with id nope\n");
  auto bad = run_bgagent({"results", "--limit", "0"}, dir.path());
  CHECK(bad.exit_code == 2);
}

TEST_CASE("results shows a long error whole when piped and cut in the middle "
          "on a terminal so its start and its end both show",
          "[e2e][cli][terminal]") {
  temp_dir dir;
  write_tasks(dir.path("t.jsonl"),
              {make_task("bad", "summarize", "It fails. [long-error]"),
               make_task("good", "summarize", "Short one. Two.")});
  env_map env{{"LLM_PROVIDER", "scripted"}};
  REQUIRE(run_testbin({"run", "--tasks", "t.jsonl"}, dir.path(), env)
            .exit_code == 0);
  auto piped = run_testbin({"results", "--state", "quarantined"}, dir.path(),
                           env);
  REQUIRE(piped.exit_code == 0);
  auto rows = lines_of(piped.out);
  REQUIRE(rows.size() == 2);
  CHECK(contains(rows[1], "error: HTTP 400: the request could not be "
                          "processed " + std::string(150, '~') +
                            " because of reason XYZ-AT-THE-END"));

  tmux_terminal t({testbin_binary(), "results"}, dir.path(), env, 140, 10);
  REQUIRE(t.wait(30) == 0);
  auto screen = t.screen();
  INFO(joined(screen));
  std::string bad;
  for (auto& row : screen)
    if (row.rfind("bad ", 0) == 0)
      bad = row;
  REQUIRE_FALSE(bad.empty());
  CHECK(bad.size() <= 140);
  CHECK(contains(bad, "error: HTTP 400: the request"));
  CHECK(contains(bad, " ... "));
  CHECK(contains(bad, "XYZ-AT-THE-END"));
}

TEST_CASE("status and results read a database in a directory they cannot "
          "write",
          "[e2e][cli]") {
  temp_dir dir;
  auto data = dir.path("data");
  REQUIRE(mkdir(data.c_str(), 0755) == 0);
  write_tasks(data + "/t.jsonl", make_tasks(3));
  REQUIRE(run_bgagent({"run", "--tasks", "t.jsonl"}, data).exit_code == 0);
  // Read-only for everyone; as root (CI), the commands run as nobody, for
  // whom the permissions hold.
  REQUIRE(chmod(dir.path().c_str(), 0755) == 0);
  REQUIRE(chmod((data + "/bgagent.db").c_str(), 0444) == 0);
  REQUIRE(chmod(data.c_str(), 0555) == 0);
  auto as_reader = [&](std::vector<std::string> args) {
    std::vector<std::string> argv;
    if (geteuid() == 0)
      argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
              "--clear-groups"};
    argv.push_back(bgagent_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, data);
  };
  auto st = as_reader({"status", "--json"});
  INFO(st.err);
  CHECK(st.exit_code == 0);
  auto j = nlohmann::json::parse(st.out, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["tasks"]["completed"] == 3);
  auto res = as_reader({"results", "--json"});
  CHECK(res.exit_code == 0);
  CHECK(lines_of(res.out).size() == 3);
  CHECK(as_reader({"results", "t1"}).exit_code == 0);
  CHECK(as_reader({"status", "--by-tag"}).exit_code == 0);
  // A command that writes says what it could not do.
  auto rq = as_reader({"requeue", "t1"});
  CHECK(rq.exit_code == 2);
  CHECK(contains(rq.err, "bgagent.db"));
  chmod(data.c_str(), 0755); // so the temp dir can be removed

  // A reader in a directory anyone may write (a sticky /tmp) leaves no
  // -shm or -wal of its own behind: the owner's next run works.
  REQUIRE(chmod(data.c_str(), 01777) == 0);
  REQUIRE(chmod((data + "/bgagent.db").c_str(), 0644) == 0);
  CHECK(as_reader({"status"}).exit_code == 0);
  CHECK_FALSE(exists(data + "/bgagent.db-shm"));
  CHECK_FALSE(exists(data + "/bgagent.db-wal"));
  write_tasks(data + "/more.jsonl", make_tasks(2, "more-"));
  auto more = run_bgagent({"run", "--tasks", "more.jsonl"}, data);
  INFO(more.err);
  CHECK(more.exit_code == 0);

  // A log holding changes that cannot be read without the -shm a reader
  // may not create is named, not read around.
  write_file(data + "/bgagent.db-wal", std::string(4096, 'x'));
  if (geteuid() == 0) {
    auto stale = as_reader({"status"});
    CHECK(stale.exit_code == 2);
    CHECK(contains(stale.err, "bgagent.db-wal) holds changes"));
  }
  chmod(data.c_str(), 0755);
}

TEST_CASE("a run whose provider cannot be reached says so at once, stops "
          "at BG_AGENT_OUTAGE_MAX with exit 7 and quarantines nothing",
          "[e2e][cli]") {
  temp_dir dir;
  write_tasks(dir.path("t.jsonl"), make_tasks(4));
  int closed = free_port(); // nothing listens there
  env_map env{{"OPENAI_API_KEY", "sk-test"},
              {"LLM_BASE_URL",
               "http://127.0.0.1:" + std::to_string(closed) + "/v1"},
              {"BG_AGENT_MAX_RETRIES", "1"},
              {"BG_AGENT_PROBE_SECONDS", "0.5"},
              {"BG_AGENT_OUTAGE_MAX", "2"}};
  auto r = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path(), env);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 7);
  // The alert names the model and the address that does not answer.
  auto all = r.out + r.err;
  CHECK(contains(all, "ALERT provider_unavailable: openai/gpt-4o-mini is "
                      "down (5 failures in a row, the last: openai request "
                      "failed: "));
  CHECK(contains(all, "127.0.0.1 port " + std::to_string(closed)));
  CHECK(contains(r.out, "(exit 7, outage: openai/gpt-4o-mini)"));
  CHECK(contains(r.out, "  quarantined  0\n"));
  CHECK(contains(r.out, "  to continue  run again once the provider "
                        "answers"));
  auto fin = audit_events(dir.path("bgagent-audit.jsonl"), "run_finished");
  REQUIRE(fin.size() == 1);
  CHECK(audit_events(dir.path("bgagent-audit.jsonl"), "circuit_opened")
          .size() == 1);
}
