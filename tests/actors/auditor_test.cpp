// The auditor through its messages: events written in the order received,
// with ts and a strictly increasing seq that continues across processes;
// a flush request is answered once everything is on disk.
#include <catch2/catch.hpp>

#include <regex>

#include "actors/auditor.hpp"
#include "tests/actors/actor_test_support.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

TEST_CASE("auditor: events are written in order and flushed on request",
          "[unit][auditor]") {
  temp_dir dir;
  auto path = dir.path("audit.jsonl");
  {
    actor_env e;
    auto aud = spawn_auditor(e.sys, path);
    for (int i = 0; i < 500; ++i)
      e.self->send(aud, make_event("task_started", "t" + std::to_string(i),
                                   i % 3, i % 2 ? "odd" : "", "head"));
    e.self->send(aud, make_event("run_finished"));
    REQUIRE(ask_for<flush_atom>(e.self, aud, flush_atom::value));
    // Flushed: the file holds everything now, while the auditor lives.
    auto lines = read_jsonl(path);
    REQUIRE(lines.size() == 501);
    std::regex rfc3339("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z");
    for (int i = 0; i < 500; ++i) {
      auto& j = lines[i];
      CHECK(j["seq"] == i + 1);
      CHECK(j["event"] == "task_started");
      CHECK(j["task_id"] == "t" + std::to_string(i));
      CHECK(j["attempt"] == i % 3);
      CHECK(j["node"] == "head");
      CHECK(j.contains("detail") == (i % 2 == 1));
      CHECK(std::regex_match(j["ts"].get<std::string>(), rfc3339));
    }
    // Empty fields and attempt < 0 are left out.
    auto& last = lines[500];
    CHECK(last["event"] == "run_finished");
    CHECK_FALSE(last.contains("task_id"));
    CHECK_FALSE(last.contains("attempt"));
    CHECK_FALSE(last.contains("node"));
    e.self->send_exit(aud, caf::exit_reason::user_shutdown);
  }
  {
    // A later process appends, and seq keeps increasing.
    actor_env e;
    auto aud = spawn_auditor(e.sys, path);
    e.self->send(aud, make_event("run_started"));
    REQUIRE(ask_for<flush_atom>(e.self, aud, flush_atom::value));
    auto lines = read_jsonl(path);
    REQUIRE(lines.size() == 502);
    CHECK(lines[501]["seq"] == 502);
    CHECK(lines[501]["event"] == "run_started");
    e.self->send_exit(aud, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("auditor: an unwritable log is refused with its path",
          "[unit][auditor]") {
  temp_dir dir;
  actor_env e;
  auto bad = dir.path("no/such/dir/audit.jsonl");
  try {
    spawn_auditor(e.sys, bad);
    FAIL("spawn_auditor accepted an unwritable path");
  } catch (const std::runtime_error& ex) {
    CHECK(std::string(ex.what()).find(bad) != std::string::npos);
  }
}
