#include "providers/http_outcome.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "providers/task_types.hpp"

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

// Printable, single-line, at most `max` bytes.
std::string clip(const std::string& s, size_t max = 300) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  auto b = out.find_first_not_of(' ');
  if (b == std::string::npos)
    return {};
  return out.substr(b, out.find_last_not_of(' ') - b + 1);
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

// Reads usage.* into `out`; true when both token counts are there.
void read_usage(const json& j, const outcome_context& c, call_outcome& out) {
  if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object())
    return;
  auto& u = j["usage"];
  auto count = [&](const char* k, uint64_t& dst) {
    if (u.contains(k) && u[k].is_number() && u[k].get<double>() >= 0) {
      dst = static_cast<uint64_t>(u[k].get<double>());
      return true;
    }
    return false;
  };
  bool p = count("prompt_tokens", out.prompt_tokens);
  bool k = count("completion_tokens", out.completion_tokens);
  if (!(p && k)) {
    out.prompt_tokens = out.completion_tokens = 0;
    return;
  }
  out.usage_reported = true;
  if (u.contains("cost") && u["cost"].is_number() &&
      u["cost"].get<double>() >= 0) {
    out.cost_usd = u["cost"].get<double>();
    out.cost_reported = true;
  } else {
    out.cost_usd = c.price.cost(out.prompt_tokens, out.completion_tokens);
  }
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
    out.error = redact(text, c.secret);
    out.result.clear();
    return out;
  };
  if (!r.complete) {
    if (r.cancelled)
      return fail(error_kind::retryable, c.provider + ": call cancelled");
    std::string what = r.timed_out ? "timed out" : "request failed";
    std::string text = c.provider + " " + what + ": " + r.error;
    if (r.status > 0)
      text += " (after HTTP " + std::to_string(r.status) + ", body " +
              std::to_string(r.body.size()) + " bytes)";
    if (r.timed_out && c.timeout_seconds > 0) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " [BG_AGENT_TIMEOUT %g s]",
                    c.timeout_seconds);
      text += buf;
    }
    return fail(error_kind::retryable, text);
  }
  auto kind = classify_status(r.status);
  if (kind != error_kind::none) {
    if (r.status == 429 || r.status == 503)
      out.retry_after_ms = retry_after_ms(r.headers, std::time(nullptr));
    return fail(kind, status_text(c, r.status) + ": " +
                        provider_message(r.body));
  }
  // 2xx: the provider may have billed it, whatever it says.
  if (r.body.find_first_not_of(" \t\r\n") == std::string::npos)
    return fail(error_kind::retryable,
                status_text(c, r.status) + ": empty response body");
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(error_kind::retryable,
                status_text(c, r.status) + ": malformed JSON in the response: " +
                  clip(r.body, 120));
  read_usage(j, c, out);
  if (j.contains("error") && !j.contains("choices")) {
    // OpenRouter reports some upstream failures inside a 200.
    int code = 0;
    auto& e = j["error"];
    if (e.is_object() && e.contains("code") && e["code"].is_number_integer())
      code = e["code"].get<int>();
    auto k = code >= 400 && code < 600 ? classify_status(code)
                                       : error_kind::retryable;
    return fail(k, status_text(c, r.status) + " reporting an error" +
                     (code ? " " + std::to_string(code) : std::string()) +
                     ": " + provider_message(r.body));
  }
  bool found = false;
  auto content = content_of(j, found);
  if (!found)
    return fail(error_kind::retryable,
                status_text(c, r.status) +
                  ": no choices[0].message.content in the response");
  auto v = validate_result(c.task_type, content);
  if (!v.ok)
    return fail(is_known_task_type(c.task_type) ? error_kind::retryable
                                                : error_kind::permanent,
                c.provider + ": invalid model output: " + v.error + ": " +
                  clip(content, 120));
  out.ok = true;
  out.kind = static_cast<uint8_t>(error_kind::none);
  out.result = redact(v.result, c.secret);
  return out;
}

} // namespace bgagent
