// JSON Schema (draft 7), checked and applied with valijson.
//
// Contract: compile() accepts a document only if it satisfies the draft-07
// meta-schema and valijson can build it; otherwise it throws
// std::invalid_argument with the first reasons, "at /path: what". A compiled
// schema is immutable and may be shared between threads; violations() is
// empty when a value satisfies it, else its first few violations in the same
// form, short enough to show a model in a repair turn.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bgagent {

class json_schema {
public:
  static std::shared_ptr<const json_schema> compile(const nlohmann::json& doc);
  ~json_schema();

  std::string violations(const nlohmann::json& value) const;

private:
  json_schema();
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The draft-07 meta-schema's text (types/draft7_meta_schema.cpp).
const char* draft7_meta_schema_text();

} // namespace bgagent
