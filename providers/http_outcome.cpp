#include "providers/http_outcome.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "messages/utf8.hpp"
#include "messages/task.hpp"
#include "providers/result_validation.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

constexpr int64_t max_retry_after_ms = 24LL * 3600 * 1000;

const char* reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

// Printable, single-line, valid UTF-8 (ill-formed bytes become U+FFFD), at
// most `max` characters ("..." included when cut), never cut inside a
// character.
std::string clip(const std::string& s, size_t max = 300) {
  auto out = sanitize_utf8(s);
  for (auto& ch : out) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      ch = ' ';
  }
  auto b = out.find_first_not_of(' ');
  if (b == std::string::npos)
    return {};
  out = out.substr(b, out.find_last_not_of(' ') - b + 1);
  return utf8_clip(out, max, "...");
}

std::string status_text(const outcome_context& c, int status) {
  std::string s = c.provider + " HTTP " + std::to_string(status);
  if (*reason_phrase(status))
    s += std::string(" ") + reason_phrase(status);
  return s;
}

bool parse_double(const std::string& v, double& out) {
  char* end = nullptr;
  auto t = v;
  while (!t.empty() && t.back() == ' ')
    t.pop_back();
  if (t.empty())
    return false;
  out = std::strtod(t.c_str(), &end);
  return end && *end == '\0' && std::isfinite(out);
}

int64_t clamp_ms(double ms) {
  if (ms < 0)
    return 0;
  return static_cast<int64_t>(
    std::min<double>(std::ceil(ms), static_cast<double>(max_retry_after_ms)));
}

// Beyond these a provider's usage for one call is a lie, not a bill.
constexpr uint64_t max_tokens_per_call = 10000000;
constexpr double max_cost_per_call = 1000.0;

enum class field { absent, ok, invalid };

// A reported value as the error text shows it: its JSON, short.
std::string shown(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    return std::isnan(v.get<double>()) ? "NaN"
                                       : (v.get<double>() < 0 ? "-inf" : "inf");
  return clip(v.dump(-1, ' ', false, json::error_handler_t::replace), 60);
}

// usage.<k> as a token count: absent (missing or null), ok (a whole number
// in 0..max_tokens_per_call, in `dst`) or invalid (`why` says so). Never
// casts a double that does not fit.
field token_count(const json& u, const char* k, uint64_t& dst,
                  std::string& why) {
  if (!u.contains(k) || u[k].is_null())
    return field::absent;
  auto& v = u[k];
  auto bad = [&](const char* what) {
    why = std::string("usage.") + k + " = " + shown(v) + " " + what;
    return field::invalid;
  };
  const char* not_count = "is not a valid token count";
  const char* absurd = "is not a valid token count (over 10000000 for one "
                       "call)";
  if (v.is_number_unsigned()) {
    auto n = v.get<uint64_t>();
    if (n > max_tokens_per_call)
      return bad(absurd);
    dst = n;
    return field::ok;
  }
  if (v.is_number_integer()) { // signed: nlohmann keeps n >= 0 unsigned
    auto n = v.get<int64_t>();
    if (n < 0)
      return bad(not_count);
    if (static_cast<uint64_t>(n) > max_tokens_per_call)
      return bad(absurd);
    dst = static_cast<uint64_t>(n);
    return field::ok;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d))
      return bad(not_count);
    if (d > static_cast<double>(max_tokens_per_call))
      return bad(absurd);
    dst = static_cast<uint64_t>(d); // whole and within 0..1e7: exact
    return field::ok;
  }
  return bad(not_count); // a string, bool, object or array
}

// usage.cost: absent (missing or null), ok (a number in 0..$1,000, in
// `dst`) or invalid.
field cost_field(const json& u, double& dst, std::string& why) {
  if (!u.contains("cost") || u["cost"].is_null())
    return field::absent;
  auto& v = u["cost"];
  auto bad = [&](const char* what) {
    why = "usage.cost = " + shown(v) + " " + what;
    return field::invalid;
  };
  if (!v.is_number())
    return bad("is not a valid cost");
  double d = v.get<double>();
  if (!std::isfinite(d) || d < 0)
    return bad("is not a valid cost");
  if (d > max_cost_per_call)
    return bad("is not a valid cost (over $1000 for one call)");
  dst = d;
  return field::ok;
}

// usage.<parent>.<k> (prompt_tokens_details.cached_tokens,
// completion_tokens_details.reasoning_tokens): absent, ok (at most
// `total`) or invalid.
field detail_count(const json& u, const char* parent, const char* k,
                   uint64_t total, uint64_t& dst, std::string& why) {
  if (!u.contains(parent) || u[parent].is_null())
    return field::absent;
  auto name = std::string("usage.") + parent + "." + k;
  if (!u[parent].is_object()) {
    why = std::string("usage.") + parent + " = " + shown(u[parent]) +
          " is not an object";
    return field::invalid;
  }
  auto f = token_count(u[parent], k, dst, why);
  if (f == field::invalid) {
    why = name + why.substr(why.find(' '));
    return f;
  }
  if (f == field::ok && dst > total) {
    why = name + " = " + std::to_string(dst) + " is more than its total (" +
          std::to_string(total) + ")";
    return field::invalid;
  }
  return f;
}

// Reads usage.* into `out`: usage_reported when both token counts are
// there and valid, cost_reported when usage.cost is too; without usage.cost
// the price table prices the tokens. Returns "" or, when any reported
// figure is impossible, why (then `out` reports nothing).
std::string read_usage(const json& j, const outcome_context& c,
                       call_outcome& out) {
  if (!j.is_object() || !j.contains("usage") || j["usage"].is_null())
    return {};
  auto& u = j["usage"];
  if (!u.is_object())
    return "usage = " + shown(u) + " is not an object";
  std::string why;
  uint64_t prompt = 0, completion = 0;
  double cost = 0;
  auto p = token_count(u, "prompt_tokens", prompt, why);
  if (p == field::invalid)
    return why;
  auto k = token_count(u, "completion_tokens", completion, why);
  if (k == field::invalid)
    return why;
  auto cf = cost_field(u, cost, why);
  if (cf == field::invalid)
    return why;
  if (p != field::ok || k != field::ok)
    return {}; // incomplete: the worker charges the reservation
  uint64_t cached = 0, reasoning = 0;
  if (detail_count(u, "prompt_tokens_details", "cached_tokens", prompt,
                   cached, why) == field::invalid ||
      detail_count(u, "completion_tokens_details", "reasoning_tokens",
                   completion, reasoning, why) == field::invalid)
    return why;
  out.usage_reported = true;
  out.prompt_tokens = prompt;
  out.completion_tokens = completion;
  out.cached_tokens = cached;
  out.reasoning_tokens = reasoning;
  if (cf == field::ok) {
    out.cost_usd = cost;
    out.cost_reported = true;
  } else {
    auto price = c.price;
    bool known = c.routes.empty() || !j.contains("model") ||
                 !j["model"].is_string() || j["model"] == c.model;
    for (auto& [model, routed] : c.routes)
      if (model == out.model) {
        price = routed;
        known = true;
      }
    out.cost_usd = price.cost(prompt, completion, cached, reasoning);
    // OpenRouter answered with a model it was not given by that name: the
    // dearest of those it was given.
    if (!known)
      for (auto& route : c.routes)
        out.cost_usd = std::max(
          out.cost_usd, route.second.cost(prompt, completion, cached,
                                          reasoning));
  }
  return {};
}

// choices[0].message.refusal when the message has no content.
std::string refusal_of(const json& j) {
  if (!j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object())
    return {};
  auto& ch = j["choices"][0];
  if (!ch.contains("message") || !ch["message"].is_object())
    return {};
  auto& msg = ch["message"];
  bool no_content = !msg.contains("content") || msg["content"].is_null();
  if (no_content && msg.contains("refusal") && msg["refusal"].is_string())
    return msg["refusal"].get<std::string>();
  return {};
}

std::string content_of(const json& j, bool& found) {
  found = false;
  if (!j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty())
    return {};
  auto& ch = j["choices"][0];
  if (!ch.is_object() || !ch.contains("message") ||
      !ch["message"].is_object())
    return {};
  auto& msg = ch["message"];
  if (!msg.contains("content"))
    return {};
  auto& content = msg["content"];
  if (content.is_string()) {
    found = true;
    return content.get<std::string>();
  }
  if (content.is_array()) { // content parts
    std::string text;
    for (auto& part : content)
      if (part.is_object() && part.contains("text") && part["text"].is_string())
        text += part["text"].get<std::string>();
    found = !text.empty();
    return text;
  }
  return {};
}

} // namespace

std::string redact(std::string text, const std::string& secret) {
  if (secret.size() < 4)
    return text; // too short to be a key; replacing would garble the text
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at))
    text.replace(at, secret.size(), "[redacted]");
  return text;
}

bool is_quota_exhausted(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object())
    return false;
  auto& e = j["error"];
  for (auto* field : {"code", "type"})
    if (e.contains(field) && e[field].is_string() &&
        e[field].get<std::string>() == "insufficient_quota")
      return true;
  return false;
}

bool is_model_refusal(int status, const std::string& body) {
  if (status != 400 && status != 403 && status != 413 && status != 422)
    return false;
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("error"))
    return false;
  auto& e = j["error"];
  std::string words;
  if (e.is_string())
    words = e.get<std::string>();
  if (e.is_object()) {
    for (auto* field : {"code", "type"})
      if (e.contains(field) && e[field].is_string()) {
        auto v = e[field].get<std::string>();
        if (v == "context_length_exceeded" ||
            v == "content_policy_violation" || v == "content_filter" ||
            v == "string_above_max_length")
          return true;
      }
    if (e.contains("message") && e["message"].is_string())
      words = e["message"].get<std::string>();
  }
  std::transform(words.begin(), words.end(), words.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (auto* phrase : {"maximum context length", "context length",
                       "context window", "content policy",
                       "content management policy", "flagged by moderation",
                       "requires moderation"})
    if (words.find(phrase) != std::string::npos)
      return true;
  return false;
}

error_kind classify_status(int status) {
  if (status >= 200 && status < 300)
    return error_kind::none;
  if (status == 402)
    return error_kind::out_of_credits;
  if (status == 408 || status == 409 || status == 429 || status >= 500)
    return error_kind::retryable;
  if (status >= 400 && status < 500)
    return error_kind::permanent; // 400 401 403 404 422 and the rest
  return error_kind::retryable;   // 1xx/3xx: a confused server or proxy
}

int64_t retry_after_ms(const std::map<std::string, std::string>& headers,
                       std::time_t now) {
  if (auto i = headers.find("retry-after-ms"); i != headers.end()) {
    double ms;
    if (parse_double(i->second, ms))
      return clamp_ms(ms);
  }
  auto i = headers.find("retry-after");
  if (i == headers.end())
    return -1;
  double secs;
  if (parse_double(i->second, secs))
    return clamp_ms(secs * 1000);
  // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const char* end = strptime(i->second.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end)
    return -1;
  std::time_t at = timegm(&tm);
  return clamp_ms(std::difftime(at, now) * 1000);
}

std::string provider_message(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("error")) {
      auto& e = j["error"];
      if (e.is_string())
        return clip(e.get<std::string>());
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        auto m = e["message"].get<std::string>();
        // OpenRouter puts the upstream provider's words in metadata.raw.
        if (e.contains("metadata") && e["metadata"].is_object() &&
            e["metadata"].contains("raw") && e["metadata"]["raw"].is_string())
          m += " (" + e["metadata"]["raw"].get<std::string>() + ")";
        return clip(m);
      }
    }
    for (auto* k : {"detail", "message"})
      if (j.contains(k) && j[k].is_string())
        return clip(j[k].get<std::string>());
  }
  auto text = clip(body);
  return text.empty() ? "(empty body)" : text;
}

call_outcome interpret_response(const http_response& r,
                                const outcome_context& c) {
  call_outcome out;
  out.provider = c.provider;
  out.model = c.model;
  out.http_status = r.status;
  auto fail = [&](error_kind k, const std::string& text) {
    out.ok = false;
    out.kind = static_cast<uint8_t>(k);
    // Every part was clipped already; this keeps the whole valid UTF-8.
    out.error = sanitize_utf8(redact(text, c.secret));
    out.result.clear();
    return out;
  };
  if (!r.complete) {
    if (r.cancelled)
      return fail(error_kind::retryable, c.provider + ": call cancelled");
    std::string what = r.timed_out ? "timed out" : "request failed";
    std::string text = c.provider + " " + what + ": " + clip(r.error);
    if (r.status > 0)
      text += " (after HTTP " + std::to_string(r.status) + ", body " +
              std::to_string(r.body.size()) + " bytes)";
    // No connection, or it dropped (also where libcurl's resend was
    // refused: a server that drops requests is what an outage looks like):
    // the provider looks down. A timeout may be one slow request: it says
    // nothing of the others.
    out.provider_down = !r.timed_out;
    out.sent_unanswered = r.request_sent;
    if (r.timed_out && c.timeout_seconds > 0) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " [BG_AGENT_TIMEOUT %g s]",
                    c.timeout_seconds);
      text += buf;
    }
    return fail(error_kind::retryable, text);
  }
  // The key goes before anything is cut, so no part of it survives a cut.
  const auto body = redact(r.body, c.secret);
  auto kind = classify_status(r.status);
  // OpenAI answers an account out of credits with 429 insufficient_quota:
  // no wait makes it pass, so it stops the run like a 402.
  if (r.status == 429 && is_quota_exhausted(body))
    kind = error_kind::out_of_credits;
  if (kind != error_kind::none) {
    out.provider_down = r.status >= 500;
    out.model_refused = is_model_refusal(r.status, body);
    if (r.status == 429 || r.status == 503)
      out.retry_after_ms = retry_after_ms(r.headers, std::time(nullptr));
    return fail(kind, status_text(c, r.status) + ": " +
                        provider_message(body));
  }
  // 2xx: the provider may have billed it, whatever it says.
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    return fail(error_kind::retryable,
                status_text(c, r.status) + ": empty response body");
  json j;
  std::string why_malformed;
  try {
    j = json::parse(r.body);
  } catch (const json::exception& e) {
    // e.g. "number overflow parsing '1e400'": JSON has no NaN or infinity,
    // so an impossible number makes the whole answer malformed.
    why_malformed = e.what();
    if (auto p = why_malformed.find("] "); p != std::string::npos)
      why_malformed = why_malformed.substr(p + 2);
  }
  if (!why_malformed.empty() || !j.is_object())
    return fail(error_kind::retryable,
                status_text(c, r.status) + ": malformed JSON in the response" +
                  (why_malformed.empty() ? std::string()
                                         : " (" + clip(why_malformed, 80) +
                                             ")") +
                  ": " + clip(body, 120));
  // OpenRouter answered with one of the other models it was given.
  if (j.contains("model") && j["model"].is_string())
    for (auto& route : c.routes)
      if (route.first == j["model"].get_ref<const std::string&>())
        out.model = route.first;
  // Impossible usage is a lying provider, whatever else the answer says:
  // retryable, charged the reservation, flagged for the lying_usage alert.
  if (auto why = read_usage(j, c, out); !why.empty()) {
    out.usage_invalid = true;
    out.usage_reported = out.cost_reported = false;
    out.prompt_tokens = out.completion_tokens = 0;
    out.cost_usd = 0;
    return fail(error_kind::retryable, c.provider + " answer: " + why);
  }
  if (j.contains("error") && !j.contains("choices")) {
    // OpenRouter reports some upstream failures inside a 200.
    int code = 0;
    auto& e = j["error"];
    if (e.is_object() && e.contains("code") && e["code"].is_number_integer()) {
      auto n = e["code"].get<int64_t>();
      code = n >= 100 && n < 1000 ? static_cast<int>(n) : 0;
    }
    auto k = code >= 400 && code < 600 ? classify_status(code)
                                       : error_kind::retryable;
    out.provider_down = code >= 500;
    out.model_refused = is_model_refusal(code, body);
    return fail(k, status_text(c, r.status) + " reporting an error" +
                     (code ? " " + std::to_string(code) : std::string()) +
                     ": " + provider_message(body));
  }
  // A refusal (OpenAI's message.refusal) will not change on a retry.
  if (auto refusal = refusal_of(j); !refusal.empty()) {
    out.model_refused = true; // another model may not refuse it
    return fail(error_kind::permanent,
                c.provider + ": the model refused: " +
                  clip(redact(refusal, c.secret)));
  }
  bool found = false;
  auto content = content_of(j, found);
  if (!found)
    return fail(error_kind::retryable,
                status_text(c, r.status) +
                  ": no choices[0].message.content in the response");
  if (c.raw && c.schema.empty()) {
    // A chat request without a schema: any content is its answer.
    out.ok = true;
    out.kind = static_cast<uint8_t>(error_kind::none);
    out.result = sanitize_utf8(redact(
      json{{"role", "assistant"}, {"content", content}}.dump(
        -1, ' ', false, json::error_handler_t::replace),
      c.secret));
    out.response = sanitize_utf8(body);
    return out;
  }
  auto v = validate_result(c.schema, content);
  if (!v.ok) {
    fail(error_kind::retryable,
         c.provider + ": invalid model output: " + clip(v.error) + ": " +
           clip(redact(content, c.secret), 120));
    out.raw_answer = utf8_clip(sanitize_utf8(redact(content, c.secret)),
                               max_repair_answer_chars);
    out.answer_error =
      utf8_clip(sanitize_utf8(v.error), max_repair_error_chars);
    return out;
  }
  out.ok = true;
  out.kind = static_cast<uint8_t>(error_kind::none);
  out.result = redact(v.result, c.secret);
  if (c.raw)
    out.response = sanitize_utf8(body);
  return out;
}

} // namespace bgagent
