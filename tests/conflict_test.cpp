// Idempotency without silent merges, run like a user: a task submitted
// again with other content is refused (exit 2, file, line and id, nothing
// changed), kept with --on-conflict skip, or run again with --on-conflict
// replace; different ids with the same input are two tasks; editing a
// type's prompt makes tasks without ids new ones.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using nlohmann::json;

TEST_CASE("a task submitted again with other content is refused, skipped or "
          "replaced, never merged",
          "[e2e][conflict]") {
  temp_dir dir;
  write_tasks(dir.path("v1.jsonl"),
              {make_task("a", "summarize", "Alpha was first. It is old."),
               make_task("b", "summarize", "Beta was second. It is new.")});
  REQUIRE(run_bgagent({"run", "--tasks", "v1.jsonl"}, dir.path()).exit_code ==
          0);
  auto before = results_by_id(dir.path());
  auto audit = dir.path("bgagent-audit.jsonl");
  auto lines_before = read_jsonl(audit).size();

  // "b" keeps its content; "a" has another input.
  write_tasks(dir.path("v2.jsonl"),
              {make_task("b", "summarize", "Beta was second. It is new."),
               make_task("a", "summarize", "Alpha changed. It is new now.")});
  for (auto* cmd : {"run", "submit"}) {
    auto r = std::string(cmd) == "run"
               ? run_bgagent({"run", "--tasks", "v2.jsonl"}, dir.path())
               : run_bgagent({"submit", "v2.jsonl"}, dir.path());
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 2);
    REQUIRE(lines_of(r.err).size() == 1);
    CHECK(contains(r.err, "bgagent: v2.jsonl line 2: task a was submitted "
                          "before with other content"));
    CHECK(contains(r.err, "--on-conflict"));
  }
  CHECK(results_by_id(dir.path()) == before);
  CHECK(read_jsonl(audit).size() == lines_before);

  // skip: the stored task stays, nothing runs again.
  auto skip = run_bgagent({"run", "--tasks", "v2.jsonl", "--on-conflict",
                           "skip"},
                          dir.path());
  INFO(skip.err);
  REQUIRE(skip.exit_code == 0);
  CHECK(contains(skip.err, "0 task(s) submitted, 1 already known (skipped), "
                           "1 with new content kept as stored"));
  CHECK(results_by_id(dir.path()) == before);

  // replace: "a" runs again on its new input; "b" does not.
  auto rep = run_bgagent({"run", "--tasks", "v2.jsonl", "--on-conflict",
                          "replace"},
                         dir.path());
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  CHECK(contains(rep.err, "1 replaced with new content"));
  auto after = results_by_id(dir.path());
  CHECK(after["a"]["result"]["summary"] != before["a"]["result"]["summary"]);
  CHECK(contains(after["a"]["result"]["summary"].get<std::string>(),
                 "Alpha changed"));
  CHECK(after["b"] == before["b"]);
  CHECK(count_by_task(audit, "task_replaced")["a"] == 1);
  CHECK(count_by_task(audit, "task_completed")["a"] == 2);
  CHECK(count_by_task(audit, "task_completed")["b"] == 1);

  // A bad value is a usage error.
  auto bad = run_bgagent({"run", "--on-conflict", "merge"}, dir.path());
  CHECK(bad.exit_code == 2);
}

TEST_CASE("different ids with the same input are two tasks with two results",
          "[e2e][conflict]") {
  temp_dir dir;
  write_tasks(dir.path("t.jsonl"),
              {make_task("x1", "summarize", "Same text. Twice over."),
               make_task("x2", "summarize", "Same text. Twice over.")});
  auto r = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  REQUIRE(rows.size() == 2);
  CHECK(rows["x1"]["state"] == "completed");
  CHECK(rows["x2"]["state"] == "completed");
}

TEST_CASE("editing a type's prompt makes tasks without ids new tasks, and the "
          "same file again changes nothing",
          "[e2e][conflict][types]") {
  temp_dir dir;
  auto types = [&](const std::string& system) {
    write_file(dir.path("bgagent-types.yaml"),
               "label:\n  system: \"" + system +
                 "\"\n  schema: {type: object, required: [label], "
                 "properties: {label: {enum: [x, y]}}}\n");
  };
  write_file(dir.path("t.jsonl"),
             R"({"type": "label", "input": "one"})" "\n"
             R"({"type": "label", "input": "two"})" "\n");
  types("Label it.");
  REQUIRE(run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path()).exit_code ==
          0);
  auto again = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path());
  CHECK(contains(again.err, "0 task(s) submitted, 2 already known"));
  types("Label it carefully.");
  auto edited = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path());
  INFO(edited.err);
  REQUIRE(edited.exit_code == 0);
  CHECK(contains(edited.err, "2 task(s) submitted, 0 already known"));
  CHECK(results_by_id(dir.path()).size() == 4);
}

TEST_CASE("a key taken from an id never meets a key a user gave, and keys "
          "with one prefix make two ids",
          "[e2e][conflict]") {
  temp_dir dir;
  auto a = make_task("x", "summarize", "First text. It is one.");
  a["idempotency_key"] = "k1";
  auto b = make_task("k1", "summarize", "Second text. It is two.");
  auto c = json{{"type", "summarize"},
                {"input", "Third text. It is three."},
                {"idempotency_key", "customer-feedback-1"}};
  auto d = json{{"type", "summarize"},
                {"input", "Fourth text. It is four."},
                {"idempotency_key", "customer-feedback-2"}};
  write_tasks(dir.path("t.jsonl"), {a, b, c, d});
  auto r = run_bgagent({"run", "--tasks", "t.jsonl"}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = results_by_id(dir.path());
  CHECK(rows.size() == 4);
  for (auto& [id, row] : rows)
    CHECK(row["state"] == "completed");
}

// `submit` streams a big file to the store in parts of 2,048 tasks, all in
// one transaction: a fault in a later part (after earlier parts were
// inserted) still leaves nothing of the file, and a clean file is stored
// whole, each task audited once.
TEST_CASE("a submission streamed in parts is all or nothing",
          "[e2e][conflict][submit]") {
  temp_dir dir;
  write_tasks(dir.path("first.jsonl"),
              {make_task("k-4500", "summarize", "The stored one. It stays.")});
  REQUIRE(run_bgagent({"submit", "first.jsonl"}, dir.path()).exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto lines_before = read_jsonl(audit).size();

  // 5,000 tasks; task 4,500 (in the third part) conflicts with the stored
  // one, task 4,999 later has a malformed line.
  auto tasks = make_tasks(5000, "k-");
  tasks[4499] = make_task("k-4500", "summarize", "Other content. It differs.");
  write_tasks(dir.path("conflict.jsonl"), tasks);
  auto r = run_bgagent({"submit", "conflict.jsonl"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(lines_of(r.err).size() == 1);
  CHECK(contains(r.err, "conflict.jsonl line 4500: task k-4500 was submitted "
                        "before with other content"));
  CHECK(status_json(dir.path())["tasks"]["pending"] == 1);
  CHECK(read_jsonl(audit).size() == lines_before);

  // A fault the reader finds after two parts went to the store.
  tasks[4499] = make_task("k-4500", "summarize", "The stored one. It stays.");
  write_tasks(dir.path("late.jsonl"), tasks);
  write_file(dir.path("late.jsonl"),
             read_file(dir.path("late.jsonl")) + "{\"type\": \"summarize\"\n");
  auto late = run_bgagent({"submit", "late.jsonl"}, dir.path());
  INFO(late.err);
  CHECK(late.exit_code == 2);
  CHECK(contains(late.err, "late.jsonl line 5001: malformed JSON"));
  CHECK(status_json(dir.path())["tasks"]["pending"] == 1);
  CHECK(read_jsonl(audit).size() == lines_before);
  // `run --tasks` streams the same way: the fault is found with the store
  // open, and its submission is rolled back before any task runs.
  auto run = run_bgagent({"run", "--tasks", "late.jsonl"}, dir.path());
  INFO(run.err);
  CHECK(run.exit_code == 2);
  CHECK(contains(run.err, "late.jsonl line 5001: malformed JSON"));
  CHECK(status_json(dir.path())["tasks"]["pending"] == 1);
  CHECK(status_json(dir.path())["tasks"]["completed"] == 0);

  // The same file without the fault: all of it, each task audited once.
  write_tasks(dir.path("clean.jsonl"), tasks);
  auto ok = run_bgagent({"submit", "clean.jsonl"}, dir.path());
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(contains(ok.out, "4999 task(s) submitted, 1 already known (skipped)"));
  CHECK(status_json(dir.path())["tasks"]["pending"] == 5000);
  auto submitted = count_events_by_task(audit, "task_submitted");
  CHECK(submitted.size() == 5000);
  for (auto& kv : submitted)
    if (kv.second != 1)
      FAIL_CHECK(kv.first << " audited " << kv.second << " times");
  CHECK(count_events_by_task(audit, "task_duplicate").size() == 1);
}
