// The provider interface: the only way bgagent talks to an LLM.
//
// Contract:
// - start() never blocks on I/O. It calls `done` exactly once, from any
//   thread, possibly before start() returns. It may throw only for bugs
//   (a throwing provider kills the calling worker, which the supervisor
//   restarts: that is the designed crash path).
// - cancel() abandons a call (the worker timed it out); `done` may still run
//   later and its outcome is then ignored by the worker.
// - One provider instance serves every worker of a process: thread-safe.
// - The API key never appears in an outcome, a log line or an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "messages/call_outcome.hpp"
#include "providers/price_list.hpp"
#include "providers/pricing.hpp"

namespace bgagent {

// One call's request, complete: the task's type already resolved and its
// templates rendered (messages/task.hpp), so no provider needs the types.
struct llm_request {
  std::string task_id;
  std::string type;        // the type's name (the offline provider's
                           // heuristics know the built-in ones)
  std::string input;
  uint32_t max_tokens = 0; // already resolved to the type's default
  std::string system;      // rendered system prompt ("" none)
  std::string prompt;      // rendered user prompt
  std::string schema;      // JSON Schema text the result must satisfy
  std::string model;       // empty: the provider's configured model
  double temperature = 0;
  // Chat tasks (OpenAI Batch lines): `input` is the request body, sent as
  // it is (types/openai_batch.hpp); system and prompt are empty.
  bool raw = false;
  // The repair turn: the last answer that failed `schema`, and why.
  std::string repair_answer;
  std::string repair_error;
  // OpenRouter only: the models it may route to after `model` (its
  // `models` list), in order.
  std::vector<std::string> fallback_models;

  // Neither prompt: the type's stored definition could not be used.
  bool unusable() const { return !raw && system.empty() && prompt.empty(); }
};

// What selects and configures a provider; filled from configuration.
struct provider_settings {
  std::string name;     // offline | openrouter | openai | (test doubles)
  std::string model;
  std::string base_url; // for HTTP providers
  std::string api_key;
  double timeout_seconds = 300;
  double connect_timeout_seconds = 10;
  // BG_AGENT_PRICE_PROMPT / _COMPLETION (< 0: not given); `prices` holds
  // them too, with the prices file and the provider's list.
  double price_prompt_per_million = -1;
  double price_completion_per_million = -1;
  std::shared_ptr<const price_list> prices; // null: the built-in table
  // Send a type's schema as response_format json_schema
  // (BG_AGENT_RESPONSE_FORMAT=json_schema, the default; off for servers
  // that reject it).
  bool response_format = true;
  // Calls this process may have in flight at once (its workers): an HTTP
  // provider keeps at least this many connections open (HTTP/1.1 needs
  // one per call).
  uint32_t concurrency = 0;
};

class provider {
public:
  using completion = std::function<void(call_outcome)>;
  explicit provider(model_price price) : price_(price) {}
  virtual ~provider() = default;

  virtual std::string name() const = 0;
  virtual std::string model() const = 0;

  // Starts one call; returns an id for cancel().
  virtual uint64_t start(const llm_request& req, completion done) = 0;
  virtual void cancel(uint64_t /*call_id*/) {}

  // Worst-case prompt tokens for the reservation (the same estimate the
  // offline provider reports as its usage).
  virtual uint64_t estimate_prompt_tokens(const llm_request& req) const;
  // Worst-case cost in USD of a call with these token counts, at the
  // configured model's price.
  double worst_case_cost(uint64_t prompt_tokens,
                         uint64_t completion_tokens) const {
    return price_.cost(prompt_tokens, completion_tokens);
  }
  const model_price& price() const { return price_; }
  // The price of `model` (the configured model's when empty or the same);
  // 0 where none is known.
  virtual model_price price_of(const std::string& model) const;
  // Whether price_of(model) is a known price, not a 0 for want of one.
  virtual bool knows_price_of(const std::string& /*model*/) const {
    return true;
  }

protected:
  model_price price_;
};

using provider_ptr = std::shared_ptr<provider>;

// The default estimate_prompt_tokens(): about four bytes a token of the
// system and user prompts, plus the chat framing.
uint64_t estimate_chat_prompt_tokens(const llm_request& req);

} // namespace bgagent
