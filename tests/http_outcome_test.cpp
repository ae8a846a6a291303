// Unit tests of interpret_response(): what each HTTP answer means.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "providers/http_outcome.hpp"
#include "tests/support/raw_http_server.hpp"

using namespace bgagent;
using bgagent::testing::raw_http_server;

namespace {

outcome_context ctx(const std::string& type = "summarize") {
  return outcome_context{"openrouter", "google/gemini-2.5-flash", type,
                         model_price{0.30, 2.50}, "sk-or-v1-SECRETKEY12345",
                         300};
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
                  "```json\n{\"sentiment\": \"Positive\", \"confidence\": 0.9}\n```",
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
}
