#include "providers/openrouter_models.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace bgagent {

namespace {

using json = nlohmann::json;

constexpr double max_per_million = 100000;
constexpr size_t max_body = 32u << 20;

// USD per token as OpenRouter writes it ("0.0000003"), per million; < 0
// when it is not a usable price.
double per_million(const json& v) {
  double x = -1;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    char* end = nullptr;
    x = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0')
      return -1;
  } else if (v.is_number()) {
    x = v.get<double>();
  } else {
    return -1;
  }
  x *= 1e6;
  if (!std::isfinite(x) || x < 0 || x > max_per_million)
    return -1;
  return x;
}

} // namespace

std::map<std::string, model_price>
parse_openrouter_models(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data") ||
      !j["data"].is_array())
    throw std::invalid_argument("not a model list (expected a JSON object "
                                "with a \"data\" array)");
  std::map<std::string, model_price> out;
  for (auto& m : j["data"]) {
    if (!m.is_object() || !m.contains("id") || !m["id"].is_string() ||
        !m.contains("pricing") || !m["pricing"].is_object())
      continue;
    auto& p = m["pricing"];
    double prompt = p.contains("prompt") ? per_million(p["prompt"]) : -1;
    double completion =
      p.contains("completion") ? per_million(p["completion"]) : -1;
    auto id = m["id"].get<std::string>();
    if (prompt < 0 || completion < 0 || id.empty() || id.size() > 200)
      continue;
    model_price price{prompt, completion};
    // Cache reads and reasoning where the list prices them apart.
    if (p.contains("input_cache_read"))
      price.cached_prompt_per_million = per_million(p["input_cache_read"]);
    if (p.contains("internal_reasoning"))
      price.reasoning_per_million = per_million(p["internal_reasoning"]);
    out[id] = price;
  }
  return out;
}

std::string openrouter_models_url(const std::string& base_url) {
  auto base = base_url;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  return base + "/models";
}

std::string fetch_openrouter_models(const std::string& url,
                                    const std::string& api_key,
                                    double timeout_seconds) {
  CURL* h = curl_easy_init();
  if (!h)
    throw std::runtime_error(url + ": cannot start an HTTP request");
  struct sink {
    std::string body;
    bool too_big = false;
  } got;
  curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + api_key;
  if (!api_key.empty())
    headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(timeout_seconds * 1000));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
  curl_easy_setopt(
    h, CURLOPT_WRITEFUNCTION,
    +[](char* p, size_t s, size_t n, void* user) -> size_t {
      auto* g = static_cast<sink*>(user);
      if (g->body.size() + s * n > max_body) {
        g->too_big = true;
        return 0; // aborts the transfer
      }
      g->body.append(p, s * n);
      return s * n;
    });
  auto rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  if (got.too_big)
    throw std::runtime_error(url + ": the answer is larger than 32 MB");
  if (rc != CURLE_OK)
    throw std::runtime_error(url + ": " + curl_easy_strerror(rc));
  if (status < 200 || status >= 300)
    throw std::runtime_error(url + ": HTTP " + std::to_string(status));
  return got.body;
}

std::string price_map_to_json(const std::map<std::string, model_price>& m) {
  json j = json::object();
  for (auto& [model, p] : m)
    j[model] = {p.prompt_per_million, p.completion_per_million};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::map<std::string, model_price> price_map_from_json(const std::string& text) {
  std::map<std::string, model_price> out;
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return out;
  for (auto& [model, v] : j.items())
    if (v.is_array() && v.size() == 2 && v[0].is_number() &&
        v[1].is_number() && v[0].get<double>() >= 0 &&
        v[1].get<double>() >= 0)
      out[model] = model_price{v[0].get<double>(), v[1].get<double>()};
  return out;
}

} // namespace bgagent
