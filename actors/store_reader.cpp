#include "actors/store_reader.hpp"

#include <pthread.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "persistence/store.hpp"
#include "persistence/store_set.hpp"

namespace bgagent {

namespace {

struct store_reader_state {
  std::shared_ptr<store> db;
  std::shared_ptr<store_set> scans; // main's reader of a store of several
  static inline const char* name = "store_reader";
};

using reader_ptr = store_reader_actor::stateful_pointer<store_reader_state>;

// `Scans`: a store, or a store_set (the reads over every file).
template <class Scans>
store_reader_actor::behavior_type reads(store& db_, Scans& all) {
  return {
    [&all](status_atom) { return all.status(); },
    [&all](status_atom, tags_atom) { return all.totals_by_tag(); },
    [&all](status_atom, provider_atom) { return all.completed_providers(); },
    [&all](status_atom, total_atom) { return all.count_not_cancelled(); },
    [&all](status_atom, models_atom) { return all.runnable_models(); },
    [&db_](fetch_atom, int64_t after_priority, int64_t after_seq,
           uint32_t limit) {
      return db_.fetch_runnable(fetch_cursor{after_priority, after_seq},
                                limit);
    },
    [&all](results_atom, const std::string& state) {
      return all.results(state);
    },
    [&all](results_atom, const std::string& state, const std::string& tag,
           const std::vector<std::string>& ids, int64_t limit) {
      return all.results(state, tag, ids, limit);
    },
  };
}

store_reader_actor::behavior_type
store_reader(reader_ptr self, std::shared_ptr<store> db, std::string name,
             std::shared_ptr<store_set> scans) {
  // Its own thread (detached): named for top, perf and the benches.
  pthread_setname_np(pthread_self(), name.c_str());
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
  if (!scans)
    return reads(db_, db_);
  self->state.scans = std::move(scans);
  return reads(db_, *self->state.scans);
}

} // namespace

store_reader_actor spawn_store_reader(caf::actor_system& sys,
                                      std::unique_ptr<store> db) {
  // Detached: its scans block its own thread, never a scheduler's.
  return sys.spawn<caf::detached>(store_reader,
                                  std::shared_ptr<store>(std::move(db)),
                                  std::string("bg.reader"),
                                  std::shared_ptr<store_set>());
}

store_reader_actor spawn_store_reader(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      uint32_t index,
                                      std::shared_ptr<store_set> scans) {
  return sys.spawn<caf::detached>(store_reader,
                                  std::shared_ptr<store>(std::move(db)),
                                  "bg.reader" + std::to_string(index),
                                  std::move(scans));
}

} // namespace bgagent
