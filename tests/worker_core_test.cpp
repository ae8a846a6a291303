// worker_core (actors/worker_core.hpp) as a plain object: a provider
// double that records what it is asked and answers when the test says, and
// a clock the test sets. No actor system.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/worker_core.hpp"

using namespace bgagent;

namespace {

using tp = worker_core::clock_type::time_point;

// Answers inside start() when `answer_inside` is set; otherwise keeps the
// completion for the test to call. Prices: "cheap" $1 and "dear" $10 per
// million tokens, prompt and completion alike.
class recording_provider : public provider {
public:
  explicit recording_provider(std::string name)
    : provider(model_price{}), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string model() const override { return "configured"; }
  uint64_t start(const llm_request& req, completion done) override {
    requests.push_back(req);
    if (answer_inside) {
      done(*answer_inside);
      return ++calls;
    }
    pending = std::move(done);
    return ++calls;
  }
  void cancel(uint64_t id) override { cancelled.push_back(id); }
  uint64_t estimate_prompt_tokens(const llm_request&) const override {
    return 1000;
  }
  model_price price_of(const std::string& m) const override {
    model_price p;
    double per = m == "dear" ? 10 : m == "cheap" ? 1 : 0;
    p.prompt_per_million = p.completion_per_million = per;
    return p;
  }

  std::string name_;
  std::optional<call_outcome> answer_inside;
  provider::completion pending;
  std::vector<llm_request> requests;
  std::vector<uint64_t> cancelled;
  uint64_t calls = 0;
};

task make_task(std::vector<std::string> fallbacks = {},
               std::string model = "cheap") {
  task t;
  t.id = "t1";
  t.type = "summarize";
  t.input = "some text";
  t.prompt = "Summarize: some text";
  t.max_tokens = 200;
  t.model = std::move(model);
  t.fallback_models = std::move(fallbacks);
  return t;
}

call_outcome answer(int status) {
  call_outcome o;
  o.ok = status >= 200 && status < 300;
  o.http_status = status;
  o.result = "{}";
  return o;
}

const tp t0{};
const auto secs = [](double s) {
  return std::chrono::duration_cast<worker_core::clock_type::duration>(
    std::chrono::duration<double>(s));
};

} // namespace

TEST_CASE("worker_core: the begin's figures, and OpenRouter's worst case "
          "is the dearest model it may route to",
          "[worker_core]") {
  SECTION("an OpenAI-compatible provider prices the model it is at") {
    auto p = std::make_shared<recording_provider>("openai");
    worker_core core(p, 10);
    core.take(make_task({"dear"}), 1);
    auto f = core.begin();
    CHECK(f.est_prompt == 1000);
    CHECK(f.max_tokens == 200);
    CHECK(f.worst_cost == Approx(1200 * 1.0 / 1e6));
    CHECK(f.shown == "openai/cheap");
    CHECK(f.may_fall_back);
    CHECK(core.request().fallback_models.empty());
  }
  SECTION("openrouter sends the rest of the chain and reserves the dearest") {
    auto p = std::make_shared<recording_provider>("openrouter");
    worker_core core(p, 10);
    core.take(make_task({"dear"}), 1);
    auto f = core.begin();
    CHECK(f.worst_cost == Approx(1200 * 10.0 / 1e6));
    CHECK(core.request().fallback_models ==
          std::vector<std::string>{"dear"});
  }
  SECTION("no model named: the provider's configured one is shown") {
    auto p = std::make_shared<recording_provider>("openai");
    worker_core core(p, 10);
    core.take(make_task({}, ""), 1);
    CHECK(core.begin().shown == "openai/configured");
  }
}

TEST_CASE("worker_core: falling back walks the chain once and stays at its "
          "end",
          "[worker_core]") {
  auto p = std::make_shared<recording_provider>("openai");
  worker_core core(p, 10);
  auto t = make_task({"dear"});
  core.take(t, 1);
  CHECK(core.begin().may_fall_back);
  core.fall_back();
  auto f = core.begin();
  CHECK(f.shown == "openai/dear");
  CHECK_FALSE(f.may_fall_back);
  core.fall_back(); // none left: the same model again
  CHECK(core.begin().shown == "openai/dear");
  CHECK(core.request().model == "dear");

  // A task whose attempt starts past the end of its chain starts at its
  // last model.
  t.model_index = 7;
  core.take(t, 2);
  CHECK(core.begin().shown == "openai/dear");
}

TEST_CASE("worker_core: an answer given inside start() is returned, with "
          "no later call",
          "[worker_core]") {
  auto p = std::make_shared<recording_provider>("openai");
  p->answer_inside = answer(200);
  worker_core core(p, 10);
  core.take(make_task(), 1);
  core.begin();
  int later_calls = 0;
  auto got = core.start(t0, [&](uint64_t, call_outcome) { ++later_calls; });
  REQUIRE(got);
  CHECK(got->http_status == 200);
  CHECK(later_calls == 0);
  CHECK(core.in_call());
  auto e = core.take_answer(std::move(*got), t0 + secs(0.25));
  CHECK(e.out.ok);
  CHECK(e.charge_reservation); // a 2xx answer was billed
  CHECK(e.latency == Approx(0.25));
  CHECK_FALSE(core.busy());
  CHECK_FALSE(core.in_call());
}

TEST_CASE("worker_core: a later answer goes to `later` with its call's "
          "generation, and a stale one is told apart",
          "[worker_core]") {
  auto p = std::make_shared<recording_provider>("openai");
  worker_core core(p, 10);
  core.take(make_task(), 1);
  auto gen_at_take = core.generation();
  core.begin();
  std::vector<uint64_t> gens;
  auto got = core.start(t0, [&](uint64_t g, call_outcome) {
    gens.push_back(g);
  });
  CHECK_FALSE(got);
  CHECK(core.generation() != gen_at_take); // a begin answer is now stale
  auto call_gen = core.generation();
  REQUIRE(p->pending);
  auto first_call = std::move(p->pending);
  first_call(answer(200));
  REQUIRE(gens == std::vector<uint64_t>{call_gen});
  CHECK(core.answers(call_gen));
  CHECK_FALSE(core.answers(gen_at_take)); // the begin's, not the call's

  // The call times out: its answer, had it come now, no longer answers.
  auto e = core.time_out(t0 + secs(10.5));
  CHECK(e.out.error == "timed out after 10 s (BG_AGENT_TIMEOUT)");
  CHECK(e.out.error_class() == error_kind::retryable);
  CHECK(e.out.provider == "openai");
  CHECK(e.out.model == "cheap");
  CHECK(e.charge_reservation);
  CHECK(p->cancelled == std::vector<uint64_t>{1});
  CHECK_FALSE(core.answers(call_gen));
  // Nor in the next attempt's call, which has a generation of its own.
  core.take(make_task(), 2);
  core.begin();
  CHECK_FALSE(core.answers(call_gen));
  core.start(t0 + secs(11), [&](uint64_t g, call_outcome) {
    gens.push_back(g);
  });
  CHECK_FALSE(core.answers(call_gen));
  CHECK(core.answers(core.generation()));
  p->pending(answer(200));
  REQUIRE(gens.size() == 2);
  CHECK(gens[1] == core.generation());
  // Once its answer is taken, the call is over: a repeat is dropped.
  core.take_answer(answer(200), t0 + secs(12));
  CHECK_FALSE(core.answers(gens[1]));
}

TEST_CASE("worker_core: an answer after the deadline is a timeout, and the "
          "billing rule",
          "[worker_core]") {
  auto p = std::make_shared<recording_provider>("openai");
  worker_core core(p, 10);
  auto run = [&](call_outcome out, double after) {
    core.take(make_task(), 1);
    core.begin();
    core.start(t0, [](uint64_t, call_outcome) {});
    return core.take_answer(std::move(out), t0 + secs(after));
  };
  SECTION("past the deadline (a provider that blocked in start())") {
    auto e = run(answer(200), 10.001);
    CHECK_FALSE(e.out.ok);
    CHECK(e.out.error == "timed out after 10 s (BG_AGENT_TIMEOUT)");
    CHECK(e.charge_reservation);
    CHECK(p->cancelled.size() == 1);
  }
  SECTION("exactly at the deadline it is still the answer") {
    auto e = run(answer(200), 10);
    CHECK(e.out.ok);
  }
  SECTION("a 2xx answer that is unusable is billed") {
    auto out = answer(200);
    out.ok = false;
    CHECK(run(out, 1).charge_reservation);
  }
  SECTION("a 500 is not billed") {
    CHECK_FALSE(run(answer(500), 1).charge_reservation);
  }
  SECTION("a request sent whole and unanswered may have been billed") {
    auto out = make_failure(error_kind::retryable, "connection reset");
    out.sent_unanswered = true;
    CHECK(run(out, 1).charge_reservation);
  }
  SECTION("a failure before the request was sent is not billed") {
    auto out = make_failure(error_kind::retryable, "could not connect");
    CHECK_FALSE(run(out, 1).charge_reservation);
  }
  CHECK_FALSE(core.busy());
}

TEST_CASE("worker_core: an attempt that made no call ends idle",
          "[worker_core]") {
  auto p = std::make_shared<recording_provider>("openai");
  worker_core core(p, 10);
  CHECK_FALSE(core.busy());
  core.take(make_task(), 3);
  CHECK(core.busy());
  CHECK(core.attempt() == 3);
  CHECK(core.current().id == "t1");
  core.begin();
  core.idle();
  CHECK_FALSE(core.busy());
  CHECK_FALSE(core.in_call());
  CHECK(p->calls == 0);
}
