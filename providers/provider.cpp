#include "providers/provider.hpp"

#include "providers/result_validation.hpp"
#include "types/openai_batch.hpp"

namespace bgagent {

uint64_t estimate_chat_prompt_tokens(const llm_request& req) {
  // Chat formatting adds a few tokens per message.
  constexpr uint64_t message_overhead = 8;
  uint64_t n = estimate_tokens(req.system) + estimate_tokens(req.prompt) +
               message_overhead;
  if (req.raw)
    n += estimate_tokens(req.input);
  if (!req.repair_answer.empty())
    n += estimate_tokens(req.repair_answer) +
         estimate_tokens(repair_instruction(req.repair_error)) +
         2 * message_overhead;
  return n;
}

uint64_t provider::estimate_prompt_tokens(const llm_request& req) const {
  return estimate_chat_prompt_tokens(req);
}

model_price provider::price_of(const std::string&) const { return price_; }

} // namespace bgagent
