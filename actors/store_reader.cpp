#include "actors/store_reader.hpp"

#include <pthread.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "persistence/store.hpp"

namespace bgagent {

namespace {

struct store_reader_state {
  std::shared_ptr<store> db;
  static inline const char* name = "store_reader";
};

using reader_ptr = store_reader_actor::stateful_pointer<store_reader_state>;

store_reader_actor::behavior_type store_reader(reader_ptr self,
                                               std::shared_ptr<store> db) {
  // Its own thread (detached): named for top, perf and the benches.
  pthread_setname_np(pthread_self(), "bg.reader");
  self->state.db = std::move(db);
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        spdlog::critical("store reader: {}", e.what());
        return caf::make_error(caf::sec::runtime_error, e.what());
      }
    });
  auto& db_ = *self->state.db;
  return {
    [&db_](status_atom) { return db_.status(); },
    [&db_](status_atom, tags_atom) { return db_.totals_by_tag(); },
    [&db_](status_atom, provider_atom) { return db_.completed_providers(); },
    [&db_](status_atom, total_atom) { return db_.count_not_cancelled(); },
    [&db_](status_atom, models_atom) { return db_.runnable_models(); },
    [&db_](fetch_atom, int64_t after_priority, int64_t after_seq,
           uint32_t limit) {
      return db_.fetch_runnable(fetch_cursor{after_priority, after_seq},
                                limit);
    },
    [&db_](results_atom, const std::string& state) {
      return db_.results(state);
    },
    [&db_](results_atom, const std::string& state, const std::string& tag,
           const std::vector<std::string>& ids, int64_t limit) {
      return db_.results(state, tag, ids, limit);
    },
  };
}

} // namespace

store_reader_actor spawn_store_reader(caf::actor_system& sys,
                                      std::unique_ptr<store> db) {
  // Detached: its scans block its own thread, never a scheduler's.
  return sys.spawn<caf::detached>(store_reader,
                                  std::shared_ptr<store>(std::move(db)));
}

} // namespace bgagent
