#include "app/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "app/dotenv.hpp"
#include "app/errors.hpp"
#include "app/suggest.hpp"
#include "messages/trim.hpp"
#include "policy/budget_period.hpp"

namespace bgagent {

namespace {

const std::vector<std::string> known_names = {
  "OPENROUTER_API_KEY", "OPENAI_API_KEY", "LLM_PROVIDER", "LLM_BASE_URL",
  "MODEL", "BG_AGENT_MAX_RETRIES", "BG_AGENT_TIMEOUT",
  "BG_AGENT_CONNECT_TIMEOUT", "BG_AGENT_POLL_INTERVAL",
  "BG_AGENT_TOKEN_BUDGET", "BG_AGENT_COST_BUDGET", "BG_AGENT_WORKERS",
  "BG_AGENT_DB", "BG_AGENT_SECRET", "BG_AGENT_SECRET_FILE",
  "BG_AGENT_ALERT_WEBHOOK", "BG_AGENT_AUDIT_LOG", "BG_AGENT_ALERTS_LOG",
  "BG_AGENT_RETRY_INITIAL", "BG_AGENT_RETRY_MAX", "BG_AGENT_MAX_RESTARTS",
  "BG_AGENT_RESTART_WINDOW", "BG_AGENT_DEADMAN_SECONDS",
  "BG_AGENT_HEARTBEAT_SECONDS", "BG_AGENT_ESCALATE_AFTER",
  "BG_AGENT_MAX_INPUT_BYTES", "BG_AGENT_PRICE_PROMPT",
  "BG_AGENT_PRICE_COMPLETION", "BG_AGENT_PRICES", "BG_AGENT_RPM",
  "BG_AGENT_TPM", "BG_AGENT_RATE_WINDOW", "BG_AGENT_PROBE_SECONDS",
  "BG_AGENT_OUTAGE_MAX", "BG_AGENT_LOG_LEVEL",
  "BG_AGENT_TLS_CERT",
  "BG_AGENT_TLS_KEY", "BG_AGENT_TLS_CA", "BG_AGENT_REJOIN_TIMEOUT",
  "BG_AGENT_SYNC", "BG_AGENT_TYPES", "BG_AGENT_RESPONSE_FORMAT",
  "BG_AGENT_API_TOKEN", "BG_AGENT_HTTP_MAX_BODY", "BG_AGENT_BUDGET_PERIOD",
  "BG_AGENT_SHARDS",
  "BG_AGENT_MODE", "BG_AGENT_BATCH_MAX_REQUESTS", "BG_AGENT_BATCH_MAX_BYTES",
  "BG_AGENT_BATCH_POLL", "BG_AGENT_BATCH_DISCOUNT", "BG_AGENT_BATCH_RETRY"};

std::string label(const config_sources& src, const std::string& name) {
  auto& v = src.values.at(name);
  return name + "=" + v.first + " (" + v.second + ")";
}

const std::string* find(const config_sources& src, const std::string& name) {
  auto i = src.values.find(name);
  return i == src.values.end() ? nullptr : &i->second.first;
}

bool is_known(const std::string& name) {
  return std::find(known_names.begin(), known_names.end(), name) !=
         known_names.end();
}

// A name in bgagent's own families, where a typo is likely.
bool looks_like_ours(const std::string& name) {
  if (name.rfind("BG_AGENT_TEST_", 0) == 0) // the test suite's own hooks
    return false;
  return name.rfind("BG_AGENT_", 0) == 0 || name.rfind("LLM_", 0) == 0;
}

std::string unknown_name(const std::string& name) {
  auto best = closest_name(name, known_names);
  return name + " is not a bgagent variable; it is ignored" +
         (best.empty() ? std::string() : " (did you mean " + best + "?)");
}

} // namespace

uint64_t parse_count(const std::string& what, const std::string& value,
                     uint64_t min, uint64_t max) {
  auto v = trim(value);
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(what + ": not a whole number");
  errno = 0;
  auto n = std::strtoull(v.c_str(), nullptr, 10);
  if (errno == ERANGE || n < min || n > max)
    throw usage_error(what + ": must be between " + std::to_string(min) +
                      " and " + std::to_string(max));
  return n;
}

double parse_seconds(const std::string& what, const std::string& value) {
  auto v = trim(value);
  char* end = nullptr;
  errno = 0;
  double d = v.empty() ? NAN : std::strtod(v.c_str(), &end);
  if (v.empty() || errno == ERANGE || *end != '\0' || !std::isfinite(d))
    throw usage_error(what + ": not a number of seconds");
  if (d <= 0 || d > 86400 * 7)
    throw usage_error(what + ": must be more than 0 and at most 604800 s");
  return d;
}

double parse_money(const std::string& what, const std::string& value) {
  auto v = trim(value);
  if (!v.empty() && v[0] == '$')
    v.erase(0, 1);
  char* end = nullptr;
  errno = 0;
  double d = v.empty() ? NAN : std::strtod(v.c_str(), &end);
  if (v.empty() || errno == ERANGE || *end != '\0' || !std::isfinite(d))
    throw usage_error(what + ": not an amount of US dollars");
  if (d < 0)
    throw usage_error(what + ": must not be negative");
  return d;
}

const std::vector<std::string>& known_variable_names() {
  return known_names;
}

config_sources gather_sources(const std::string& dotenv_path) {
  config_sources src;
  std::ifstream in(dotenv_path, std::ios::binary);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    for (auto& e : parse_dotenv(text.str(), dotenv_path)) {
      if (is_known(e.name))
        src.set(e.name, e.value, dotenv_path + " line " +
                                   std::to_string(e.line));
      else if (looks_like_ours(e.name))
        src.warnings.push_back(dotenv_path + " line " +
                               std::to_string(e.line) + ": " +
                               unknown_name(e.name));
    }
  }
  for (auto& name : known_names)
    if (const char* v = std::getenv(name.c_str()))
      src.set(name, v, "environment");
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    auto name = entry.substr(0, entry.find('='));
    if (looks_like_ours(name) && !is_known(name))
      src.warnings.push_back("environment: " + unknown_name(name));
  }
  return src;
}

std::string default_provider(const config_sources& src) {
  if (auto* p = find(src, "LLM_PROVIDER"); p && !p->empty())
    return *p;
  if (auto* k = find(src, "OPENROUTER_API_KEY"); k && !k->empty())
    return "openrouter";
  if (auto* u = find(src, "LLM_BASE_URL"); u && !u->empty())
    return "openai";
  return "offline";
}

config load_config(const config_sources& src) {
  config c;
  auto str = [&](const char* name, std::string& out) {
    if (auto* v = find(src, name))
      out = *v;
  };
  auto count = [&](const char* name, auto& out, uint64_t min, uint64_t max) {
    if (auto* v = find(src, name))
      out = static_cast<std::remove_reference_t<decltype(out)>>(
        parse_count(label(src, name), *v, min, max));
  };
  auto secs = [&](const char* name, double& out) {
    if (auto* v = find(src, name))
      out = parse_seconds(label(src, name), *v);
  };
  auto money = [&](const char* name, double& out) {
    if (auto* v = find(src, name))
      out = parse_money(label(src, name), *v);
  };
  str("BG_AGENT_DB", c.db_path);
  str("BG_AGENT_TYPES", c.types_file);
  str("BG_AGENT_AUDIT_LOG", c.audit_path);
  str("BG_AGENT_ALERTS_LOG", c.alerts_path);
  if (auto* v = find(src, "BG_AGENT_SYNC"); v && !v->empty()) {
    if (*v != "full" && *v != "normal")
      throw usage_error(label(src, "BG_AGENT_SYNC") +
                        ": not one of full, normal");
    c.db_sync_full = *v == "full";
  }
  // 0 local workers is valid for a head that only serves remote nodes.
  count("BG_AGENT_WORKERS", c.workers, 0, 10000);
  count("BG_AGENT_SHARDS", c.shards, 1, 64);
  count("BG_AGENT_MAX_RETRIES", c.max_retries, 0, 100);
  secs("BG_AGENT_TIMEOUT", c.timeout_seconds);
  secs("BG_AGENT_POLL_INTERVAL", c.poll_interval_seconds);
  count("BG_AGENT_TOKEN_BUDGET", c.token_budget, 0, 1000000000000ULL);
  money("BG_AGENT_COST_BUDGET", c.cost_budget);
  count("BG_AGENT_RPM", c.rpm, 0, 10000000);
  count("BG_AGENT_TPM", c.tpm, 0, 1000000000000ULL);
  secs("BG_AGENT_RATE_WINDOW", c.rate_window_seconds);
  // Longer than a minute would let a minute's calls all go in one.
  if (c.rate_window_seconds < 1 || c.rate_window_seconds > 60)
    throw usage_error(label(src, "BG_AGENT_RATE_WINDOW") +
                      ": must be between 1 and 60 seconds");
  secs("BG_AGENT_PROBE_SECONDS", c.probe_seconds);
  secs("BG_AGENT_OUTAGE_MAX", c.outage_max_seconds);
  secs("BG_AGENT_RETRY_INITIAL", c.retry_initial_seconds);
  secs("BG_AGENT_RETRY_MAX", c.retry_cap_seconds);
  count("BG_AGENT_MAX_RESTARTS", c.max_restarts, 0, 1000000);
  secs("BG_AGENT_RESTART_WINDOW", c.restart_window_seconds);
  secs("BG_AGENT_DEADMAN_SECONDS", c.deadman_seconds);
  secs("BG_AGENT_HEARTBEAT_SECONDS", c.heartbeat_seconds);
  count("BG_AGENT_ESCALATE_AFTER", c.escalate_after, 1, 1000000);
  count("BG_AGENT_MAX_INPUT_BYTES", c.max_input_bytes, 1, 1ULL << 30);
  str("BG_AGENT_ALERT_WEBHOOK", c.webhook_url);
  if (!c.webhook_url.empty() && c.webhook_url.rfind("http://", 0) != 0 &&
      c.webhook_url.rfind("https://", 0) != 0)
    throw usage_error(label(src, "BG_AGENT_ALERT_WEBHOOK") +
                      ": not an http:// or https:// URL");
  str("BG_AGENT_SECRET", c.secret);
  str("BG_AGENT_API_TOKEN", c.api_token);
  // A bearer token short enough to guess is no lock.
  if (!c.api_token.empty() &&
      (c.api_token.size() < 16 || c.api_token.size() > 512 ||
       c.api_token.find_first_of(" \t\r\n") != std::string::npos))
    throw usage_error(label(src, "BG_AGENT_API_TOKEN") +
                      ": must be 16 to 512 characters without spaces");
  count("BG_AGENT_HTTP_MAX_BODY", c.http_max_body, 1024, 1ULL << 30);
  str("BG_AGENT_BUDGET_PERIOD", c.budget_period);
  if (!c.budget_period.empty() && !parse_budget_period(c.budget_period))
    throw usage_error(label(src, "BG_AGENT_BUDGET_PERIOD") +
                      ": not one of run, hour, day, month");
  str("BG_AGENT_MODE", c.mode);
  if (c.mode != "live" && c.mode != "batch")
    throw usage_error(label(src, "BG_AGENT_MODE") +
                      ": not one of live, batch");
  count("BG_AGENT_BATCH_MAX_REQUESTS", c.batch_max_requests, 1, 50000);
  count("BG_AGENT_BATCH_MAX_BYTES", c.batch_max_bytes, 1024,
        200ull << 20);
  secs("BG_AGENT_BATCH_POLL", c.batch_poll_seconds);
  if (auto* v = find(src, "BG_AGENT_BATCH_DISCOUNT")) {
    c.batch_discount = parse_money(label(src, "BG_AGENT_BATCH_DISCOUNT"), *v);
    if (c.batch_discount > 1)
      throw usage_error(label(src, "BG_AGENT_BATCH_DISCOUNT") +
                        ": a share of the live price, between 0 and 1");
  }
  str("BG_AGENT_BATCH_RETRY", c.batch_retry);
  if (c.batch_retry != "batch" && c.batch_retry != "live")
    throw usage_error(label(src, "BG_AGENT_BATCH_RETRY") +
                      ": not one of batch, live");
  str("BG_AGENT_SECRET_FILE", c.secret_file);
  str("BG_AGENT_TLS_CERT", c.tls_cert);
  str("BG_AGENT_TLS_KEY", c.tls_key);
  str("BG_AGENT_TLS_CA", c.tls_ca);
  if (c.tls_cert.empty() != c.tls_key.empty())
    throw usage_error(c.tls_cert.empty()
                        ? label(src, "BG_AGENT_TLS_KEY") +
                            ": needs BG_AGENT_TLS_CERT as well"
                        : label(src, "BG_AGENT_TLS_CERT") +
                            ": needs BG_AGENT_TLS_KEY as well");
  if (!c.tls_ca.empty() && c.tls_cert.empty())
    throw usage_error(label(src, "BG_AGENT_TLS_CA") +
                      ": needs BG_AGENT_TLS_CERT and BG_AGENT_TLS_KEY as well "
                      "(with TLS every node has a certificate)");
  for (auto* name : {"BG_AGENT_TLS_CERT", "BG_AGENT_TLS_KEY", "BG_AGENT_TLS_CA"})
    if (auto* v = find(src, name); v && !v->empty() && !std::ifstream(*v))
      throw usage_error(label(src, name) + ": cannot read the file");
  if (auto* v = find(src, "BG_AGENT_REJOIN_TIMEOUT"); v && *v != "0")
    c.rejoin_seconds = parse_seconds(label(src, "BG_AGENT_REJOIN_TIMEOUT"), *v);
  str("BG_AGENT_LOG_LEVEL", c.log_level);
  if (c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error")
    throw usage_error(label(src, "BG_AGENT_LOG_LEVEL") +
                      ": not one of debug, info, warn, error");

  auto& p = c.provider;
  p.name = default_provider(src);
  if (p.name == "openrouter") {
    p.base_url = "https://openrouter.ai/api/v1";
    str("OPENROUTER_API_KEY", p.api_key);
    p.model = "google/gemini-2.5-flash";
  } else if (p.name == "openai") {
    p.base_url = "https://api.openai.com/v1";
    str("OPENAI_API_KEY", p.api_key);
    p.model = "gpt-4o-mini";
  } else {
    p.model = p.name;
  }
  str("MODEL", p.model);
  str("LLM_BASE_URL", p.base_url);
  while (!p.base_url.empty() && p.base_url.back() == '/')
    p.base_url.pop_back();
  if (!p.base_url.empty() && p.base_url.rfind("http://", 0) != 0 &&
      p.base_url.rfind("https://", 0) != 0)
    throw usage_error(label(src, "LLM_BASE_URL") +
                      ": not an http:// or https:// URL");
  p.timeout_seconds = c.timeout_seconds;
  secs("BG_AGENT_CONNECT_TIMEOUT", p.connect_timeout_seconds);
  money("BG_AGENT_PRICE_PROMPT", p.price_prompt_per_million);
  money("BG_AGENT_PRICE_COMPLETION", p.price_completion_per_million);
  auto prices = std::make_shared<price_list>();
  prices->set_environment(p.price_prompt_per_million,
                          p.price_completion_per_million, p.model);
  if (auto* v = find(src, "BG_AGENT_PRICES"); v && !v->empty()) {
    // Not opened here: opening a FIFO would wait for a writer.
    std::error_code ec;
    if (!std::filesystem::exists(*v, ec))
      throw usage_error(label(src, "BG_AGENT_PRICES") +
                        ": cannot read the file");
    try {
      prices->load_file(*v);
    } catch (const std::invalid_argument& e) {
      throw usage_error(e.what());
    }
  }
  p.prices = prices;
  if (auto* v = find(src, "BG_AGENT_RESPONSE_FORMAT"); v && !v->empty()) {
    if (*v != "json_schema" && *v != "off")
      throw usage_error(label(src, "BG_AGENT_RESPONSE_FORMAT") +
                        ": not one of json_schema, off");
    p.response_format = *v == "json_schema";
  }
  return c;
}

} // namespace bgagent
