#include "providers/task_types.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "providers/provider.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

const std::string summarize_prompt =
  "You summarize text. Answer with only a JSON object of the form "
  "{\"summary\": \"<one sentence>\"}: one sentence, no preamble, no code "
  "fences.";
const std::string sentiment_prompt =
  "You classify the sentiment of text. Answer with only a JSON object of the "
  "form {\"sentiment\": \"positive\" | \"negative\" | \"neutral\", "
  "\"confidence\": <number from 0 to 1>}, no preamble, no code fences.";
const std::string entities_prompt =
  "You extract named entities from text. Answer with only a JSON object of "
  "the form {\"entities\": [{\"text\": \"<as written>\", \"type\": "
  "\"PERSON\" | \"ORGANIZATION\" | \"LOCATION\" | \"DATE\" | \"MONEY\" | "
  "\"EMAIL\" | \"URL\" | \"PERCENT\" | \"MISC\"}]}, no preamble, no code "
  "fences.";
const std::string no_prompt;

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

} // namespace

const std::vector<std::string>& known_task_types() {
  static const std::vector<std::string> types{"summarize", "analyze_sentiment",
                                              "extract_entities"};
  return types;
}

bool is_known_task_type(const std::string& type) {
  auto& t = known_task_types();
  return std::find(t.begin(), t.end(), type) != t.end();
}

uint32_t default_max_tokens(const std::string& type) {
  if (type == "summarize")
    return 256;
  if (type == "analyze_sentiment")
    return 64;
  if (type == "extract_entities")
    return 512;
  return 256;
}

const std::string& system_prompt(const std::string& type) {
  if (type == "summarize")
    return summarize_prompt;
  if (type == "analyze_sentiment")
    return sentiment_prompt;
  if (type == "extract_entities")
    return entities_prompt;
  return no_prompt;
}

uint64_t estimate_tokens(const std::string& text) {
  return (text.size() + 3) / 4;
}

uint64_t estimate_prompt_tokens(const std::string& type,
                                const std::string& input) {
  // Chat formatting adds a few tokens per message.
  constexpr uint64_t message_overhead = 8;
  return estimate_tokens(system_prompt(type)) + estimate_tokens(input) +
         message_overhead;
}

validation validate_result(const std::string& type, const std::string& text) {
  validation v;
  auto j = json::parse(json_candidate(text), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    v.error = "model output is not a JSON object";
    return v;
  }
  json out;
  if (type == "summarize") {
    if (!j.contains("summary") || !j["summary"].is_string() ||
        j["summary"].get<std::string>().empty()) {
      v.error = "model output lacks a non-empty string \"summary\"";
      return v;
    }
    out["summary"] = j["summary"];
  } else if (type == "analyze_sentiment") {
    if (!j.contains("sentiment") || !j["sentiment"].is_string()) {
      v.error = "model output lacks a string \"sentiment\"";
      return v;
    }
    auto s = j["sentiment"].get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s != "positive" && s != "negative" && s != "neutral") {
      v.error = "model output has sentiment \"" + s +
                "\", not positive, negative or neutral";
      return v;
    }
    if (!j.contains("confidence") || !j["confidence"].is_number()) {
      v.error = "model output lacks a numeric \"confidence\"";
      return v;
    }
    double c = j["confidence"].get<double>();
    if (!(c >= 0.0 && c <= 1.0)) {
      v.error = "model output has confidence " + std::to_string(c) +
                ", outside 0..1";
      return v;
    }
    out["sentiment"] = s;
    out["confidence"] = c;
  } else if (type == "extract_entities") {
    if (!j.contains("entities") || !j["entities"].is_array()) {
      v.error = "model output lacks an \"entities\" array";
      return v;
    }
    out["entities"] = json::array();
    for (auto& e : j["entities"]) {
      if (!e.is_object() || !e.contains("text") || !e["text"].is_string() ||
          !e.contains("type") || !e["type"].is_string()) {
        v.error = "model output has an entity without string \"text\" and "
                  "\"type\"";
        return v;
      }
      out["entities"].push_back({{"text", e["text"]}, {"type", e["type"]}});
    }
  } else {
    v.error = "unknown task type \"" + type + "\"";
    return v;
  }
  v.ok = true;
  v.result = out.dump(-1, ' ', false, json::error_handler_t::replace);
  return v;
}

uint64_t provider::estimate_prompt_tokens(const llm_request& req) const {
  return bgagent::estimate_prompt_tokens(req.type, req.input);
}

} // namespace bgagent
