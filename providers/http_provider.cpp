#include "providers/http_provider.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "messages/json_codec.hpp"
#include "messages/utf8.hpp"
#include "providers/http_outcome.hpp"
#include "providers/rate_limit_headers.hpp"
#include "providers/result_validation.hpp"
#include "types/openai_batch.hpp"

namespace bgagent {

using nlohmann::json;

http_provider::http_provider(http_provider_config c)
  : provider(c.price), cfg_(std::move(c)) {
  if (!cfg_.prices) // the built-in table only
    cfg_.prices = std::make_shared<const price_list>();
  url_ = cfg_.base_url + "/chat/completions";
  headers_.push_back("Content-Type: application/json");
  headers_.push_back("Accept: application/json");
  if (!cfg_.api_key.empty())
    headers_.push_back("Authorization: Bearer " + cfg_.api_key);
  if (cfg_.attribution) {
    headers_.push_back("HTTP-Referer: https://github.com/bgagent/bgagent");
    headers_.push_back("X-Title: bgagent");
  }
  client_ = std::make_unique<http_client>(cfg_.client);
}

http_provider::~http_provider() = default;

namespace {

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// A schema name as OpenAI accepts it: [a-zA-Z0-9_-], at most 64.
std::string schema_name(const std::string& type) {
  std::string out;
  for (char c : type)
    if (out.size() < 64)
      out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                 c == '_'
               ? c
               : '_';
  return out.empty() ? "result" : out;
}

// The body as a json tree, dumped: for a request whose text is not valid
// UTF-8 (nlohmann's replacement of ill-formed bytes is the rule there).
std::string request_body_tree(const std::string& model,
                              const llm_request& req,
                              bool response_format) {
  json messages = json::array();
  if (!req.system.empty())
    messages.push_back({{"role", "system"}, {"content", req.system}});
  messages.push_back({{"role", "user"}, {"content", req.prompt}});
  if (!req.repair_answer.empty()) {
    messages.push_back({{"role", "assistant"}, {"content", req.repair_answer}});
    messages.push_back(
      {{"role", "user"}, {"content", repair_instruction(req.repair_error)}});
  }
  json body{
    {"model", model},
    {"messages", std::move(messages)},
    {"temperature", req.temperature},
    {"max_tokens", req.max_tokens},
    {"stream", false},
  };
  // OpenRouter's own fallbacks: it tries them in order.
  if (!req.fallback_models.empty()) {
    json models = json::array({model});
    for (auto& m : req.fallback_models)
      models.push_back(m);
    body["models"] = std::move(models);
  }
  if (response_format && !req.schema.empty()) {
    auto schema = json::parse(req.schema, nullptr, false);
    if (schema.is_object())
      body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", schema_name(req.type)}, {"schema", std::move(schema)},
          {"strict", false}}}};
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A type's schema as dump() writes it (keys sorted), or "" when it is not
// a JSON object. Every task of a type has the same schema, so it is parsed
// once per thread, not twice per call.
const std::string& dumped_schema(const std::string& schema) {
  thread_local std::unordered_map<std::string, std::string> seen;
  auto found = seen.find(schema);
  if (found != seen.end())
    return found->second;
  if (seen.size() >= 64) // a bound: types are few, but input is not ours
    seen.clear();
  auto parsed = json::parse(schema, nullptr, false);
  return seen[schema] = parsed.is_object()
                          ? parsed.dump(-1, ' ', false,
                                        json::error_handler_t::replace)
                          : std::string();
}

void append_message(std::string& out, const char* role,
                    const std::string& content) {
  out += "{\"content\":";
  append_json_string(out, content);
  out += ",\"role\":\"";
  out += role;
  out += "\"}";
}

} // namespace

std::string http_provider::request_body(const std::string& model,
                                        const llm_request& req,
                                        bool response_format) {
  if (req.raw)
    return chat_request_body(req.input, model, req.max_tokens,
                             req.repair_answer, req.repair_error);
  // Written field by field, byte for byte what dump() writes for the tree
  // (keys in std::map order): it is built twice a call (the cache's
  // fingerprint, the request), and the tree cost ~9 % of a run's CPU at
  // 10,000 calls in flight. The fingerprint of a stored answer depends on
  // these bytes: http_provider_test compares them with the tree's.
  auto repair = req.repair_answer.empty()
                  ? std::string()
                  : repair_instruction(req.repair_error);
  bool utf8 = valid_utf8(model) && valid_utf8(req.system) &&
              valid_utf8(req.prompt) && valid_utf8(req.repair_answer) &&
              valid_utf8(repair);
  for (auto& m : req.fallback_models)
    utf8 = utf8 && valid_utf8(m);
  if (!utf8)
    return request_body_tree(model, req, response_format);
  std::string out;
  out.reserve(160 + req.system.size() + req.prompt.size() +
              req.repair_answer.size() + repair.size() + req.schema.size());
  out += "{\"max_tokens\":";
  out += std::to_string(req.max_tokens);
  out += ",\"messages\":[";
  if (!req.system.empty()) {
    append_message(out, "system", req.system);
    out += ',';
  }
  append_message(out, "user", req.prompt);
  if (!req.repair_answer.empty()) {
    out += ',';
    append_message(out, "assistant", req.repair_answer);
    out += ',';
    append_message(out, "user", repair);
  }
  out += "],\"model\":";
  append_json_string(out, model);
  if (!req.fallback_models.empty()) {
    out += ",\"models\":[";
    append_json_string(out, model);
    for (auto& m : req.fallback_models) {
      out += ',';
      append_json_string(out, m);
    }
    out += ']';
  }
  if (response_format && !req.schema.empty()) {
    const auto& schema = dumped_schema(req.schema);
    if (!schema.empty()) {
      out += ",\"response_format\":{\"json_schema\":{\"name\":";
      append_json_string(out, schema_name(req.type));
      out += ",\"schema\":";
      out += schema;
      out += ",\"strict\":false},\"type\":\"json_schema\"}";
    }
  }
  out += ",\"stream\":false,\"temperature\":";
  out += json(req.temperature).dump();
  out += '}';
  return out;
}

uint64_t http_provider::estimate_prompt_tokens(const llm_request& req) const {
  // No tokenizer yields more tokens than bytes; chat framing adds a few.
  constexpr uint64_t message_overhead = 16;
  uint64_t n = req.system.size() + req.prompt.size() + message_overhead;
  if (req.raw)
    n += req.input.size();
  if (!req.repair_answer.empty())
    n += req.repair_answer.size() +
         repair_instruction(req.repair_error).size() + 2 * message_overhead;
  return n;
}

// Looked up at each call: the provider's own list joins the prices after
// this provider is made.
std::optional<price_entry>
http_provider::price_entry_of(const std::string& model) const {
  return cfg_.prices->find(model.empty() ? cfg_.model : model);
}

model_price http_provider::price_of(const std::string& model) const {
  // No known price: nothing to reserve or charge but what the server
  // reports (a run refuses such a model up front).
  auto e = price_entry_of(model);
  return e ? e->price : model_price{};
}

bool http_provider::knows_price_of(const std::string& model) const {
  return price_entry_of(model).has_value();
}

uint64_t http_provider::start(const llm_request& req, completion done) {
  auto model = req.model.empty() ? cfg_.model : req.model;
  // A call that cannot be made: a permanent failure, and no request.
  auto refuse = [&](const std::string& why) {
    auto out = make_failure(error_kind::permanent, why);
    out.provider = cfg_.name;
    out.model = model;
    done(std::move(out));
    return uint64_t{0};
  };
  if (req.unusable())
    return refuse("task type \"" + req.type +
                  "\": its stored definition cannot be used");
  // Its call could not be held to a cost budget. A head refuses such a
  // model before its run; this is a node whose prices differ from its head's.
  for (auto& m : req.fallback_models)
    if (!knows_price_of(m))
      return refuse("no price is known for model \"" + m +
                    "\" (a fallback) here: give it in BG_AGENT_PRICES or "
                    "BG_AGENT_PRICE_* (no call was made)");
  if (!knows_price_of(model))
    return refuse("no price is known for model \"" + model +
                  "\" here: give it in BG_AGENT_PRICES or BG_AGENT_PRICE_* "
                  "(no call was made)");
  http_request hr;
  hr.url = url_;
  hr.headers = headers_;
  hr.body = request_body(model, req, cfg_.response_format);
  if (hr.body.empty())
    return refuse("task " + req.task_id +
                  ": its stored request body is not a JSON object");
  // The worker's own BG_AGENT_TIMEOUT fires first (and charges the
  // reservation, as the request was sent); libcurl's is a backstop.
  hr.timeout_seconds = cfg_.timeout_seconds + 2;
  hr.connect_timeout_seconds = cfg_.connect_timeout_seconds;
  outcome_context ctx{cfg_.name, model, req.schema, price_of(model),
                      cfg_.api_key, cfg_.timeout_seconds, req.raw, {}};
  if (!req.raw)
    for (auto& m : req.fallback_models)
      ctx.routes.emplace_back(m, price_of(m));
  return client_->submit(std::move(hr),
                         [ctx = std::move(ctx),
                          done = std::move(done)](http_response r) {
                           auto out = interpret_response(r, ctx);
                           auto limits = read_rate_limit_headers(
                             r.headers, unix_now_ms());
                           out.limit_requests = limits.limit_requests;
                           out.limit_tokens = limits.limit_tokens;
                           // A Retry-After says when, exactly: it wins.
                           out.limit_wait_ms =
                             out.retry_after_ms >= 0 ? -1 : limits.wait_ms;
                           done(std::move(out));
                         });
}

void http_provider::cancel(uint64_t call_id) {
  if (call_id != 0)
    client_->cancel(call_id);
}

provider_ptr make_http_provider(const provider_settings& s) {
  http_provider_config c;
  c.name = s.name;
  c.model = s.model;
  c.api_key = s.api_key;
  c.timeout_seconds = s.timeout_seconds;
  c.connect_timeout_seconds = s.connect_timeout_seconds;
  c.response_format = s.response_format;
  // One connection per call in flight, and some spare for reconnects.
  c.client.max_connections =
    std::max<long>(c.client.max_connections, s.concurrency + s.concurrency / 8);
  auto prices = s.prices;
  if (!prices) {
    auto built_in = std::make_shared<price_list>();
    built_in->set_environment(s.price_prompt_per_million,
                              s.price_completion_per_million, s.model);
    prices = built_in;
  }
  c.prices = prices;
  if (auto e = prices->find(s.model))
    c.price = e->price;
  if (s.name == "openrouter") {
    c.base_url = s.base_url.empty() ? openrouter_default_base_url()
                                    : s.base_url;
    c.attribution = true;
    if (c.api_key.empty())
      throw std::invalid_argument(
        "OPENROUTER_API_KEY is not set: the openrouter provider needs it "
        "(https://openrouter.ai/keys), or choose LLM_PROVIDER=offline");
  } else {
    c.base_url = s.base_url.empty() ? openai_default_base_url() : s.base_url;
    if (c.api_key.empty() && c.base_url == openai_default_base_url())
      throw std::invalid_argument(
        "OPENAI_API_KEY is not set: the openai provider needs it for " +
        c.base_url + " (a local server given by LLM_BASE_URL needs none)");
  }
  while (!c.base_url.empty() && c.base_url.back() == '/')
    c.base_url.pop_back();
  return std::make_shared<http_provider>(std::move(c));
}

} // namespace bgagent
