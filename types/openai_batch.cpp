#include "types/openai_batch.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "messages/json_depth.hpp"
#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "types/json_schema.hpp"

namespace bgagent {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string shown(const std::string& s) {
  return utf8_clip(sanitize_utf8(s), 64);
}

// Deeper than this, a body is refused: serializing and validating it
// recurse once per level.
constexpr int max_body_depth = 64;

// body.response_format.type when it is a string, else "".
template <class Json>
std::string format_type(const Json& body) {
  if (!body.contains("response_format") || !body["response_format"].is_object())
    return {};
  auto& t = body["response_format"]["type"];
  return t.is_string() ? t.template get<std::string>() : std::string();
}

bool is_chat_path(const std::string& url) {
  return url == "/v1/chat/completions" || url == "/chat/completions";
}

// A whole number in [1, limit] at body[name], or 0 when absent.
uint32_t token_field(const ordered_json& body, const char* name,
                     uint32_t limit) {
  if (!body.contains(name) || body[name].is_null())
    return 0;
  auto& v = body[name];
  if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
      v.get<int64_t>() > limit)
    throw std::invalid_argument(std::string("body.") + name +
                                " must be a whole number from 1 to " +
                                std::to_string(limit));
  return static_cast<uint32_t>(v.get<int64_t>());
}

} // namespace

bool is_batch_line(const json& line) {
  return line.is_object() && line.contains("custom_id");
}

task read_batch_line(const ordered_json& line, uint32_t max_tokens_limit,
                     const std::string& chat_fingerprint) {
  for (auto& [name, value] : line.items()) {
    (void)value;
    if (name != "custom_id" && name != "method" && name != "url" &&
        name != "body")
      throw std::invalid_argument("unknown field \"" + shown(name) +
                                  "\" in an OpenAI Batch line (known: "
                                  "custom_id, method, url, body)");
  }
  auto text = [&](const char* name) {
    if (!line.contains(name) || !line[name].is_string())
      throw std::invalid_argument(std::string("field \"") + name +
                                  "\" must be a string");
    return line[name].get<std::string>();
  };
  task t;
  t.id = text("custom_id");
  if (t.id.empty() || t.id.size() > 256)
    throw std::invalid_argument("custom_id must be 1 to 256 characters");
  if (has_control_chars(t.id))
    throw std::invalid_argument("custom_id may not contain control "
                                "characters");
  auto method = text("method");
  if (method != "POST")
    throw std::invalid_argument("method \"" + shown(method) +
                                "\": only POST is supported");
  auto url = text("url");
  if (!is_chat_path(url))
    throw std::invalid_argument("url \"" + shown(url) +
                                "\": only /v1/chat/completions is supported");
  if (!line.contains("body") || !line["body"].is_object())
    throw std::invalid_argument("field \"body\" must be an object");
  // Checked before the copy: copying recurses once per level.
  if (deeper_than(line["body"], max_body_depth))
    throw std::invalid_argument("body is nested more than " +
                                std::to_string(max_body_depth) +
                                " levels deep");
  auto body = line["body"];
  // A null bound is no bound: it is filled in as if absent.
  for (auto* name : {"max_tokens", "max_completion_tokens"})
    if (body.contains(name) && body[name].is_null())
      body.erase(name);
  for (auto* name : {"tools", "tool_choice", "functions", "function_call"})
    if (body.contains(name))
      throw std::invalid_argument(std::string("body.") + name +
                                  ": tool calls are not supported (an "
                                  "answer must be message content)");
  if (!body.contains("messages") || !body["messages"].is_array() ||
      body["messages"].empty())
    throw std::invalid_argument("body.messages must be a non-empty array");
  for (auto& m : body["messages"])
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw std::invalid_argument("body.messages: each message must be an "
                                  "object with a string \"role\"");
  if (body.contains("stream") && body["stream"] != false &&
      !body["stream"].is_null())
    throw std::invalid_argument("body.stream: streamed answers are not "
                                "supported");
  if (body.contains("n") && body["n"] != 1 && !body["n"].is_null())
    throw std::invalid_argument("body.n: only one choice per request is "
                                "supported");
  if (body.contains("model")) {
    if (!body["model"].is_string() || body["model"].get<std::string>().empty() ||
        body["model"].get<std::string>().size() > 200)
      throw std::invalid_argument("body.model must be a model name of 1 to "
                                  "200 characters");
    t.model = body["model"].get<std::string>();
  }
  auto a = token_field(body, "max_tokens", max_tokens_limit);
  auto b = token_field(body, "max_completion_tokens", max_tokens_limit);
  t.max_tokens = std::max(a, b);
  if (t.max_tokens == 0)
    t.max_tokens = batch_default_max_tokens;
  if (body.contains("response_format")) {
    auto& rf = body["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      throw std::invalid_argument("body.response_format must be an object "
                                  "with a string \"type\"");
    if (format_type(body) == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object() ||
          !rf["json_schema"].contains("schema") ||
          !rf["json_schema"]["schema"].is_object())
        throw std::invalid_argument("body.response_format.json_schema.schema "
                                    "must be a JSON Schema object");
      try {
        json_schema::compile(json(rf["json_schema"]["schema"]));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(
          "body.response_format.json_schema.schema is not a valid JSON "
          "Schema (draft 7): " +
          std::string(e.what()));
      }
    }
  }
  t.type = "chat";
  // In the line's own key order; numbers as JSON doubles or 64-bit
  // integers (a longer integer literal loses digits).
  t.input = body.dump(-1, ' ', false, ordered_json::error_handler_t::strict);
  t.idempotency_key = "id:" + t.id;
  t.type_fingerprint = chat_fingerprint;
  return t;
}

std::string chat_body_schema(const json& body) {
  if (format_type(body) != "json_schema")
    return {};
  auto& rf = body["response_format"];
  if (!rf.contains("json_schema") || !rf["json_schema"].is_object() ||
      !rf["json_schema"].contains("schema") ||
      !rf["json_schema"]["schema"].is_object())
    return {};
  return rf["json_schema"]["schema"].dump();
}

std::string repair_instruction(const std::string& error) {
  return "Your previous answer did not satisfy the required JSON Schema: " +
         error +
         ". Answer again with only the corrected JSON value, nothing else.";
}

std::string chat_request_body(const std::string& body_text,
                              const std::string& model, uint32_t max_tokens,
                              const std::string& repair_answer,
                              const std::string& repair_error) {
  auto body = ordered_json::parse(body_text, nullptr, false);
  if (!body.is_object())
    return {};
  if (!body.contains("model") && !model.empty())
    body["model"] = model;
  // The reservation counts this many completion tokens: never more.
  auto bounded = [&](const char* name) {
    return body.contains(name) && !body[name].is_null();
  };
  if (!bounded("max_tokens") && !bounded("max_completion_tokens"))
    body["max_tokens"] = max_tokens;
  if (!repair_answer.empty()) {
    body["messages"].push_back({{"role", "assistant"},
                                {"content", repair_answer}});
    body["messages"].push_back({{"role", "user"},
                                {"content", repair_instruction(repair_error)}});
  }
  return body.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

std::string batch_output_line(const task_record& r) {
  bool completed = r.state == "completed";
  if (!completed && r.state != "quarantined" && r.state != "cancelled")
    return {};
  // Stable ids from the task: the same task prints the same line.
  auto h = sha256_hex(r.id).substr(0, 24);
  ordered_json line{{"id", "batch_req_" + h}, {"custom_id", r.id}};
  if (completed) {
    // ordered: the provider's own field order, and OpenAI's in the line.
    auto body = ordered_json::parse(r.response, nullptr, false);
    if (!body.is_object()) {
      // Not a chat task, or an offline answer: the equivalent answer.
      auto result = json::parse(r.result, nullptr, false);
      std::string content;
      if (r.type == "chat" && result.is_object() &&
          result.contains("content") && result["content"].is_string() &&
          result.value("role", "") == "assistant")
        content = result["content"].get<std::string>();
      else
        content = r.result;
      body = ordered_json{{"id", "chatcmpl-" + h},
              {"object", "chat.completion"},
              {"model", r.model},
              {"choices",
               ordered_json::array({{{"index", 0},
                             {"message",
                              {{"role", "assistant"}, {"content", content}}},
                             {"finish_reason", "stop"}}})},
              {"usage",
               {{"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", r.completion_tokens},
                {"total_tokens", r.prompt_tokens + r.completion_tokens}}}};
    }
    std::string request_id = body.contains("id") && body["id"].is_string()
                               ? body["id"].get<std::string>()
                               : "req_" + h;
    line["response"] = ordered_json{{"status_code", 200},
                        {"request_id", request_id},
                        {"body", std::move(body)}};
    line["error"] = nullptr;
  } else {
    line["response"] = nullptr;
    line["error"] = ordered_json{{"code", r.state},
                     {"message", r.error.empty() ? r.state : r.error}};
  }
  return line.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

} // namespace bgagent
