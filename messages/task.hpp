// A task as it travels between actors, and a task's full record as stored.
//
// Contract: `task` is what a worker needs to run one attempt; `task_record` is
// what `bgagent results` shows. Both are plain values with an inspect()
// overload so CAF can copy them between actors and serialize them to nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace bgagent {

// A task as submitted (id .. model) and, once fetched from the store to
// run, with its type resolved (system .. temperature): the request is then
// complete, so a worker node needs no types file.
struct task {
  std::string id;              // user-given, or derived from the key
  std::string type;            // a type's name (types/type_registry.hpp)
  std::string input;
  std::string idempotency_key; // UNIQUE in the store
  uint32_t max_tokens = 0;     // 0 at submit: the type's default
  uint32_t attempts = 0;       // attempts already made before this one
  uint32_t free_attempts = 0;  // of those, the ones no retry counts
  int64_t seq = 0;             // store order (rowid)
  std::map<std::string, std::string> vars; // the templates' {{NAME}}s
  std::string model;           // asked for by the task; empty: none
  std::string type_fingerprint;
  int64_t priority = 0;          // higher runs first; ties in submit order
  std::vector<std::string> tags; // groups for results --tag, status --by-tag
  // Tried in order when the model's circuit is open, or it refused the
  // request (too long for its context, content policy); empty: the type's.
  std::vector<std::string> fallback_models;
  // Resolved when fetched to run:
  std::string system;          // rendered system prompt
  std::string prompt;          // rendered user prompt
  std::string schema;          // JSON Schema text of the result; "" none
  std::string type_model;      // the type's model; empty: the run's MODEL
  std::vector<std::string> type_fallbacks; // the type's fallback_models
  double temperature = 0;
  bool raw = false;            // chat: `input` is the request body to send
  // Set by the supervisor: this attempt starts at model_chain(*this)[i] (a
  // model that refused the request moves the next attempt on).
  uint32_t model_index = 0;
  // The repair turn: the last answer that failed the schema, and why; the
  // next request shows both to the model. Empty when there is none.
  std::string repair_answer;
  std::string repair_error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task& x) {
  return f(caf::meta::type_name("task"), x.id, x.type, x.input,
           x.idempotency_key, x.max_tokens, x.attempts, x.seq, x.vars,
           x.model, x.type_fingerprint, x.priority, x.tags, x.system,
           x.prompt, x.schema, x.type_model, x.temperature, x.raw,
           x.repair_answer, x.repair_error, x.fallback_models,
           x.type_fallbacks, x.model_index, x.free_attempts);
}

// The models a task's attempts may use, in order: its model (else its
// type's; "" stands for the run's MODEL), then its fallback_models (else
// its type's). A model listed twice is tried once.
inline std::vector<std::string> model_chain(const task& t) {
  std::vector<std::string> chain{t.model.empty() ? t.type_model : t.model};
  for (auto& m : t.fallback_models.empty() ? t.type_fallbacks
                                           : t.fallback_models) {
    bool seen = false;
    for (auto& c : chain)
      seen = seen || c == m;
    if (!seen)
      chain.push_back(m);
  }
  return chain;
}

// A type's definition as the store keeps it, so tasks can run after the
// types file has changed or without it: `definition` is the type's
// canonical JSON (types/task_type.hpp), whose SHA-256 is `fingerprint`.
struct type_definition {
  std::string fingerprint;
  std::string name;
  std::string definition;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, type_definition& x) {
  return f(caf::meta::type_name("type_definition"), x.fingerprint, x.name,
           x.definition);
}

// One row of `bgagent results`.
struct task_record {
  std::string id;
  std::string type;
  std::string state;
  uint32_t attempts = 0;
  std::string result; // JSON text, empty when none
  std::string error;  // empty when none
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;
  std::string provider;
  std::string model;
  std::string updated_at;
  int64_t priority = 0;
  std::vector<std::string> tags;
  std::string raw_answer; // the last answer that failed the schema
  std::string response;   // chat tasks: the provider's whole JSON answer
  int64_t seq = 0;
  // Of the completing answer's tokens: read from the prompt cache, spent
  // reasoning.
  uint64_t cached_tokens = 0;
  uint64_t reasoning_tokens = 0;
  bool cached = false; // the result came from the response cache
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_record& x) {
  return f(caf::meta::type_name("task_record"), x.id, x.type, x.state,
           x.attempts, x.result, x.error, x.prompt_tokens, x.completion_tokens,
           x.cost_usd, x.provider, x.model, x.updated_at, x.priority, x.tags,
           x.raw_answer, x.response, x.seq, x.cached_tokens,
           x.reasoning_tokens, x.cached);
}

// The repair turn's bounds: an answer that failed its schema is kept (and
// shown to the model again) cut to this many characters, its validation
// error to this many.
constexpr size_t max_repair_answer_chars = 64 * 1024;
constexpr size_t max_repair_error_chars = 2000;

// The names of the task states, as stored and as shown.
namespace task_state {
constexpr const char* pending = "pending";
constexpr const char* running = "running";
constexpr const char* retry_wait = "retry_wait";
constexpr const char* completed = "completed";
constexpr const char* quarantined = "quarantined";
constexpr const char* cancelled = "cancelled";
} // namespace task_state

} // namespace bgagent
