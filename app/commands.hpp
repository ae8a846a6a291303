// The commands behind the CLI, one function each. Each returns an exit code
// and throws usage_error for bad usage or input (see errors.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace bgagent {

class provider_registry;

struct run_options {
  std::string tasks_file; // empty: only what is already pending
  std::string on_conflict = "error"; // error | skip | replace
  bool follow = false;
  std::string listen;  // HOST:PORT for remote nodes (mutual TLS), empty: none
  // HOST:PORT on loopback for remote nodes without TLS, empty: none
  std::string insecure_listen;
  std::string metrics; // HOST:PORT for the Prometheus endpoint, empty: none
  bool dry_run = false; // estimate only (estimate_command), change nothing
  // `serve`: follow for ever, with the HTTP API on `http` (HOST:PORT).
  bool serve = false;
  std::string http;
  std::vector<std::string> schedules; // serve --schedule SPEC ...
  bool detach = false;   // --mode batch --detach: submit and exit 0
  bool no_cache = false; // --no-cache: no answer from the response cache
};

struct worker_options {
  std::string connect; // HOST:PORT of the head
  uint32_t workers = 4;
  std::string name;    // node name, default "<hostname>-<pid>"
  bool stay = false;   // wait for the head and join every run it starts
};

struct admin_options {
  std::string connect;
  std::string command; // status | pause | resume | drain | set-budget | ...
  bool json = false;
  std::string tokens;  // set-budget
  std::string cost;
  std::vector<std::string> ids;
  bool all_quarantined = false;
};

// `certs init DIR [--nodes NAME,...]` (app/certs_command.cpp).
struct certs_options {
  std::string dir;
  std::string nodes;        // comma-separated node names
  bool nodes_given = false; // false: the one node "head"
};

// `bgagent batches [--json]` (app/store_commands.cpp).
int batches_command(const config& c, bool json);

int run_command(const config& c, const run_options& o,
                const provider_registry& providers);
int worker_command(const config& c, const worker_options& o,
                   const provider_registry& providers);
int admin_command(const config& c, const admin_options& o);
int submit_command(const config& c, const std::string& file,
                   const std::string& on_conflict);
int status_command(const config& c, bool json);
// `estimate` and `run --dry-run`: per type and model, the tasks, the worst
// case the budget would reserve and an expected cost, and whether they fit
// the budgets; no call, no change (app/estimate_command.cpp).
int estimate_command(const config& c, const std::string& tasks_file,
                     bool json, const provider_registry& providers);
// Per tag: tasks per state, tokens and dollars (a task counts in each of
// its tags).
int status_by_tag_command(const config& c, bool json);
enum class results_format { table, json, openai_batch };
struct results_query {
  std::string state, tag;
  std::vector<std::string> ids; // only these; one alone: its whole record
  int64_t limit = -1;           // at most this many (-1: all)
  results_format format = results_format::table;
};
int results_command(const config& c, const results_query& q);
int requeue_command(const config& c, const std::vector<std::string>& ids,
                    bool all, const std::string& from_state);
int certs_init_command(const certs_options& o);
// `types [--json]`: the task types in force (app/types_command.cpp).
int types_command(const config& c, bool json);
// `models [--json]`: the prices in force per model and their sources
// (app/models_command.cpp).
int models_command(const config& c, bool json);

} // namespace bgagent
