// The pure parts of batch mode and the response cache, without actors: how
// tasks are cut into batches, the batch files' lines, the provider's
// states, and the store's batch rows (a restart keeps a batch's tasks
// running) and cache.
#include <catch2/catch.hpp>

#include "persistence/cache_filter.hpp"
#include "persistence/store.hpp"
#include "policy/batch_split.hpp"
#include "providers/batch_lines.hpp"
#include "providers/task_request.hpp"
#include "tests/support/unit_task.hpp"
#include "tests/temp_dir.hpp"

#include <nlohmann/json.hpp>

using namespace bgagent;
using bgagent::testing::unit_task;

TEST_CASE("split_batches: at most max_requests lines and max_bytes bytes a "
          "batch, in order, a line too big alone",
          "[batch][policy]") {
  batch_limits l;
  l.max_requests = 3;
  l.max_bytes = 100;
  using ranges = std::vector<std::pair<size_t, size_t>>;
  CHECK(split_batches({}, l).empty());
  CHECK(split_batches({10, 10, 10, 10, 10, 10, 10}, l) ==
        ranges{{0, 3}, {3, 6}, {6, 7}});
  CHECK(split_batches({60, 30, 20, 100}, l) ==
        ranges{{0, 2}, {2, 3}, {3, 4}});
  CHECK(split_batches({150, 10}, l) == ranges{{0, 1}, {1, 2}});
  CHECK(split_batches({40, 60}, l) == ranges{{0, 2}}); // exactly 100
}

TEST_CASE("batch lines: a request line carries the body as it is, the id as "
          "custom_id, and output and error lines are read",
          "[batch]") {
  auto line = batch_request_line("t\"1", R"({"model":"m","messages":[]})");
  auto j = nlohmann::json::parse(line);
  CHECK(j["custom_id"] == "t\"1");
  CHECK(j["method"] == "POST");
  CHECK(j["url"] == "/v1/chat/completions");
  CHECK(j["body"] == nlohmann::json::parse(R"({"model":"m","messages":[]})"));
  CHECK(line.find('\n') == std::string::npos);

  batch_result_line r;
  std::string why;
  REQUIRE(parse_batch_result_line(
    R"({"id":"r1","custom_id":"a","response":{"status_code":200,"body":{"x":1}},"error":null})",
    r, why));
  CHECK(r.custom_id == "a");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"x", 1}});
  CHECK(r.error.empty());
  REQUIRE(parse_batch_result_line(
    R"({"id":"r2","custom_id":"b","response":null,"error":{"code":"batch_expired","message":"late"}})",
    r, why));
  CHECK(r.status == 0);
  CHECK(r.code == "batch_expired");
  CHECK(r.error == "batch_expired: late");
  CHECK_FALSE(parse_batch_result_line("not json", r, why));
  CHECK(why == "not a JSON object");
  CHECK_FALSE(parse_batch_result_line(R"({"custom_id":""})", r, why));
  CHECK(why == "no custom_id");
  CHECK_FALSE(parse_batch_result_line(R"({"custom_id":"c"})", r, why));
  CHECK(why == "neither a response nor an error");
}

TEST_CASE("next_state: the provider's statuses move a batch forward, never "
          "back, and a cancel stays visible until it has stopped",
          "[batch]") {
  CHECK(next_state(batch_state::submitted, "validating") ==
        batch_state::submitted);
  CHECK(next_state(batch_state::submitted, "in_progress") ==
        batch_state::in_progress);
  CHECK(next_state(batch_state::finalizing, "in_progress") ==
        batch_state::finalizing);
  CHECK(next_state(batch_state::in_progress, "expired") ==
        batch_state::expired);
  CHECK(next_state(batch_state::cancelling, "in_progress") ==
        batch_state::cancelling);
  CHECK(next_state(batch_state::cancelling, "cancelled") ==
        batch_state::cancelled);
  CHECK(next_state(batch_state::in_progress, "something new") ==
        batch_state::in_progress);
  CHECK(is_ended(batch_state::failed));
  CHECK_FALSE(is_ended(batch_state::cancelling));
  for (int i = 0; i <= static_cast<int>(batch_state::cancelled); ++i) {
    batch_state s;
    REQUIRE(parse_batch_state(to_string(static_cast<batch_state>(i)), s));
    CHECK(s == static_cast<batch_state>(i));
  }
}

TEST_CASE("request_fingerprint: the same request on the same model is one "
          "key, anything else sent is another, temperature above 0 none",
          "[cache]") {
  auto a = unit_task("a");
  a.system = "Summarize.";
  a.prompt = "Text.";
  a.max_tokens = 32;
  auto b = a;
  b.id = "b";
  auto fp = request_fingerprint(a, "openai", "m1");
  CHECK(fp.size() == 64);
  CHECK(request_fingerprint(b, "openai", "m1") == fp); // the id is not sent
  CHECK(request_fingerprint(a, "openai", "m2") != fp);
  CHECK(request_fingerprint(a, "openrouter", "m1") != fp);
  b.prompt = "Other text.";
  CHECK(request_fingerprint(b, "openai", "m1") != fp);
  b = a;
  b.max_tokens = 33;
  CHECK(request_fingerprint(b, "openai", "m1") != fp);
  b = a;
  b.schema = R"({"type":"object"})";
  CHECK(request_fingerprint(b, "openai", "m1") != fp);
  b = a;
  b.temperature = 0.2;
  CHECK(request_fingerprint(b, "openai", "m1").empty());
}

TEST_CASE("store: a batch's tasks stay running across a restart, its "
          "outcomes apply once, and an ended batch no longer holds them",
          "[batch][store]") {
  temp_dir dir;
  auto path = dir.path("a.db");
  {
    store db(path, store::open_mode::create_if_missing);
    db.submit({unit_task("a"), unit_task("b"), unit_task("c")});
    db.open_run(100000, 10);
    batch_row row;
    row.id = "b-1";
    row.provider = "openai";
    row.model = "m";
    row.created_at = "2026-11-27T00:00:00Z";
    std::vector<batch_member> members;
    for (auto id : {"a", "b", "c"}) {
      batch_member m;
      m.t.id = id;
      m.attempt = 1;
      m.reservation = 7;
      m.reserved_tokens = 100;
      m.reserved_cost = 0.01;
      members.push_back(m);
    }
    // "c" is cancelled meanwhile: it is left out.
    db.cancel({"c"}, audit_event{});
    auto placed = db.create_batch(row, members, audit_event{});
    CHECK(placed == std::vector<std::string>{"a", "b"});
    CHECK(db.batches(true).at(0).tasks == 2);
  }
  {
    // A restart: the batch's tasks are not interrupted, nothing charged.
    store db(path, store::open_mode::must_exist);
    auto run = db.open_run(100000, 10);
    CHECK(run.interrupted.empty());
    CHECK(run.tokens_used == 0);
    CHECK(db.counts().running == 2);
    auto members = db.batch_members("b-1");
    REQUIRE(members.size() == 2);
    CHECK(members[0].t.id == "a");
    CHECK(members[0].attempt == 1);
    CHECK(members[0].reserved_tokens == 100);

    auto row = db.batches(true).at(0);
    row.state = batch_state::completed;
    batch_outcome done;
    done.task_id = "a";
    done.attempt = 1;
    done.verdict = batch_verdict::completed;
    done.out.ok = true;
    done.out.result = R"({"summary":"A"})";
    done.out.fingerprint = "fp-a";
    done.spent = usage{10, 5, 0.00001};
    batch_outcome undone;
    undone.task_id = "b";
    undone.attempt = 1;
    undone.verdict = batch_verdict::retry;
    undone.out.error = "batch: left undone";
    // The cache's fingerprints in memory see each put from then on.
    auto known = db.response_cache_filter();
    CHECK_FALSE(known->may_contain("fp-a"));
    db.update_batch(row, {done, undone}, audit_event{});
    CHECK(known->may_contain("fp-a"));
    // Applied again (a crash while applying): nothing twice.
    db.update_batch(row, {done, undone}, audit_event{});
    CHECK(db.counts().completed == 1);
    CHECK(db.counts().retry_wait == 1);
    CHECK(db.batches(true).empty());
    CHECK(db.batches(false).at(0).state == batch_state::completed);
    auto spent = db.open_run(100000, 10);
    CHECK(spent.tokens_used == 15);

    // The cache: "b" has the same request as "a".
    auto cached = db.complete_from_cache({"b", "c"}, {"fp-a", "fp-a"},
                                         make_event("task_cached"));
    CHECK(cached == std::vector<std::string>{"b"}); // c is cancelled
    auto recs = db.results("", "", {"b"});
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].state == "completed");
    CHECK(recs[0].cached);
    CHECK(recs[0].result == R"({"summary":"A"})");
    CHECK(recs[0].cost_usd == 0);
    CHECK(db.complete_from_cache({"b"}, {"fp-nothing"}, {}).empty());
  }
  {
    // Another process's store reads them from the cache.
    store db(path, store::open_mode::must_exist);
    auto known = db.response_cache_filter();
    CHECK(known->may_contain("fp-a"));
    CHECK_FALSE(known->may_contain("fp-nothing"));
  }
}

TEST_CASE("request_fingerprint: a chat task is cached only when its body "
          "asks for temperature 0",
          "[cache]") {
  auto t = unit_task("c");
  t.type = "chat";
  t.raw = true;
  t.input = R"({"messages":[{"role":"user","content":"Hi"}]})";
  CHECK(request_fingerprint(t, "openai", "m").empty()); // samples at 1.0
  t.input = R"({"messages":[{"role":"user","content":"Hi"}],"temperature":0.5})";
  CHECK(request_fingerprint(t, "openai", "m").empty());
  t.input = R"({"messages":[{"role":"user","content":"Hi"}],"temperature":0})";
  CHECK(request_fingerprint(t, "openai", "m").size() == 64);
}

TEST_CASE("batch lines: fields of the wrong type are not read, an "
          "impossible status is refused",
          "[batch]") {
  batch_result_line r;
  std::string why;
  REQUIRE(parse_batch_result_line(
    R"({"custom_id":"a","response":null,"error":{"code":null,"message":7}})",
    r, why));
  CHECK(r.error == "the provider reported an error without a message");
  CHECK_FALSE(parse_batch_result_line(
    R"({"custom_id":"a","response":{"status_code":4294967496,"body":{}}})", r,
    why));
  CHECK(why == "response.status_code 4294967496 is not an HTTP status");
}
