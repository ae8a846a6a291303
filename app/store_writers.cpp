#include "app/store_writers.hpp"

#include <filesystem>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/checkpointer.hpp"
#include "messages/atoms.hpp"
#include "persistence/shard_map.hpp"
#include "persistence/store_set.hpp"

namespace bgagent {

uint32_t store_files_on_disk(const std::string& db_path) {
  uint32_t n = 1;
  std::error_code ec;
  while (n < max_store_shards &&
         std::filesystem::exists(shard_file(db_path, n), ec))
    ++n;
  return n;
}

std::unique_ptr<store> open_reader(const std::string& path,
                                   store::sync_mode sync, bool in_set) {
  // The scans (the queue's next tasks, counts, results) on a connection
  // of their own: the thread that commits attempts never waits for them.
  auto reader = std::make_unique<store>(
    path, store::open_mode::must_exist, sync,
    in_set ? store::membership::in_set : store::membership::alone);
  reader->wait_for_lock([path](double seconds) {
    spdlog::warn("a read of {} has waited {:.0f} s for another process's "
                 "lock; it goes on waiting",
                 path, seconds);
  });
  return reader;
}

store_handles spawn_file_writers(caf::actor_system& sys,
                                 std::unique_ptr<store_set> files,
                                 const std::string& db_path,
                                 store::sync_mode sync,
                                 const auditor_actor& auditor,
                                 int64_t run_id) {
  auto clock = files->clock();
  auto n = files->size();
  // The reads over every file, for main's reader: a set of its own.
  auto scans = std::make_shared<store_set>(db_path,
                                           store::open_mode::read_only);
  std::vector<checkpointer_actor> writers;
  for (uint32_t k = 0; k < n; ++k) {
    // What the start committed (the submission, the run's opening) the
    // auditor reads from the file at attach: not sent again from memory.
    // Settlements before the keeper exists go nowhere (as with one file).
    files->at(k).take_committed_events();
    files->at(k).take_settlements();
  }
  std::vector<std::unique_ptr<store>> readers;
  for (uint32_t k = 0; k < n; ++k)
    readers.push_back(open_reader(shard_file(db_path, k), sync, true));
  for (uint32_t k = 0; k < n; ++k)
    writers.push_back(spawn_checkpointer(
      sys, files->release(k), auditor, std::move(readers[k]),
      store_file{k, clock, k == 0 ? scans : nullptr, k == 0 ? run_id : 0}));
  caf::anon_send(auditor, attach_atom::value, writers);
  return store_handles{std::move(writers)};
}

} // namespace bgagent
