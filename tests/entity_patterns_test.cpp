#include <catch2/catch.hpp>

#include "providers/entity_patterns.hpp"

using bgagent::extract_pattern_entities;

namespace {

std::vector<std::pair<std::string, std::string>> found_in(std::string text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& e : extract_pattern_entities(text))
    out.emplace_back(e.type, e.text);
  return out;
}

using pairs = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("pattern entities are found by type, left to right", "[unit][offline]") {
  auto found = found_in(
      "Mail ana.lima+x@mail.example.org or see https://example.com/a?b=1). "
      "Revenue rose 12.5% to $4.2 million on March 3, 2024; costs were 300 EUR "
      "and 1,200 dollars, logged 2024-01-31 in 1999.");
  CHECK(found == pairs{{"EMAIL", "ana.lima+x@mail.example.org"},
                       {"URL", "https://example.com/a?b=1"},
                       {"MONEY", "$4.2 million"},
                       {"MONEY", "300 EUR"},
                       {"MONEY", "1,200 dollars"},
                       {"PERCENT", "12.5%"},
                       {"DATE", "March 3, 2024"},
                       {"DATE", "2024-01-31"},
                       {"DATE", "1999"}});
}

TEST_CASE("matched spans are blanked for later passes", "[unit][offline]") {
  std::string text = "Pay $5 to bob@example.com";
  extract_pattern_entities(text);
  CHECK(text == "Pay " + std::string(2, ' ') + " to " + std::string(15, ' '));
}

TEST_CASE("near misses are not entities", "[unit][offline]") {
  CHECK(found_in("user@localhost, 12345 items, $ alone, Mayday 3, 30 %s").size() == 1);
  CHECK(found_in("user@localhost, 12345 items, $ alone, Mayday 3, 30 %s")
        == pairs{{"PERCENT", "30 %"}});
  CHECK(found_in("the year 2024x and 3000 and 1984.") == pairs{{"DATE", "1984"}});
  CHECK(found_in("$5 Main Street").front() == std::pair<std::string, std::string>{"MONEY", "$5"});
}
