// The task types a command works with: the built-in ones and the user's
// types file (--types, BG_AGENT_TYPES, else ./bgagent-types.yaml).
//
// Contract: a broken types file is a usage_error (exit 2) with the
// registry's one line naming the file, line, type and field.
#pragma once

#include "app/config.hpp"
#include "types/type_registry.hpp"

namespace bgagent {

type_registry types_in_force(const config& c);

} // namespace bgagent
