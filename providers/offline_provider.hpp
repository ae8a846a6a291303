// The offline provider: deterministic, no network, no key. It makes the
// program useful anywhere and is labelled "offline" in every result.
//
// Contract: the same input always gives the same result and the same usage
// (estimate_tokens of what was "sent" and "received"); cost is zero.
// summarize picks the most representative sentence; analyze_sentiment scores
// a lexicon with negation; extract_entities finds capitalised spans, e-mail
// addresses, URLs, money, percentages and dates. Any other type (or a
// built-in one redefined with a schema those answers miss) gets a
// deterministic instance of its JSON Schema (types/schema_instance.hpp);
// a schema it cannot satisfy is a permanent failure naming the violation.
#pragma once

#include "providers/provider.hpp"

namespace bgagent {

class offline_provider : public provider {
public:
  offline_provider();
  std::string name() const override { return "offline"; }
  std::string model() const override { return "offline"; }
  uint64_t start(const llm_request& req, completion done) override;

  // The pure computation behind start(), for tests.
  static call_outcome compute(const llm_request& req);
};

} // namespace bgagent
