// Pattern entities for the offline provider: e-mail addresses, URLs, money
// amounts, percentages and dates, found by small hand-written scanners.
//
// Contract: extract_pattern_entities() returns the matches in type order
// (EMAIL, URL, MONEY, PERCENT, DATE), each type left to right, and blanks
// every matched span in `text` with spaces so that a later pass (capitalised
// names) does not see them again. A span matched by an earlier type is never
// matched by a later one. Scanners rather than std::regex: the offline
// provider runs once per task and std::regex dominated its profile.
#pragma once

#include <string>
#include <vector>

namespace bgagent {

struct pattern_entity {
  std::string text;
  std::string type;  // "EMAIL", "URL", "MONEY", "PERCENT" or "DATE"
};

std::vector<pattern_entity> extract_pattern_entities(std::string& text);

}  // namespace bgagent
