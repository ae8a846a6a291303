// Unit tests of interpret_response(): what each HTTP answer means.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "messages/utf8.hpp"
#include "providers/http_outcome.hpp"
#include "providers/rate_limit_headers.hpp"
#include "types/type_registry.hpp"
#include "tests/support/raw_http_server.hpp"

using namespace bgagent;
using bgagent::testing::raw_http_server;

namespace {

// A built-in type's schema, as a fetched task carries it.
std::string schema_of(const std::string& type) {
  static const auto builtin = type_registry::builtin();
  auto* t = builtin.find(type);
  return t ? t->schema.dump() : std::string();
}

outcome_context ctx(const std::string& type = "summarize") {
  return outcome_context{"openrouter", "google/gemini-2.5-flash",
                         schema_of(type),
                         model_price{0.30, 2.50}, "sk-or-v1-SECRETKEY12345",
                         300, false, {}};
}

http_response answer(int status, const std::string& body,
                     std::map<std::string, std::string> headers = {}) {
  http_response r;
  r.complete = true;
  r.status = status;
  r.body = body;
  r.headers = std::move(headers);
  return r;
}

} // namespace

TEST_CASE("a valid answer gives the result, usage and reported cost",
          "[http_outcome]") {
  auto body = nlohmann::json::parse(
    raw_http_server::completion(R"({"summary": "Cats sleep."})", 40, 9));
  body["usage"]["cost"] = 0.000321;
  auto out = interpret_response(answer(200, body.dump()), ctx());
  REQUIRE(out.ok);
  CHECK(out.result == R"({"summary":"Cats sleep."})");
  CHECK(out.usage_reported);
  CHECK(out.prompt_tokens == 40);
  CHECK(out.completion_tokens == 9);
  CHECK(out.cost_reported);
  CHECK(out.cost_usd == Approx(0.000321));
  CHECK(out.provider == "openrouter");
}

TEST_CASE("without usage.cost the price table prices the usage",
          "[http_outcome]") {
  auto out = interpret_response(
    answer(200, raw_http_server::completion(
                  "```json\n{\"sentiment\": \"positive\", \"confidence\": 0.9}\n```",
                  1000000, 1000000)),
    ctx("analyze_sentiment"));
  REQUIRE(out.ok);
  CHECK(out.result == R"({"confidence":0.9,"sentiment":"positive"})");
  CHECK_FALSE(out.cost_reported);
  CHECK(out.cost_usd == Approx(0.30 + 2.50));
}

TEST_CASE("an answer without usage says so (the worker charges the "
          "reservation)",
          "[http_outcome]") {
  auto out = interpret_response(
    answer(200, raw_http_server::completion(R"({"summary": "x"})", -1)), ctx());
  REQUIRE(out.ok);
  CHECK_FALSE(out.usage_reported);
  CHECK(out.http_status == 200);
}

TEST_CASE("HTTP statuses map to the error classes", "[http_outcome]") {
  for (int s : {400, 401, 403, 404, 422})
    CHECK(classify_status(s) == error_kind::permanent);
  for (int s : {408, 409, 429, 500, 502, 503, 504})
    CHECK(classify_status(s) == error_kind::retryable);
  CHECK(classify_status(402) == error_kind::out_of_credits);
  CHECK(classify_status(200) == error_kind::none);
}

TEST_CASE("an error keeps the status and the provider's message, never the "
          "key",
          "[http_outcome]") {
  auto out = interpret_response(
    answer(401, R"({"error": {"message": "Incorrect API key provided: )"
                R"(sk-or-v1-SECRETKEY12345", "code": 401}})"),
    ctx());
  CHECK_FALSE(out.ok);
  CHECK(out.error_class() == error_kind::permanent);
  CHECK(out.error.find("HTTP 401") != std::string::npos);
  CHECK(out.error.find("Incorrect API key provided") != std::string::npos);
  CHECK(out.error.find("SECRETKEY") == std::string::npos);
  CHECK(out.error.find("[redacted]") != std::string::npos);

  auto credits = interpret_response(
    answer(402, R"({"error": {"message": "Insufficient credits"}})"), ctx());
  CHECK(credits.error_class() == error_kind::out_of_credits);
  CHECK(credits.error.find("Insufficient credits") != std::string::npos);

  // OpenAI's "quota gone" is a 429 too, but no wait makes it pass.
  auto quota = interpret_response(
    answer(429, R"({"error": {"message": "You exceeded your current quota",)"
                R"( "type": "insufficient_quota", "code": "insufficient_quota"}})"),
    ctx());
  CHECK(quota.error_class() == error_kind::out_of_credits);
  CHECK(quota.error.find("exceeded your current quota") != std::string::npos);
  auto slow_down = interpret_response(
    answer(429, R"({"error": {"message": "Rate limit reached",)"
                R"( "type": "requests", "code": "rate_limit_exceeded"}})"),
    ctx());
  CHECK(slow_down.error_class() == error_kind::retryable);
  CHECK_FALSE(is_quota_exhausted("not json"));
  CHECK_FALSE(is_quota_exhausted(R"({"error": "insufficient_quota"})"));
  CHECK(is_quota_exhausted(R"({"error": {"code": "insufficient_quota"}})"));

  auto raw = interpret_response(
    answer(404, R"({"error": {"message": "Provider returned error", )"
                R"("metadata": {"raw": "model not found"}}})"),
    ctx());
  CHECK(raw.error.find("model not found") != std::string::npos);
  auto detail = interpret_response(answer(422, R"({"detail": "bad field"})"),
                                   ctx());
  CHECK(detail.error.find("bad field") != std::string::npos);
}

TEST_CASE("429 and 503 carry Retry-After in seconds, as a date, or in ms",
          "[http_outcome]") {
  auto now = std::time(nullptr);
  CHECK(retry_after_ms({{"retry-after", "2"}}, now) == 2000);
  CHECK(retry_after_ms({{"retry-after", "0.5"}}, now) == 500);
  CHECK(retry_after_ms({{"retry-after-ms", "1500"}, {"retry-after", "9"}},
                       now) == 1500);
  CHECK(retry_after_ms({}, now) == -1);
  CHECK(retry_after_ms({{"retry-after", "soon"}}, now) == -1);
  CHECK(retry_after_ms({{"retry-after", "-3"}}, now) == 0);
  // An HTTP date 30 s from a fixed "now".
  std::time_t fixed = 1445412450; // Wed, 21 Oct 2015 07:27:30 GMT
  CHECK(retry_after_ms({{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}},
                       fixed) == 30000);
  CHECK(retry_after_ms({{"retry-after", "Wed, 21 Oct 2015 07:00:00 GMT"}},
                       fixed) == 0);
  // Capped at a day.
  CHECK(retry_after_ms({{"retry-after", "99999999"}}, now) ==
        24LL * 3600 * 1000);

  auto r429 = interpret_response(answer(429, R"({"error":{"message":"slow"}})",
                                        {{"retry-after", "3"}}),
                                 ctx());
  CHECK(r429.error_class() == error_kind::retryable);
  CHECK(r429.retry_after_ms == 3000);
  auto r503 = interpret_response(answer(503, "overloaded",
                                        {{"retry-after-ms", "250"}}),
                                 ctx());
  CHECK(r503.error_class() == error_kind::retryable);
  CHECK(r503.retry_after_ms == 250);
  CHECK(r503.error.find("overloaded") != std::string::npos);
  auto r500 = interpret_response(answer(500, "{}", {{"retry-after", "3"}}),
                                 ctx());
  CHECK(r500.retry_after_ms == -1);
}

TEST_CASE("unusable 2xx answers are retryable", "[http_outcome]") {
  auto empty = interpret_response(answer(200, ""), ctx());
  CHECK(empty.error_class() == error_kind::retryable);
  CHECK(empty.error.find("empty response body") != std::string::npos);

  auto bad = interpret_response(answer(200, "{malformed json"), ctx());
  CHECK(bad.error_class() == error_kind::retryable);
  CHECK(bad.error.find("malformed JSON") != std::string::npos);

  auto nochoices = interpret_response(answer(200, R"({"choices": []})"), ctx());
  CHECK(nochoices.error_class() == error_kind::retryable);

  auto invalid = interpret_response(
    answer(200, raw_http_server::completion("I think it is fine.", 12, 6)),
    ctx());
  CHECK(invalid.error_class() == error_kind::retryable);
  CHECK(invalid.error.find("invalid model output") != std::string::npos);
  CHECK(invalid.usage_reported); // billed: the worker charges it
  CHECK(invalid.prompt_tokens == 12);
  // Kept for the repair turn: the answer and why it failed.
  CHECK(invalid.raw_answer == "I think it is fine.");
  CHECK_FALSE(invalid.answer_error.empty());
  CHECK(invalid.response.empty());

  // A refusal will be the same next time: permanent, with its text.
  auto refused = interpret_response(
    answer(200, R"({"choices": [{"message": {"role": "assistant", )"
                R"("content": null, "refusal": "I cannot help with that."}}]})"),
    ctx());
  CHECK(refused.error_class() == error_kind::permanent);
  CHECK(refused.error ==
        "openrouter: the model refused: I cannot help with that.");

  auto wrapped = interpret_response(
    answer(200, R"({"error": {"code": 502, "message": "upstream died"}})"),
    ctx());
  CHECK(wrapped.error_class() == error_kind::retryable);
  CHECK(wrapped.error.find("upstream died") != std::string::npos);
}

TEST_CASE("transport failures are retryable and say what happened",
          "[http_outcome]") {
  http_response r;
  r.complete = false;
  r.timed_out = true;
  r.error = "Operation timed out after 300000 milliseconds";
  auto t = interpret_response(r, ctx());
  CHECK(t.error_class() == error_kind::retryable);
  CHECK(t.error.find("timed out") != std::string::npos);
  CHECK(t.error.find("BG_AGENT_TIMEOUT") != std::string::npos);

  http_response partial;
  partial.status = 200;
  partial.error = "transfer closed with 10 bytes remaining to read";
  auto p = interpret_response(partial, ctx());
  CHECK(p.error_class() == error_kind::retryable);
  CHECK(p.http_status == 200); // the worker charges the reservation
  CHECK(p.error.find("remaining to read") != std::string::npos);

  // A request sent whole with no answer may have been processed: charged.
  http_response dropped;
  dropped.request_sent = true;
  dropped.error = "Recv failure: Connection reset by peer";
  auto d = interpret_response(dropped, ctx());
  CHECK(d.error_class() == error_kind::retryable);
  CHECK(d.sent_unanswered);
  CHECK(d.provider_down);
  // libcurl's own resend refused: charged too, and a dropped connection
  // all the same (outage_test.cpp: a server that drops every other request
  // opens the circuit).
  http_response resend = dropped;
  resend.resend_refused = true;
  auto rr = interpret_response(resend, ctx());
  CHECK(rr.error_class() == error_kind::retryable);
  CHECK(rr.sent_unanswered);
  CHECK(rr.provider_down);
  // Never connected: nothing to charge.
  http_response refused;
  refused.error = "Failed to connect to 127.0.0.1 port 9: Connection refused";
  auto f = interpret_response(refused, ctx());
  CHECK_FALSE(f.sent_unanswered);
  CHECK(f.provider_down);
}

namespace {

// A valid summary answer whose usage is `usage` (raw JSON text).
std::string with_usage(const std::string& usage) {
  auto body = nlohmann::json::parse(
    raw_http_server::completion(R"({"summary": "Cats sleep."})", -1));
  auto text = body.dump();
  // Raw text: nlohmann cannot hold every lie (1e400, a bare -0.5e1 ...).
  text.pop_back();
  return text + R"(,"usage":)" + usage + "}";
}

outcome_context openai_ctx() {
  return outcome_context{"openai", "gpt-4o-mini", schema_of("summarize"),
                         model_price{0.15, 0.60}, "", 300, false, {}};
}

} // namespace

TEST_CASE("usage.cost is used whenever the server reports it, not only on "
          "OpenRouter",
          "[http_outcome]") {
  auto out = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 40, "completion_tokens": 9,)"
                           R"( "cost": 0.0042})")),
    openai_ctx());
  REQUIRE(out.ok);
  CHECK(out.provider == "openai");
  CHECK(out.usage_reported);
  CHECK(out.cost_reported);
  CHECK(out.cost_usd == Approx(0.0042));
  CHECK_FALSE(out.usage_invalid);
  // A null cost is no cost: priced from the table.
  auto priced = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 1000000, )"
                           R"("completion_tokens": 0, "cost": null})")),
    openai_ctx());
  REQUIRE(priced.ok);
  CHECK_FALSE(priced.cost_reported);
  CHECK(priced.cost_usd == Approx(0.15));
  // Zero is a valid cost (a free model).
  auto free = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 3, "completion_tokens": 4,)"
                           R"( "cost": 0})")),
    openai_ctx());
  REQUIRE(free.ok);
  CHECK(free.cost_reported);
  CHECK(free.cost_usd == 0);
  // Whole numbers written as floats are still counts.
  auto floats = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 12.0, "completion_tokens": 3e1})")),
    openai_ctx());
  REQUIRE(floats.ok);
  CHECK(floats.prompt_tokens == 12);
  CHECK(floats.completion_tokens == 30);
  // Only one count: not reported (the reservation is charged), not a lie.
  auto half = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 12})")), openai_ctx());
  REQUIRE(half.ok);
  CHECK_FALSE(half.usage_reported);
  CHECK_FALSE(half.usage_invalid);
  auto null_usage = interpret_response(answer(200, with_usage("null")),
                                       openai_ctx());
  REQUIRE(null_usage.ok);
  CHECK_FALSE(null_usage.usage_reported);
  CHECK_FALSE(null_usage.usage_invalid);
}

TEST_CASE("impossible usage is a lying provider: retryable, flagged, "
          "charged the reservation, with the field and value named",
          "[http_outcome]") {
  struct lie {
    std::string usage;
    std::string error;
  };
  std::vector<lie> lies{
    {R"({"prompt_tokens": -5, "completion_tokens": 9})",
     "openai answer: usage.prompt_tokens = -5 is not a valid token count"},
    {R"({"prompt_tokens": 5, "completion_tokens": "9"})",
     R"(openai answer: usage.completion_tokens = "9" is not a valid token count)"},
    {R"({"prompt_tokens": 5.5, "completion_tokens": 9})",
     "usage.prompt_tokens = 5.5 is not a valid token count"},
    {R"({"prompt_tokens": 1e30, "completion_tokens": 9})",
     "usage.prompt_tokens = 1e+30 is not a valid token count (over "
     "10000000 for one call)"},
    {R"({"prompt_tokens": 40, "completion_tokens": 18446744073709551615})",
     "usage.completion_tokens = 18446744073709551615 is not a valid token "
     "count (over 10000000 for one call)"},
    {R"({"prompt_tokens": 40, "completion_tokens": 10000001})",
     "usage.completion_tokens = 10000001 is not a valid token count (over "
     "10000000 for one call)"},
    {R"({"prompt_tokens": -9223372036854775808, "completion_tokens": 1})",
     "usage.prompt_tokens = -9223372036854775808 is not a valid token count"},
    {R"({"prompt_tokens": true, "completion_tokens": 1})",
     "usage.prompt_tokens = true is not a valid token count"},
    {R"({"prompt_tokens": [1], "completion_tokens": 1})",
     "usage.prompt_tokens = [1] is not a valid token count"},
    {R"({"prompt_tokens": 4, "completion_tokens": 1, "cost": -0.01})",
     "openai answer: usage.cost = -0.01 is not a valid cost"},
    {R"({"prompt_tokens": 4, "completion_tokens": 1, "cost": "0.01"})",
     R"(usage.cost = "0.01" is not a valid cost)"},
    {R"({"prompt_tokens": 4, "completion_tokens": 1, "cost": 1000.5})",
     "usage.cost = 1000.5 is not a valid cost (over $1000 for one call)"},
    {R"({"completion_tokens": 1, "cost": {"usd": 1}})",
     R"(usage.cost = {"usd":1} is not a valid cost)"},
    {R"("lots")", R"(openai answer: usage = "lots" is not an object)"},
  };
  for (auto& l : lies) {
    INFO(l.usage);
    auto out = interpret_response(answer(200, with_usage(l.usage)),
                                  openai_ctx());
    CHECK_FALSE(out.ok);
    CHECK(out.error_class() == error_kind::retryable);
    CHECK(out.usage_invalid);
    // Nothing believable to charge: the worker charges the reservation.
    CHECK_FALSE(out.usage_reported);
    CHECK_FALSE(out.cost_reported);
    CHECK(out.prompt_tokens == 0);
    CHECK(out.completion_tokens == 0);
    CHECK(out.cost_usd == 0);
    CHECK(out.http_status == 200);
    CHECK(out.result.empty());
    CHECK(out.error.find(l.error) != std::string::npos);
  }
  // JSON has no NaN or infinity: a number too large for a double makes the
  // answer malformed (retryable; a 2xx without usage: the reservation is
  // charged).
  for (auto u : {R"({"prompt_tokens": 1e400, "completion_tokens": 9})",
                 R"({"prompt_tokens": 4, "completion_tokens": 1, )"
                 R"("cost": -1e999})"}) {
    INFO(u);
    auto out = interpret_response(answer(200, with_usage(u)), openai_ctx());
    CHECK_FALSE(out.ok);
    CHECK(out.error_class() == error_kind::retryable);
    CHECK_FALSE(out.usage_reported);
    CHECK(out.http_status == 200);
    CHECK(out.error.find("malformed JSON in the response (number overflow") !=
          std::string::npos);
  }
  // Believable figures, even above max_tokens, are not a lie here (the
  // budget_keeper alerts on usage over the reservation).
  auto big = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 10000000, )"
                           R"("completion_tokens": 9000, "cost": 1000})")),
    openai_ctx());
  CHECK(big.ok);
  CHECK_FALSE(big.usage_invalid);
  CHECK(big.prompt_tokens == 10000000);
  // A lie wins over an error inside the 200: the alert must not be missed.
  auto both = interpret_response(
    answer(200, R"({"error": {"code": 502, "message": "upstream died"},)"
                R"( "usage": {"prompt_tokens": -1, "completion_tokens": 0}})"),
    openai_ctx());
  CHECK(both.usage_invalid);
  CHECK(both.error_class() == error_kind::retryable);
}

TEST_CASE("a long multi-byte error body is cut by characters into valid "
          "UTF-8",
          "[http_outcome][utf8]") {
  std::string words;
  for (int i = 0; i < 300; ++i)
    words += "\xE9\x94\x99\xE8\xAF\xAF"; // 错误
  // The emoji sits across every byte offset near the old 300-byte cut.
  auto msg = std::string("\xF0\x9F\x98\x80") + words.substr(0, 297) +
             "\xF0\x9F\x98\x80" + words;
  nlohmann::json body{{"error", {{"message", msg}}}};
  auto out = interpret_response(answer(400, body.dump()), ctx());
  CHECK(out.error_class() == error_kind::permanent);
  CHECK(valid_utf8(out.error));
  CHECK(out.error.find("HTTP 400 Bad Request") != std::string::npos);
  CHECK(out.error.find("\xF0\x9F\x98\x80\xE9\x94\x99") != std::string::npos);
  CHECK(out.error.size() >= 3 + 4 + 297);
  CHECK(out.error.substr(out.error.size() - 3) == "...");
  CHECK(utf8_length(provider_message(body.dump())) == 300);
  for (size_t cut = 0; cut < 8; ++cut) {
    INFO(cut);
    // Not JSON: the text itself, at every misalignment of the emoji.
    auto raw = std::string(cut, 'x') + words.substr(0, 297) +
               "\xF0\x9F\x98\x80" + words;
    auto e = interpret_response(answer(500, raw), ctx());
    CHECK(valid_utf8(e.error));
    CHECK(valid_utf8(provider_message(raw)));
  }
  // Ill-formed bytes from the server become U+FFFD.
  auto bad = interpret_response(
    answer(422, "bad \xFF\xFE bytes \xE9\x94 cut"), ctx());
  CHECK(valid_utf8(bad.error));
  CHECK(bad.error.find("bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD cut") !=
        std::string::npos);
  auto trunc_json = interpret_response(answer(200, "{\"a\": \"\xE9\x94"), ctx());
  CHECK(valid_utf8(trunc_json.error));
}

TEST_CASE("the key is removed before a text is cut, so no part of it "
          "survives",
          "[http_outcome]") {
  // The key straddles the 300-character cut.
  auto msg = std::string(280, 'a') + " sk-or-v1-SECRETKEY12345 tail";
  nlohmann::json body{{"error", {{"message", msg}}}};
  auto out = interpret_response(answer(401, body.dump()), ctx());
  CHECK(out.error.find("sk-or-v1-SEC") == std::string::npos);
  CHECK(out.error.find("[redacted]") != std::string::npos);
}

TEST_CASE("rate-limit headers: OpenAI's limits and resets, OpenRouter's "
          "reset time",
          "[http_outcome]") {
  CHECK(parse_reset_duration_ms("1s") == 1000);
  CHECK(parse_reset_duration_ms("6m0s") == 360000);
  CHECK(parse_reset_duration_ms("20ms") == 20);
  CHECK(parse_reset_duration_ms("0.5s") == 500);
  CHECK(parse_reset_duration_ms("1h2m3.5s") == 3723500);
  CHECK(parse_reset_duration_ms("") == -1);
  CHECK(parse_reset_duration_ms("5") == -1);
  CHECK(parse_reset_duration_ms("5d") == -1);
  CHECK(parse_reset_duration_ms("1e400s") == -1);
  CHECK(parse_reset_duration_ms("99999999999h") == 24LL * 3600 * 1000);

  auto openai = read_rate_limit_headers(
    {{"x-ratelimit-limit-requests", "500"},
     {"x-ratelimit-limit-tokens", "30000"},
     {"x-ratelimit-remaining-requests", "0"},
     {"x-ratelimit-reset-requests", "1.5s"},
     {"x-ratelimit-remaining-tokens", "0"},
     {"x-ratelimit-reset-tokens", "6m0s"}},
    0);
  CHECK(openai.limit_requests == 500);
  CHECK(openai.limit_tokens == 30000);
  // The later of the two resets, a token reset counting at most 10 s.
  CHECK(openai.wait_ms == 10000);
  auto left = read_rate_limit_headers(
    {{"x-ratelimit-remaining-requests", "3"},
     {"x-ratelimit-reset-requests", "1s"}},
    0);
  CHECK(left.wait_ms == -1);
  CHECK(left.limit_requests == -1);
  auto openrouter = read_rate_limit_headers(
    {{"x-ratelimit-limit", "20"},
     {"x-ratelimit-remaining", "0"},
     {"x-ratelimit-reset", "1700000004000"}},
    1700000001000);
  CHECK(openrouter.limit_requests == 20);
  CHECK(openrouter.wait_ms == 3000);
  auto lies = read_rate_limit_headers(
    {{"x-ratelimit-limit-requests", "-5"},
     {"x-ratelimit-limit-tokens", "0"},
     {"x-ratelimit-remaining", "0"},
     {"x-ratelimit-reset", "99999999999999999999"}},
    0);
  CHECK(lies.limit_requests == -1);
  CHECK(lies.limit_tokens == -1);
  CHECK(lies.wait_ms == -1);
}

TEST_CASE("a 4xx that says the request is too long for the model or against "
          "its content policy is a refusal another model may take, and other "
          "4xx and 5xx are not",
          "[unit][http]") {
  CHECK(is_model_refusal(400, R"({"error": {"code": "context_length_exceeded", "message": "x"}})"));
  CHECK(is_model_refusal(400, R"({"error": {"message": "This model's maximum context length is 8192 tokens."}})"));
  CHECK(is_model_refusal(400, R"({"error": {"code": "content_policy_violation"}})"));
  CHECK(is_model_refusal(400, R"({"error": {"code": "content_filter"}})"));
  CHECK(is_model_refusal(403, R"({"error": {"code": 403, "message": "Input was flagged by moderation"}})"));
  CHECK(is_model_refusal(413, R"({"error": "Prompt exceeds the context window"})"));
  CHECK_FALSE(is_model_refusal(400, R"({"error": {"message": "invalid temperature"}})"));
  CHECK_FALSE(is_model_refusal(401, R"({"error": {"code": "context_length_exceeded"}})"));
  CHECK_FALSE(is_model_refusal(500, R"({"error": {"message": "maximum context length"}})"));
  CHECK_FALSE(is_model_refusal(400, "<html>maximum context length</html>"));
  // Marked on the outcome, which stays a permanent failure.
  http_response r;
  r.complete = true;
  r.status = 400;
  r.body = R"({"error": {"code": "context_length_exceeded", "message": "too long"}})";
  auto out = interpret_response(r, openai_ctx());
  CHECK(out.error_class() == error_kind::permanent);
  CHECK(out.model_refused);
  CHECK_FALSE(out.provider_down);
  r.status = 502;
  r.body = "{}";
  auto down = interpret_response(r, openai_ctx());
  CHECK(down.provider_down);
  CHECK_FALSE(down.model_refused);
}

TEST_CASE("cached prompt and reasoning tokens are recorded and priced at "
          "their own prices where the list gives them, and more than their "
          "total is a lying provider",
          "[http_outcome]") {
  auto ctx = openai_ctx();
  ctx.price.cached_prompt_per_million = 0.075;
  ctx.price.reasoning_per_million = 1.0;
  auto out = interpret_response(
    answer(200, with_usage(
                  R"({"prompt_tokens": 1000, "completion_tokens": 200, )"
                  R"("prompt_tokens_details": {"cached_tokens": 800}, )"
                  R"("completion_tokens_details": {"reasoning_tokens": 50}})")),
    ctx);
  REQUIRE(out.ok);
  CHECK(out.cached_tokens == 800);
  CHECK(out.reasoning_tokens == 50);
  CHECK(out.cost_usd ==
        Approx((200 * 0.15 + 800 * 0.075 + 150 * 0.60 + 50 * 1.0) / 1e6));
  // Without their own prices: as prompt and completion tokens.
  auto plain = interpret_response(
    answer(200, with_usage(
                  R"({"prompt_tokens": 1000, "completion_tokens": 200, )"
                  R"("prompt_tokens_details": {"cached_tokens": 800}})")),
    openai_ctx());
  REQUIRE(plain.ok);
  CHECK(plain.cached_tokens == 800);
  CHECK(plain.cost_usd == Approx((1000 * 0.15 + 200 * 0.60) / 1e6));
  // Null details are none.
  auto none = interpret_response(
    answer(200, with_usage(R"({"prompt_tokens": 10, "completion_tokens": 2, )"
                           R"("prompt_tokens_details": null})")),
    ctx);
  REQUIRE(none.ok);
  CHECK(none.cached_tokens == 0);
  auto lie = interpret_response(
    answer(200, with_usage(
                  R"({"prompt_tokens": 10, "completion_tokens": 2, )"
                  R"("prompt_tokens_details": {"cached_tokens": 11}})")),
    ctx);
  CHECK_FALSE(lie.ok);
  CHECK(lie.usage_invalid);
  CHECK(lie.error == "openai answer: usage.prompt_tokens_details."
                     "cached_tokens = 11 is more than its total (10)");
  auto negative = interpret_response(
    answer(200, with_usage(
                  R"({"prompt_tokens": 10, "completion_tokens": 2, )"
                  R"("completion_tokens_details": {"reasoning_tokens": -1}})")),
    ctx);
  CHECK(negative.usage_invalid);
  CHECK(negative.error.find("usage.completion_tokens_details."
                            "reasoning_tokens = -1 is not a valid token "
                            "count") != std::string::npos);
}
