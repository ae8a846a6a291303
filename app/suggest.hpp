// "Did you mean ...?" for a mistyped command or variable name.
//
// Contract: closest_name() is the candidate nearest to `name` by edit
// distance (insertions, deletions, substitutions), when it is at most
// 2 edits away, or a quarter of `name`'s length for longer names; ""
// otherwise.
#pragma once

#include <string>
#include <vector>

namespace bgagent {

std::string closest_name(const std::string& name,
                         const std::vector<std::string>& candidates);

} // namespace bgagent
