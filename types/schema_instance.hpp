// A value that satisfies a JSON Schema, made without a model: what the
// offline provider answers for a type it has no heuristics for.
//
// Contract: deterministic in (schema, seed). It follows const, enum, type
// (the first non-null one), required and listed properties, items with
// minItems/maxItems, string lengths and formats (date, date-time, email,
// uri), a pattern by trying plain candidates (an ISO date, upper-case and
// lower-case letters, digits), numeric bounds and multipleOf, internal
// $refs, and the first branch of allOf/anyOf/oneOf. It does not promise
// validity for every schema: the caller validates what it returns.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace bgagent {

nlohmann::json schema_instance(const nlohmann::json& schema, uint64_t seed);

} // namespace bgagent
