// The real binary, run like a user: the sample job, idempotent re-runs.
#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include <sys/stat.h>

#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {
const std::string samples = std::string(BGAGENT_SOURCE_DIR) +
                            "/examples/sample_tasks.jsonl";
}

TEST_CASE("the sample job completes on the offline provider", "[e2e]") {
  temp_dir dir;
  auto r = run_bgagent({"run", "--tasks", samples}, dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = run_bgagent({"results", "--json"}, dir.path());
  REQUIRE(rows.exit_code == 0);
  int n = 0;
  std::istringstream in(rows.out);
  for (std::string line; std::getline(in, line); ++n) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["state"] == "completed");
    CHECK(j["provider"] == "offline");
    CHECK(j["result"].is_object());
  }
  CHECK(n == 5);
}

TEST_CASE("running the same file twice runs each task once", "[e2e]") {
  temp_dir dir;
  REQUIRE(run_bgagent({"run", "--tasks", samples}, dir.path()).exit_code == 0);
  auto second = run_bgagent({"run", "--tasks", samples}, dir.path());
  REQUIRE(second.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "task_started").size() == 5);
  CHECK(audit_events(audit, "task_completed").size() == 5);
  CHECK(audit_events(audit, "task_duplicate").size() == 5);
  CHECK(second.err.find("5 already known") != std::string::npos);
}

TEST_CASE("a task file can be a pipe", "[e2e]") {
  temp_dir dir;
  auto fifo = dir.path("tasks.pipe");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] {
    std::ifstream from(samples);
    std::ofstream to(fifo);
    to << "\n" << from.rdbuf();
  });
  auto r = run_bgagent({"run", "--tasks", fifo}, dir.path());
  writer.join();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  CHECK(audit_events(audit, "task_submitted").size() == 5);
  CHECK(audit_events(audit, "task_completed").size() == 5);
}
