// The store's word on an attempt's mark (running, or completed), sent by
// the checkpointer to the gateway that asked, together with every other
// answer of the same commit: one message per gateway and commit, not one
// per mark.
//
// Contract: sent only once the commit that holds the mark is durable
// (`written`), or once it is known that nothing was written (`written`
// false: the attempt was superseded, or the task is not in the state the
// mark needs). A gateway acts only on answers whose sender is the
// checkpointer. If the checkpointer ends first, no answer comes: the
// supervisor, which monitors it, ends the run.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace bgagent {

struct mark_answer {
  std::string id;
  uint32_t attempt = 0;
  bool completion = false;  // false: the running mark
  bool written = false;     // committed; false: nothing written
  uint64_t reservation = 0; // the running mark's reservation id
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mark_answer& x) {
  return f(caf::meta::type_name("mark_answer"), x.id, x.attempt,
           x.completion, x.written, x.reservation);
}

} // namespace bgagent
