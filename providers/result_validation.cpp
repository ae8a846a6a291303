#include "providers/result_validation.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "types/json_schema.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

// Finds the JSON object in a model's answer: the whole text, a fenced block,
// or the span from the first '{' to the last '}'.
std::string json_candidate(const std::string& text) {
  auto fence = text.find("```");
  if (fence != std::string::npos) {
    auto body = text.find('\n', fence);
    auto close = body == std::string::npos ? std::string::npos
                                           : text.find("```", body);
    if (close != std::string::npos)
      return text.substr(body + 1, close - body - 1);
  }
  auto first = text.find('{');
  auto last = text.rfind('}');
  if (first != std::string::npos && last != std::string::npos && last > first)
    return text.substr(first, last - first + 1);
  return text;
}

// Compiled schemas by text. Every schema that reaches a worker was checked
// when its type was loaded; one that still fails to compile (a store
// edited by hand) is remembered as null and fails each answer.
std::shared_ptr<const json_schema> compiled_shared(
  const std::string& schema_text, std::string& why) {
  static std::mutex mtx;
  static std::map<std::string, std::shared_ptr<const json_schema>> cache;
  static std::map<std::string, std::string> broken;
  std::lock_guard<std::mutex> guard(mtx);
  auto i = cache.find(schema_text);
  if (i != cache.end())
    return i->second;
  auto b = broken.find(schema_text);
  if (b != broken.end()) {
    why = b->second;
    return nullptr;
  }
  try {
    auto doc = json::parse(schema_text);
    return cache[schema_text] = json_schema::compile(doc);
  } catch (const std::exception& e) {
    why = broken[schema_text] = std::string("the task's schema is unusable: ") +
                                e.what();
    return nullptr;
  }
}

// The same, looked up first in this thread's own copy: the shared cache's
// lock and string compares were a measurable part of every answer.
std::shared_ptr<const json_schema> compiled(const std::string& schema_text,
                                            std::string& why) {
  thread_local std::unordered_map<std::string,
                                  std::shared_ptr<const json_schema>>
    mine;
  if (auto i = mine.find(schema_text); i != mine.end())
    return i->second;
  auto found = compiled_shared(schema_text, why);
  if (found) {
    if (mine.size() > 256) // chat tasks may each bring their own
      mine.clear();
    mine.emplace(schema_text, found);
  }
  return found;
}

} // namespace

validation validate_result(const std::string& schema_text,
                           const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    j = json::parse(json_candidate(text), nullptr, false);
  return validate_value(schema_text, j);
}

validation validate_value(const std::string& schema_text, const json& j) {
  validation v;
  if (j.is_discarded() || !j.is_object()) {
    v.error = "model output is not a JSON object";
    return v;
  }
  if (!schema_text.empty()) {
    std::string why;
    auto schema = compiled(schema_text, why);
    if (!schema) {
      v.error = why;
      return v;
    }
    auto violations = schema->violations(j);
    if (!violations.empty()) {
      v.error = "model output does not match the schema: " + violations;
      return v;
    }
  }
  v.ok = true;
  v.result = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return v;
}

uint64_t estimate_tokens(const std::string& text) {
  return (text.size() + 3) / 4;
}

} // namespace bgagent
