// How deeply a JSON value nests, found without recursion.
//
// Contract: deeper_than(j, limit) is true when `j` has a value more than
// `limit` levels down (a scalar is level 1). It uses a heap stack, so a
// hostile document nested 100,000 deep costs memory, not the call stack;
// check it before anything that recurses (copying, dump(), a schema
// compiler).
#pragma once

#include <utility>
#include <vector>

namespace bgagent {

template <class Json>
bool deeper_than(const Json& j, int limit) {
  std::vector<std::pair<const Json*, int>> todo{{&j, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (depth > limit)
      return true;
    if (v->is_structured())
      for (auto& child : *v)
        todo.emplace_back(&child, depth + 1);
  }
  return false;
}

} // namespace bgagent
