// The built-in task types' definitions, in the types-file format.
#pragma once

namespace bgagent {

const char* builtin_types_yaml();

} // namespace bgagent
