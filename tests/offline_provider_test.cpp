// The offline provider's answers for the built-in types, pinned exactly:
// its heuristics are tuned for speed (flat word sets, table character
// classes, skipped pattern passes) and must not change what they answer.
#include <catch2/catch.hpp>

#include "providers/offline_provider.hpp"

using bgagent::llm_request;
using bgagent::offline_provider;

namespace {

std::string answer(const std::string& type, const std::string& input) {
  llm_request req;
  req.type = type;
  req.input = input;
  req.system = "system";
  req.prompt = input;
  req.max_tokens = 1000;
  auto out = offline_provider::compute(req);
  REQUIRE(out.ok);
  return out.result;
}

} // namespace

TEST_CASE("offline entities: names, places, organisations and patterns",
          "[unit][offline]") {
  // (The URL keeps its trailing comma: a known quirk, pinned like the rest.)
  CHECK(answer("extract_entities",
               "Dr. Maria Chen met Acme Robotics Inc. in Paris on March 3, "
               "2024. Mail bob@example.com or see https://x.org/a, pay $5 "
               "(12% off). We flew from London to New York. The Northwind "
               "Bank said no.") ==
        R"({"entities":[{"text":"bob@example.com","type":"EMAIL"},)"
        R"({"text":"https://x.org/a,","type":"URL"},)"
        R"({"text":"$5","type":"MONEY"},)"
        R"({"text":"12%","type":"PERCENT"},)"
        R"({"text":"March 3, 2024","type":"DATE"},)"
        R"({"text":"Maria Chen","type":"PERSON"},)"
        R"({"text":"Acme Robotics Inc.","type":"ORGANIZATION"},)"
        R"({"text":"Paris","type":"LOCATION"},)"
        R"({"text":"London","type":"LOCATION"},)"
        R"({"text":"New York","type":"LOCATION"},)"
        R"({"text":"Northwind Bank","type":"ORGANIZATION"}]})");
  // The same entity twice is listed once; a lone capitalised word at a
  // sentence start is not an entity.
  CHECK(answer("extract_entities", "Paris is big. Paris again. Hello world.")
        == R"({"entities":[{"text":"Paris","type":"LOCATION"}]})");
}

TEST_CASE("offline sentiment: counted words, negation within two words",
          "[unit][offline]") {
  CHECK(answer("analyze_sentiment", "Great service, fast and friendly.") ==
        R"({"confidence":0.85,"sentiment":"positive"})");
  CHECK(answer("analyze_sentiment", "It was not good, the app is slow.") ==
        R"({"confidence":0.75,"sentiment":"negative"})");
  CHECK(answer("analyze_sentiment", "A table and a chair.") ==
        R"({"confidence":0.6,"sentiment":"neutral"})");
}

TEST_CASE("offline summary: the sentence of the most frequent words",
          "[unit][offline]") {
  CHECK(answer("summarize",
               "The bridge opened today. Traffic on the bridge fell and the "
               "bridge tolls rose. Nobody minded.") ==
        R"({"summary":"Traffic on the bridge fell and the bridge tolls rose."})");
  CHECK(answer("summarize", "no end mark") ==
        R"({"summary":"no end mark."})");
}
