// Configuration: defaults, overridden by `.env` in the working directory,
// overridden by the environment, overridden by command-line flags.
//
// Contract: every value is validated when loaded; a bad one throws
// usage_error naming the variable and where it came from, e.g.
//   BG_AGENT_MAX_RETRIES=abc (environment): not a whole number
// Secrets (API keys, the cluster secret) are held here and never printed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "providers/provider.hpp"

namespace bgagent {

struct config {
  // The provider was named by --provider (so mixing its results with
  // another provider's in one database is intended).
  bool provider_explicit = false;
  // Where things are.
  std::string db_path = "bgagent.db";
  std::string audit_path = "bgagent-audit.jsonl";
  std::string alerts_path = "bgagent-alerts.jsonl";
  // BG_AGENT_SYNC: SQLite synchronous=FULL (a commit survives power loss)
  // or NORMAL (survives a crash of the process only).
  bool db_sync_full = true;
  // BG_AGENT_TYPES / --types: the user's task types (empty: none given;
  // ./bgagent-types.yaml is then used when it exists).
  std::string types_file;
  // The provider.
  provider_settings provider;
  // The run.
  uint32_t workers = 4;
  // Files a new store is split over (BG_AGENT_SHARDS, 1-64); 0: unset (a
  // new store has one, an existing one what it says).
  uint32_t shards = 0;
  uint32_t max_retries = 3;
  double timeout_seconds = 300;
  double poll_interval_seconds = 10;
  // Fits the README's examples (1,000 tasks need about 190,000 tokens at
  // worst); the cost budget is what guards a paid provider.
  uint64_t token_budget = 1000000;
  // BG_AGENT_RPM / BG_AGENT_TPM: requests and tokens per minute for each
  // provider and model, held at the head for every node (0: no limit).
  uint32_t rpm = 0;
  uint64_t tpm = 0;
  double rate_window_seconds = 60; // BG_AGENT_RATE_WINDOW
  // A provider model found down (circuit open): one probe call every
  // BG_AGENT_PROBE_SECONDS; the run stops (exit 7) once it has been down
  // for BG_AGENT_OUTAGE_MAX.
  double probe_seconds = 30;
  double outage_max_seconds = 600;
  double cost_budget = 1.00;
  double retry_initial_seconds = 1;
  double retry_cap_seconds = 60;
  uint32_t max_restarts = 10;
  double restart_window_seconds = 60;
  double deadman_seconds = 120;
  double heartbeat_seconds = 5;
  uint32_t escalate_after = 5;
  uint64_t max_input_bytes = 1 << 20;
  std::string webhook_url;
  std::string secret;
  std::string secret_file;
  // Remote nodes (DESIGN.md section 7).
  std::string tls_cert;          // BG_AGENT_TLS_CERT: PEM certificate
  std::string tls_key;           // BG_AGENT_TLS_KEY: its private key
  std::string tls_ca;            // BG_AGENT_TLS_CA: CA file to verify peers
  double rejoin_seconds = 0;     // BG_AGENT_REJOIN_TIMEOUT: worker nodes
                                 // retry joining a lost head this long
  // caf::openssl authenticates both ends: every node with TLS has a
  // certificate and key; BG_AGENT_TLS_CA then verifies the peer's.
  bool tls() const { return !tls_cert.empty(); }
  std::string log_level = "info";
  // `serve`'s HTTP API (DESIGN.md section 11): BG_AGENT_API_TOKEN (empty:
  // a random one kept in <db>.api-token) and the largest request body
  // taken, BG_AGENT_HTTP_MAX_BODY (bytes).
  std::string api_token;
  uint64_t http_max_body = 32ull << 20;
  // BG_AGENT_BUDGET_PERIOD: run, hour, day or month (UTC); empty: the
  // command's default (run for `run`, day for `serve`).
  std::string budget_period;
  // Batch mode (DESIGN.md section 13): BG_AGENT_MODE live | batch (the
  // --mode flag), the provider's limits per batch, how often a batch is
  // looked at, the batch price as a share of the live one where the price
  // list has none, and where failed tasks are retried (batch | live).
  std::string mode = "live";
  uint64_t batch_max_requests = 50000;
  uint64_t batch_max_bytes = 200ull << 20;
  double batch_poll_seconds = 60;
  double batch_discount = 0.5;
  std::string batch_retry = "batch";
};

// The raw sources, for tests: name -> (value, where it came from).
struct config_sources {
  std::map<std::string, std::pair<std::string, std::string>> values;
  void set(const std::string& name, const std::string& value,
           const std::string& origin) {
    values[name] = {value, origin};
  }
  // BG_AGENT_* / LLM_* names bgagent does not know (typos), each "where:
  // NAME is not a bgagent variable; ... (did you mean ...?)".
  std::vector<std::string> warnings;
};

// Every environment variable bgagent reads.
const std::vector<std::string>& known_variable_names();

// Reads `.env` from `dotenv_path` (if it exists; app/dotenv.hpp) and then
// the process environment, for the variable names bgagent knows; unknown
// names of its families go to `warnings`.
config_sources gather_sources(const std::string& dotenv_path = ".env");

// Builds the configuration from the sources (flags are applied afterwards by
// the CLI, through the same validating setters).
config load_config(const config_sources& src);

// Validating parsers shared by env loading and flag handling. `what` names
// the variable or flag in the error.
uint64_t parse_count(const std::string& what, const std::string& value,
                     uint64_t min, uint64_t max);
double parse_seconds(const std::string& what, const std::string& value);
double parse_money(const std::string& what, const std::string& value);

// The provider name when none was configured: openrouter with an
// OpenRouter key, else offline.
std::string default_provider(const config_sources& src);

} // namespace bgagent
