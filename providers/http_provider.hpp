// The OpenAI-compatible HTTP provider: POST {base}/chat/completions over the
// shared asynchronous http_client. Registered as "openrouter" (OpenRouter,
// with its attribution headers) and "openai" (OpenAI, or any compatible
// server given by LLM_BASE_URL: Ollama, vLLM, llama.cpp's server).
//
// Contract:
// - start() builds the request (the type's rendered system and user
//   prompts, its temperature and max_tokens, its JSON Schema as
//   response_format json_schema unless turned off; after an answer that
//   failed the schema, that answer and the validation error as two more
//   messages, the repair turn; a chat task's body as it is, with model and
//   max_tokens added when absent; Authorization: Bearer KEY when there is
//   a key) and returns at once; the
//   completion runs on the client's thread with interpret_response()'s
//   verdict (see http_outcome.hpp for the error classes, the validation of
//   reported usage, and `usage.cost`, used whenever the server reports it:
//   openrouter and openai alike). libcurl's own timeout is
//   BG_AGENT_TIMEOUT + 2 s, a backstop behind the worker's.
// - cancel() abandons the call; its `done` then runs with a retryable
//   "cancelled" outcome the worker ignores.
// - The reservation estimate is an upper bound: one token per byte of the
//   system prompt and the input, plus message overhead, so real usage never
//   exceeds what the budget_keeper granted.
// - make_http_provider() throws std::invalid_argument, one line naming the
//   missing variable, when a provider needs an API key and has none
//   (openrouter always; openai unless LLM_BASE_URL points elsewhere than
//   api.openai.com).
// - The API key is never logged and never appears in an outcome.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "providers/http_client.hpp"
#include "providers/provider.hpp"

namespace bgagent {

struct http_provider_config {
  std::string name;     // "openrouter" | "openai"
  std::string base_url; // without the trailing slash
  std::string api_key;  // may be empty for a local server
  std::string model;
  double timeout_seconds = 300;
  double connect_timeout_seconds = 10;
  bool attribution = false; // OpenRouter's HTTP-Referer and X-Title
  bool response_format = true; // a type's schema as response_format
  model_price price; // the configured model's
  std::shared_ptr<const price_list> prices; // every other model's
  http_client_settings client;
};

class http_provider : public provider {
public:
  explicit http_provider(http_provider_config c);
  ~http_provider() override;

  std::string name() const override { return cfg_.name; }
  std::string model() const override { return cfg_.model; }
  uint64_t start(const llm_request& req, completion done) override;
  void cancel(uint64_t call_id) override;
  uint64_t estimate_prompt_tokens(const llm_request& req) const override;
  model_price price_of(const std::string& model) const override;
  bool knows_price_of(const std::string& model) const override;

  // The JSON body of a chat completions request, for tests.
  // Empty when a chat task's stored body is not a JSON object.
  static std::string request_body(const std::string& model,
                                  const llm_request& req,
                                  bool response_format = true);

private:
  std::optional<price_entry> price_entry_of(const std::string& model) const;

  http_provider_config cfg_;
  std::string url_;
  std::vector<std::string> headers_;
  std::unique_ptr<http_client> client_;
};

inline const char* openrouter_default_base_url() {
  return "https://openrouter.ai/api/v1";
}
inline const char* openai_default_base_url() {
  return "https://api.openai.com/v1";
}

provider_ptr make_http_provider(const provider_settings& s);

} // namespace bgagent
