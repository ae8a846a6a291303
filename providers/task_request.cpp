#include "providers/task_request.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "providers/http_provider.hpp"

namespace bgagent {

llm_request request_for(const task& t, const std::string& model) {
  uint32_t max_tokens = t.max_tokens ? t.max_tokens : 256;
  // The invalid answer shown back in a repair turn, cut to what an honest
  // answer within max_tokens could be (about four characters a token): a
  // provider that ignored max_tokens must not make the next request, and
  // its reservation, grow past the budget.
  size_t limit = std::max<size_t>(1000, size_t{4} * t.max_tokens);
  return llm_request{t.id,
                     t.type,
                     t.input,
                     max_tokens,
                     t.system,
                     t.prompt,
                     t.schema,
                     model,
                     t.temperature,
                     t.raw,
                     utf8_clip(t.repair_answer, limit, "..."),
                     t.repair_error,
                     {}};
}

std::string request_fingerprint(const task& t, const std::string& provider,
                                const std::string& model,
                                bool response_format) {
  if (t.temperature != 0)
    return {};
  if (t.raw) {
    // A chat task's body is sent as it is: only one that asks for
    // temperature 0 itself is cached (without it the provider samples, at
    // 1.0 on OpenAI).
    auto body = nlohmann::json::parse(t.input, nullptr, false);
    if (!body.is_object())
      return {};
    auto temp = body.find("temperature");
    if (temp == body.end() || !temp->is_number() ||
        temp->get<double>() != 0)
      return {};
  }
  auto req = request_for(t, model);
  if (req.unusable())
    return {};
  auto body = http_provider::request_body(model, req, response_format);
  if (body.empty())
    return {};
  return sha256_hex(provider + "/" + model + "\n" + body);
}

} // namespace bgagent
